"""bench/tasks_text: extract, summarize and sentiment on real text (Lee news articles, mini 20-Newsgroups).

    python bench/tasks_text.py [--extract-docs 50] [--baseline-docs 6] [--summaries 30] [--abstractive 30]
                             [--chars 1000]

extract    SmolLM2 fills a JSON schema (topic, people, organizations, places, author_email, tone) for
           Lee articles and newsgroup posts (half each, clipped to --chars characters). plait decodes
           under the bounded schema's grammar; the baseline is the same prompt and model without a
           grammar (what "ask for JSON" gets). Reported: the share of outputs that parse and that
           validate against the schema, tries, seconds per document, and two checks of content: the
           share of extracted names found verbatim in the text, and author_email against the post's
           From header (null expected for the articles).
summarize  On Lee articles of at least 6 sentences: lead-3 (the first three sentences, the usual news
           baseline) against plait's extractive summaries (3 sentences; 60 words; one line) and its
           abstractive summary with SmolLM2 (3 sentences). Every summary is checked against the length
           asked. Mean cosine similarity summary-to-article is measured with the default embedder
           (minilm-q8, which the extractive method also uses to choose sentences, so it favours it) and
           with an independent one (multilingual e5-small), against the article's own embedding and against
           the mean of its sentence embeddings.
sentiment  VADER against the embedding scorer on every Lee sentence: agreement, correlation and speed.

Results: bench/results/tasks_text.json (with the machine's load average at start and end).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, peak_rss_mb, write_results  # noqa: E402

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "maxLength": 100, "description": "what the text is about, in a few words"},
        "people": {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 6,
                   "description": "full names of the people named in the text"},
        "organizations": {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 6,
                          "description": "organizations named in the text"},
        "places": {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 6,
                   "description": "countries, cities and places named in the text"},
        "author_email": {"type": ["string", "null"], "maxLength": 80,
                         "description": "the author's e-mail address if the text gives one, else null"},
        "tone": {"enum": ["positive", "negative", "neutral"]},
    },
    "required": ["topic", "people", "organizations", "places", "author_email", "tone"],
}
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def clip(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    cut = text.rfind(" ", 0, chars)
    return text[: cut if cut > 0 else chars]


# --- extract ----------------------------------------------------------------------------------------

def bench_extract(rt: Any, n_docs: int, n_baseline: int, chars: int) -> dict[str, Any]:
    import jsonschema
    from tests.corpora import lee_articles, newsgroups

    from plait.errors import BackendError
    from plait.models.base import GenerationOptions, Message, TextGenerator
    from plait.tasks.extract import SYSTEM, describe_schema, extract_json

    gen = rt.model("smollm2", TextGenerator)
    half = n_docs // 2
    docs: list[tuple[str, str, str | None]] = []  # (kind, text, expected author e-mail)
    for article in lee_articles()[:n_docs - half]:
        docs.append(("lee", clip(article, chars), None))
    for post in newsgroups()[:half]:
        sender = EMAIL.search(post.sender)
        docs.append(("newsgroup", clip(post.text, chars), sender.group().lower() if sender else None))

    validator = jsonschema.Draft202012Validator(SCHEMA)
    rows = []
    for kind, text, expected in docs:
        start = time.perf_counter()
        try:
            result = extract_json(text, SCHEMA, model=gen, runtime=rt)
            data, attempts, ok = result.data, result.attempts, True
        except BackendError as exc:
            data, attempts, ok = None, 2, False
            print(f"extract failed: {exc}", file=sys.stderr)
        rows.append({"kind": kind, "ok": ok, "attempts": attempts, "seconds": time.perf_counter() - start,
                     "data": data, "text": text, "expected_email": expected})
        print(f"extract {len(rows)}/{len(docs)} ok={ok} {rows[-1]['seconds']:.1f}s", file=sys.stderr)

    # Baseline: the same prompt and model, asked for JSON with no grammar.
    fields = describe_schema(SCHEMA)
    window = gen.context_length or 2048
    answer_tokens = min(1024, max(128, window // 3))
    base_rows = []
    for kind, text, _ in docs[:n_baseline // 2] + docs[half:half + n_baseline - n_baseline // 2]:
        messages = [Message("system", SYSTEM),
                    Message("user", f"Text:\n{text}\n\nFrom the text above, fill in these fields as JSON:\n{fields}")]
        start = time.perf_counter()
        raw = gen.chat(messages, GenerationOptions(max_tokens=answer_tokens, temperature=0.0, seed=1)).text
        seconds = time.perf_counter() - start
        strict = lenient = valid = False
        try:
            value = json.loads(raw)
            strict = lenient = True
        except json.JSONDecodeError:
            block = re.search(r"\{.*\}", raw, re.DOTALL)  # the JSON inside code fences or prose
            try:
                value = json.loads(block.group()) if block else None
                lenient = block is not None
            except json.JSONDecodeError:
                value = None
        if lenient:
            valid = not list(validator.iter_errors(value))
        base_rows.append({"kind": kind, "strict": strict, "lenient": lenient, "valid": valid, "seconds": seconds})
        print(f"baseline {len(base_rows)} strict={strict} lenient={lenient} valid={valid} {seconds:.1f}s",
              file=sys.stderr)

    ok_rows = [r for r in rows if r["ok"]]
    # Content checks: extracted names that are in the text, distinct, and that spaCy's NER also finds
    # with the matching label (PERSON; ORG; GPE/LOC/FAC) - a reference the model did not see.
    from plait.tasks.nlp import parse

    spacy_labels = {"people": ("PERSON",), "organizations": ("ORG",), "places": ("GPE", "LOC", "FAC")}
    names_total = names_grounded = names_distinct = spacy_match = spacy_total = spacy_found = 0
    for r in ok_rows:
        lowered = r["text"].lower()
        ents = parse(r["text"]).entities()
        for key in ("people", "organizations", "places"):
            names = [n.strip() for n in r["data"][key] if n.strip()]
            names_total += len(names)
            names_distinct += len({n.lower() for n in names})
            names_grounded += sum(n.lower() in lowered for n in names)
            reference = {e.text.lower() for e in ents if e.label in spacy_labels[key]}
            spacy_total += len(reference)
            spacy_match += sum(any(n.lower() in ref or ref in n.lower() for ref in reference) for n in names)
            spacy_found += sum(any(ref in n.lower() or n.lower() in ref for n in names) for ref in reference)
    email_rows = [r for r in ok_rows if r["kind"] == "newsgroup"]
    email_hits = sum((r["data"]["author_email"] or "").strip().lower() == r["expected_email"] for r in email_rows)
    null_rows = [r for r in ok_rows if r["kind"] == "lee"]
    null_hits = sum(not (r["data"]["author_email"] or "").strip() for r in null_rows)
    secs = [r["seconds"] for r in rows]
    return {
        "documents": len(rows), "lee_articles": len(rows) - half, "newsgroup_posts": half, "chars_per_doc": chars,
        "plait_grammar": {
            "parsed_and_valid": len(ok_rows), "rate": len(ok_rows) / len(rows),
            "first_try": sum(r["attempts"] == 1 for r in ok_rows), "mean_seconds": statistics.mean(secs),
            "names_extracted": names_total,
            "names_found_verbatim_in_text": names_grounded / names_total if names_total else None,
            "names_distinct_share": names_distinct / names_total if names_total else None,
            "names_precision_vs_spacy_ner": spacy_match / names_total if names_total else None,
            "names_recall_vs_spacy_ner": spacy_found / spacy_total if spacy_total else None,
            "author_email_exact": email_hits / len(email_rows) if email_rows else None,
            "author_email_null_when_absent": null_hits / len(null_rows) if null_rows else None,
        },
        "baseline_prompt_only": {
            "documents": len(base_rows),
            "parse_strict_rate": sum(r["strict"] for r in base_rows) / len(base_rows) if base_rows else None,
            "parse_lenient_rate": sum(r["lenient"] for r in base_rows) / len(base_rows) if base_rows else None,
            "valid_rate": sum(r["valid"] for r in base_rows) / len(base_rows) if base_rows else None,
            "mean_seconds": statistics.mean(r["seconds"] for r in base_rows) if base_rows else None,
        },
        "examples": [{"kind": r["kind"], "data": r["data"]} for r in (rows[:1] + rows[-1:])],
    }


# --- summarize --------------------------------------------------------------------------------------

def bench_summarize(rt: Any, n: int, n_abstractive: int) -> dict[str, Any]:
    import numpy as np
    from tests.corpora import lee_articles

    from plait.models.base import Embedder
    from plait.readers.sentences import sentences
    from plait.tasks.summarize import summarize

    articles = [a for a in lee_articles() if len(sentences(a)) >= 6][:n]
    configs: dict[str, dict[str, Any]] = {
        "extractive_3_sentences": {"method": "extractive", "sentences": 3},
        "extractive_60_words": {"method": "extractive", "words": 60},
        "extractive_one_line": {"method": "extractive", "style": "one-line"},
    }
    if n_abstractive:
        configs["abstractive_3_sentences"] = {"method": "abstractive", "sentences": 3}
    outputs: dict[str, list[str]] = {"lead_3": [" ".join(sentences(a)[:3]) for a in articles]}
    within: dict[str, int] = {}
    seconds: dict[str, float] = {}
    words: dict[str, float] = {}
    for name, kw in configs.items():
        outputs[name], within[name] = [], 0
        start = time.perf_counter()
        subset = articles[:n_abstractive] if kw["method"] == "abstractive" else articles
        for i, article in enumerate(subset):
            s = summarize(article, runtime=rt, **kw)
            outputs[name].append(s.text)
            # Checked independently of the summariser's own trimming: count again.
            max_s = 1 if kw.get("style") == "one-line" else kw.get("sentences")
            max_w = kw.get("words") or (30 if kw.get("style") == "one-line" else None)
            n_s, n_w = len(sentences(s.text)), len(s.text.split())
            within[name] += (max_s is None or n_s <= max_s) and (max_w is None or n_w <= max_w) and n_w > 0
            if kw["method"] == "abstractive":
                print(f"{name} {i + 1}/{len(subset)}", file=sys.stderr)
        seconds[name] = (time.perf_counter() - start) / len(subset)
        words[name] = statistics.mean(len(t.split()) for t in outputs[name])
    words["lead_3"] = statistics.mean(len(t.split()) for t in outputs["lead_3"])

    # Two views of "the article": its own embedding (the model reads only its first 256 or 512 tokens,
    # which favours the lead) and the mean of its sentences' embeddings (covers all of it).
    similarity: dict[str, dict[str, float]] = {}
    for embed_name in ("minilm-q8", "e5-small"):
        emb = rt.model(embed_name, Embedder)
        whole = emb.embed_many(articles, kind="document")
        means = []
        for article in articles:
            mean = emb.embed_many(sentences(article), kind="document").mean(axis=0)
            means.append(mean / np.linalg.norm(mean))
        sentence_mean = np.stack(means)
        for view, article_vecs in (("article", whole), ("sentence_mean", sentence_mean)):
            key = f"{embed_name}/{view}"
            similarity[key] = {}
            for name, texts in outputs.items():
                vecs = emb.embed_many(texts, kind="document")  # (len(texts), d): a prefix of the articles
                similarity[key][name] = float(np.mean(np.sum(vecs * article_vecs[:len(texts)], axis=1)))
                if len(texts) < len(articles):  # lead-3 on the same subset, for a like-for-like ratio
                    lead = emb.embed_many(outputs["lead_3"][:len(texts)], kind="document")
                    similarity[key][f"lead_3_first_{len(texts)}"] = float(
                        np.mean(np.sum(lead * article_vecs[:len(texts)], axis=1)))
    ratios = {e: {k: v / sims[f"lead_3_first_{len(outputs[k])}" if len(outputs[k]) < len(articles) else "lead_3"]
                  for k, v in sims.items() if not k.startswith("lead_3")}
              for e, sims in similarity.items()}
    return {
        "articles": len(articles), "abstractive_articles": min(n_abstractive, len(articles)),
        "within_length": {k: f"{v}/{len(outputs[k])}" for k, v in within.items()},
        "all_within_length": all(v == len(outputs[k]) for k, v in within.items()),
        "mean_words": words, "seconds_per_article": seconds,
        "mean_similarity_to_article": similarity, "ratio_to_lead_3": ratios,
        "example": {k: v[0] for k, v in outputs.items()},
    }


# --- sentiment --------------------------------------------------------------------------------------

def bench_sentiment(rt: Any) -> dict[str, Any]:
    import numpy as np
    from tests.corpora import lee_sentences

    from plait.models.base import Embedder
    from plait.tasks.sentiment import embedding_scores, label_for, vader_scores

    texts = list(lee_sentences())
    vader_scores(texts[:1])  # load the lexicon outside the timing
    emb = rt.model(rt.settings.embed_model, Embedder)
    embedding_scores(texts[:1], emb)
    start = time.perf_counter()
    v = vader_scores(texts)
    t_vader = time.perf_counter() - start
    start = time.perf_counter()
    e, e_labels = embedding_scores(texts, emb)
    t_emb = time.perf_counter() - start
    v_labels = [label_for(x) for x in v]
    polar = [i for i, x in enumerate(v) if abs(x) >= 0.5]
    return {
        "sentences": len(texts),
        "vader_sentences_per_s": len(texts) / t_vader, "embedding_sentences_per_s": len(texts) / t_emb,
        "embedder": emb.spec.name,
        "label_agreement_3way": float(np.mean([a == b for a, b in zip(v_labels, e_labels, strict=True)])),
        "pearson_r": float(np.corrcoef(v, e)[0, 1]),
        "sign_agreement_where_vader_is_clear": float(np.mean([np.sign(v[i]) == np.sign(e[i]) for i in polar])),
        "vader_clear_sentences": len(polar),
        "vader_label_counts": {k: v_labels.count(k) for k in ("positive", "neutral", "negative")},
        "embedding_label_counts": {k: e_labels.count(k) for k in ("positive", "neutral", "negative")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extract-docs", type=int, default=50)
    parser.add_argument("--baseline-docs", type=int, default=6)
    parser.add_argument("--summaries", type=int, default=30)
    parser.add_argument("--chars", type=int, default=1000, help="clip each extraction document to this")
    parser.add_argument("--sections", default="extract,summarize,sentiment",
                        help="comma-separated sections to run; others are kept from the last results file")
    parser.add_argument("--abstractive", type=int, default=30,
                        help="articles to summarise with SmolLM2 as well (0 skips; the rest are extractive only)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from plait.runtime import Runtime
    from plait.settings import load_settings

    load_start = os.getloadavg()[0]
    results_settings = {"threads": load_settings().threads, "chat_model": load_settings().chat_model,
                        "embed_model": load_settings().embed_model}
    rt = Runtime(load_settings())
    started = time.perf_counter()
    results: dict[str, Any] = {"load_1min_at_start": load_start, "settings": results_settings,
                               "args": vars(args)}
    # Sections in order of what they show; results are written after each, so a run cut short still
    # leaves what it measured.
    sections = (("extract", lambda: bench_extract(rt, args.extract_docs, args.baseline_docs, args.chars)),
                ("summarize", lambda: bench_summarize(rt, args.summaries, args.abstractive)),
                ("sentiment", lambda: bench_sentiment(rt)))
    wanted = set(args.sections.split(","))
    previous = RESULTS / "tasks_text.json"
    if wanted != {"extract", "summarize", "sentiment"} and previous.exists():
        # A partial run adds its sections to the last full or partial run's results.
        kept = json.loads(previous.read_text())
        results = {**{k: v for k, v in kept.items() if k in ("extract", "summarize", "sentiment")}, **results}
    for name, run in sections:
        if name not in wanted:
            continue
        t = time.perf_counter()
        results[name] = run()
        results[name]["seconds"] = time.perf_counter() - t
        results["total_seconds"] = time.perf_counter() - started
        results["peak_rss_mb"] = peak_rss_mb()
        results["load_1min_at_end"] = os.getloadavg()[0]
        if previous.exists() and wanted != {"extract", "summarize", "sentiment"}:
            latest = json.loads(previous.read_text())  # another partial run may have written meanwhile
            results = {**{k: v for k, v in latest.items() if k in ("extract", "summarize", "sentiment")
                          and k not in wanted}, **results}
        write_results("tasks_text", results)
    rt.close()


if __name__ == "__main__":
    main()
