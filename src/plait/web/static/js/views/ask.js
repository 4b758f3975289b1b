// Ask and search over the personal index. An answer streams after its numbered sources and the evidence
// sentences it rests on; a citation ([2] or [2:5], source 2 sentence 5) opens the passage with the cited
// sentence and the question's words marked, and where it comes from. "Not in your data" is said as such,
// and an answer the documents may not give is shown with plait's warning.

import { api, stream } from "../api.js";
import { announce, append, clear, errorBox, field, h, highlighted, spans } from "../dom.js";
import { markdown } from "../markdown.js";

const STOP = new Set("the a an and or of to in on at for from with by is are was were be what who when where how why which does do did it this that about".split(" "));

function questionWords(text) {
  return text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w && !STOP.has(w));
}

export async function render(main) {
  let controller = null;
  const question = h("input", { type: "search", name: "question", required: true, autocomplete: "off",
    placeholder: "What did Anna say about the budget?" });
  const collection = h("select", { name: "collection" }, h("option", { value: "" }, "all collections"));
  const kind = h("input", { name: "kind", placeholder: "email, pdf, md…", size: 10 });
  const after = h("input", { type: "date", name: "after" });
  const before = h("input", { type: "date", name: "before" });
  const sender = h("input", { name: "sender", placeholder: "a name or address", size: 14 });
  const ask = h("button", { type: "submit", class: "primary", value: "ask" }, "Ask");
  const search = h("button", { type: "submit", value: "search" }, "Search");
  const result = h("section", { class: "result", "aria-live": "polite" });
  const passage = h("section", { class: "passage", "aria-label": "Source passage", hidden: true });
  const form = h("form", { class: "ask" },
    field("Question or words", question),
    h("details", { class: "filters" }, h("summary", {}, "Filters"),
      h("div", { class: "row wrap" }, field("Collection", collection), field("Kind", kind),
        field("After", after), field("Before", before), field("Sender", sender))),
    h("div", { class: "row" }, ask, search));
  append(main, h("h1", {}, "Ask & search"),
    h("p", { class: "muted" }, "Answers come from your indexed files and mail, with the passages they rest on."),
    form, h("div", { class: "split wide" }, result, passage));
  // Taken over before anything is awaited: a question asked while the collections load must not submit
  // the form to the server as a page load.
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) return;
    if (controller) controller.abort();
    passage.hidden = true;
    (event.submitter && event.submitter.value === "search" ? runSearch : runAsk)(text);
  });

  try {
    const status = await api("/v1/index");
    append(collection, ...status.collections.map((c) => h("option", { value: c.name }, c.name)));
    if (!status.chunks) {
      append(result, h("p", { class: "notice" }, "Your index is empty: add a folder or a mailbox under ",
        h("a", { href: "#/index" }, "Index"), " first."));
    }
  } catch (error) {
    append(result, errorBox(error));
  }

  function filters() {
    const f = {};
    if (collection.value) f.collections = [collection.value];
    if (kind.value.trim()) f.kinds = kind.value.split(/[\s,]+/).filter(Boolean);
    if (after.value) f.after = after.value;
    if (before.value) f.before = before.value;
    if (sender.value.trim()) f.sender = sender.value.trim();
    return Object.keys(f).length ? f : null;
  }

  // The passage text with ``sentence`` (the cited evidence, when there is one) marked as a whole and the
  // question's words marked elsewhere.
  function marked(text, words, sentence) {
    const at = sentence ? text.indexOf(sentence) : -1;
    if (at < 0) return highlighted(text, words);
    return [...highlighted(text.slice(0, at), words), h("mark", { class: "evidence" }, sentence),
      ...highlighted(text.slice(at + sentence.length), words)];
  }

  async function openPassage(chunkId, words, sentence = null) {
    passage.hidden = false;
    append(clear(passage), h("p", { class: "muted" }, "Loading the passage…"));
    try {
      const p = await api(`/v1/index/passages/${chunkId}`);
      const d = p.document;
      const about = [d.kind, (d.date || "").slice(0, 10), d.sender].filter(Boolean).join(" · ");
      const whole = h("button", { type: "button" }, "Show the whole document");
      append(clear(passage),
        h("h2", { tabindex: "-1" }, d.title || d.source.split("/").pop()),
        h("p", { class: "muted" }, about),
        h("p", {}, h("span", { class: "muted" }, "From "), h("code", { class: "path" }, d.source)),
        p.heading ? h("p", { class: "muted" }, p.heading) : null,
        ...p.before.map((t) => h("p", { class: "context" }, t)),
        h("blockquote", { class: "cited" }, ...marked(p.text, words, sentence)),
        ...p.after.map((t) => h("p", { class: "context" }, t)),
        h("div", { class: "row" }, whole,
          h("button", { type: "button", onclick: () => { passage.hidden = true; } }, "Close")));
      whole.addEventListener("click", async () => {
        const doc = await api(`/v1/index/documents/${d.id}`);
        append(passage, h("article", { class: "document" }, ...doc.passages.map((t) => h("p", {}, ...highlighted(t, words)))));
      });
      passage.querySelector("h2").focus();
    } catch (error) {
      append(clear(passage), errorBox(error));
    }
  }

  function sourcesList(sources, words) {
    return h("ol", { class: "sources" }, ...sources.map((s) => h("li", { id: `source-${s.number}` },
      h("button", { type: "button", class: "link", onclick: () => openPassage(s.chunk_id, words) },
        s.title || s.source.split("/").pop()),
      h("small", { class: "muted" }, " ", [s.kind, (s.date || "").slice(0, 10), s.sender].filter(Boolean).join(" · ")),
      h("p", { class: "excerpt" }, ...highlighted(s.excerpt, words)))));
  }

  // The evidence sentences, best first, each a button that opens its passage with the sentence marked.
  function evidenceList(evidence, open) {
    return h("ol", { class: "evidence" }, ...evidence.map((e) => h("li", {},
      h("button", { type: "button", class: "cite", "aria-label": `Open source ${e.source}, sentence ${e.sentence}`,
        onclick: () => open(e.source, e.sentence) }, `[${e.source}:${e.sentence}]`),
      " ", h("q", {}, e.text), h("small", { class: "muted", title: "how likely this sentence answers the question" },
        ` ${Math.round(e.score * 100)}% likely an answer`))));
  }

  async function runAsk(text) {
    const words = questionWords(text);
    let sources = [];
    let evidence = [];
    let answerText = "";
    const answer = h("div", { class: "answer" });
    const open = (number, sentence) => {
      const s = sources.find((x) => x.number === number);
      const e = evidence.find((x) => x.source === number && x.sentence === sentence);
      if (s) openPassage(s.chunk_id, words, e ? e.text : null);
    };
    const cite = (pairs) => h("span", { class: "cites" }, ...pairs.map(([n, m]) => h("button", {
      type: "button", class: "cite", "aria-label": m === null ? `Open source ${n}` : `Open source ${n}, sentence ${m}`,
      onclick: () => open(n, m),
    }, m === null ? `[${n}]` : `[${n}:${m}]`)));
    const status = h("p", { class: "muted", role: "status" }, "searching…");
    append(clear(result), h("h2", {}, "Answer"), answer, status);
    result.setAttribute("aria-busy", "true");
    controller = new AbortController();
    try {
      await stream("/v1/ask", { question: text, filters: filters() }, (ev) => {
        if (ev.type === "sources") {
          sources = ev.sources;
          status.textContent = sources.length ? "reading the sources…" : "";
        } else if (ev.type === "evidence") {
          evidence = ev.evidence;
          if (evidence.length) {
            status.textContent = "answering…";
            append(result, h("h2", {}, "Evidence"), evidenceList(evidence.slice(0, 3), open));
          }
          if (sources.length) append(result, h("h2", {}, "Sources"), sourcesList(sources, words));
        } else if (ev.type === "delta") {
          answerText += ev.text;
          append(clear(answer), ...markdown(answerText, { cite }));
        } else if (ev.type === "result") {
          status.textContent = "";
          if (ev.status === "not_found") {
            append(clear(answer), h("p", { class: "notice" }, "Not in your data: ", ev.text));
          } else if (ev.warning) {
            answer.prepend(h("p", { class: "warning" }, "Careful: ", ev.warning, "."));
          }
          if (ev.rejected && ev.rejected.length) {
            append(answer, h("details", { class: "rejected" },
              h("summary", {}, `${ev.rejected.length} sentence(s) the model wrote were left out: the evidence does not support them`),
              h("ul", {}, ...ev.rejected.map((r) => h("li", {}, h("q", {}, r.text), h("small", { class: "muted" }, ` ${r.reason}`))))));
          }
        }
      }, controller.signal);
      announce("Answer complete");
    } catch (error) {
      if (error.name !== "AbortError") append(result, errorBox(error));
    } finally {
      controller = null;
      result.setAttribute("aria-busy", "false");
    }
  }

  async function runSearch(text) {
    const words = questionWords(text);
    append(clear(result), h("p", { class: "muted", role: "status" }, "searching…"));
    try {
      const found = await api("/v1/search", { method: "POST", body: { query: text, filters: filters(), k: 20 } });
      append(clear(result), h("h2", {}, `${found.hits.length} result(s)`));
      if (!found.hits.length) append(result, h("p", { class: "notice" }, "Nothing in your index matches."));
      append(result, h("ol", { class: "hits" }, ...found.hits.map((hit) => h("li", {},
        h("button", { type: "button", class: "link", onclick: () => openPassage(hit.chunk_id, words) },
          hit.title || hit.source.split("/").pop()),
        h("small", { class: "muted" }, " ", [hit.kind, (hit.date || "").slice(0, 10), hit.sender,
          // set when the query was a question and the result was re-scored by whether it answers it
          hit.answer == null ? null : `answers it: ${Math.round(hit.answer * 100)}%`].filter(Boolean).join(" · ")),
        h("p", { class: "excerpt" }, ...spans(hit.snippet.text, hit.snippet.highlights))))));
      announce(`${found.hits.length} results`);
    } catch (error) {
      append(clear(result), errorBox(error));
    }
  }

  question.focus();
  return () => controller && controller.abort();
}
