"""The texts a compression is measured on (``--eval``) and learns from (``--train``).

Evaluation sets, by kind of model:

- classifier: labelled examples (CSV/JSONL with ``text`` and ``label``, or a folder per label; see
  :func:`plait.adapt.datasets.load_dataset`); every label must be one the classifier knows;
- embedder: documents (a folder of files plait reads, or a text file with one document per line) turned
  into a known-item retrieval test: each document's first sentence is the query, the rest the document
  to find. Default: the 300 Lee news articles;
- chat model: real text for perplexity (a file or folder). Default: the Lee news articles.

Training sets (distillation, and repair after structured pruning): labelled examples as above, or any
texts, one per line, which the teacher labels. Embedders default to the Lee news sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from plait.compress.source import Kind, Source
from plait.errors import InputError
from plait.store import Store

LABELLED_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json")
MIN_DOCUMENTS = 10


@dataclass(frozen=True)
class EvalSet:
    kind: Kind
    texts: tuple[str, ...]  # classifier: examples; embedder: documents to find; chat: text to score
    labels: tuple[tuple[str, ...], ...] = ()  # classifier: each text's gold label(s)
    queries: tuple[str, ...] = ()  # embedder: queries[i] looks for texts[i]
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind == "classifier" and len(self.labels) != len(self.texts):
            raise InputError("an evaluation set for a classifier needs one label per text")
        if self.kind == "embedder" and len(self.queries) != len(self.texts):
            raise InputError("a retrieval evaluation set needs one query per document")
        if not self.texts:
            raise InputError("the evaluation set is empty")


@dataclass(frozen=True)
class TrainSet:
    texts: tuple[str, ...]
    labels: tuple[int | None, ...] | None = None  # classifier: label index, None for unlabelled texts
    source: str = ""


def classifier_eval(texts: Sequence[str], labels: Sequence[str | Sequence[str]], source: str = "") -> EvalSet:
    gold = tuple((label,) if isinstance(label, str) else tuple(label) for label in labels)
    return EvalSet("classifier", tuple(texts), gold, source=source)


def known_item(documents: Sequence[str], source: str = "") -> EvalSet:
    """Query = a document's first sentence, target = the rest; documents under two sentences are skipped."""
    from plait.readers.sentences import sentences as split_sentences

    queries, targets = [], []
    for doc in documents:
        sentences = split_sentences(doc)
        if len(sentences) >= 2:
            queries.append(sentences[0])
            targets.append(" ".join(sentences[1:]))
    if len(targets) < MIN_DOCUMENTS:
        raise InputError(f"a retrieval test needs at least {MIN_DOCUMENTS} documents of two or more sentences; "
                         f"{source or 'the evaluation data'} has {len(targets)}")
    return EvalSet("embedder", tuple(targets), queries=tuple(queries), source=source)


def check_labels(gold: Sequence[Sequence[str]], known: Sequence[str], where: str) -> None:
    unknown = sorted({label for labels in gold for label in labels} - set(known))
    if unknown:
        raise InputError(f"{where} has label(s) the classifier does not know: {', '.join(unknown)}; "
                         f"its labels are {', '.join(known)}")


def _documents(path: Path) -> list[str]:
    """A folder's documents, or a text file's non-empty lines (one document per line)."""
    from plait.readers import read_documents
    from plait.readers.text import read_text
    from plait.readers.walk import readable_files

    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        docs = [d.text for f in readable_files(path) for d in read_documents(f) if d.text.strip()]
    else:
        docs = [line.strip() for line in read_text(path).splitlines() if line.strip()]
    if not docs:
        raise InputError(f"{path} holds no text")
    return docs


def _labelled(path: Path) -> bool:
    return (path.is_dir() and any(p.is_dir() for p in path.iterdir())) or path.suffix.lower() in LABELLED_SUFFIXES


INDEX_DOCUMENTS = 300  # documents of the person's index measured by default: enough for a stable figure


def indexed_documents(store: Store, limit: int = INDEX_DOCUMENTS) -> list[str]:
    """Up to ``limit`` documents of the person's own index, their passages joined in order: the default
    evaluation and training text, so a model is measured on what it will be used for."""
    rows = store.query("SELECT c.document_id, c.text FROM index_chunks c WHERE c.document_id IN "
                       "(SELECT id FROM index_documents ORDER BY id LIMIT ?) ORDER BY c.document_id, c.position",
                       (limit,))
    docs: dict[int, list[str]] = {}
    for document_id, text in rows:
        docs.setdefault(document_id, []).append(text)
    return [" ".join(parts) for parts in docs.values()]


def _default_documents(store: Store, what: str, option: str) -> list[str]:
    docs = indexed_documents(store)
    if len(docs) < MIN_DOCUMENTS:
        raise InputError(f"{what} needs text to measure on: give {option} DATA (a folder of documents, or a text "
                         f"file with one per line), or index at least {MIN_DOCUMENTS} of your documents first "
                         f"(`plait index add FOLDER`; the index has {len(docs)})")
    return docs


def load_eval(source: Source, path: Path | None, labels: Sequence[str], store: Store) -> EvalSet:
    """The evaluation set for ``source`` from ``path`` (default: documents of the person's index)."""
    from plait.models.encoder import is_multi_label

    if source.kind == "classifier":
        if path is None:
            raise InputError(f"measuring classifier '{source.spec.name}' needs held-out labelled examples: "
                             "give --eval DATA (CSV/JSONL with text and label, or a folder per label)")
        from plait.adapt.datasets import load_dataset

        dataset = load_dataset(path, "multilabel" if is_multi_label(source.spec) else "classify")
        gold = [e.labels for e in dataset.examples]
        check_labels(gold, labels, str(path))
        return classifier_eval(dataset.texts, gold, str(path))
    what = f"measuring '{source.spec.name}'"
    if source.kind == "embedder":
        if path is None:
            return known_item(_default_documents(store, what, "--eval"), "documents of your index")
        return known_item(_documents(path), str(path))
    if path is None:
        return EvalSet("chat", tuple(_default_documents(store, what, "--eval")), source="documents of your index")
    return EvalSet("chat", tuple(_documents(path)), source=str(path))


def load_train(source: Source, path: Path | None, labels: Sequence[str], store: Store) -> TrainSet:
    """Texts to distil on (labelled or not); embedders default to the sentences of the person's index."""
    if path is None:
        if source.kind == "embedder":
            from plait.readers.sentences import sentences as split_sentences

            docs = _default_documents(store, f"distilling '{source.spec.name}'", "--train")
            sentences = [s for doc in docs for s in split_sentences(doc) if len(s.split()) >= 4]
            return TrainSet(tuple(sentences), source="sentences of your index")
        raise InputError(f"training a smaller '{source.spec.name}' needs texts from its domain: give --train DATA "
                         "(labelled examples, or texts one per line, which the teacher labels)")
    from plait.models.encoder import is_multi_label

    path = path.expanduser()
    if source.kind == "classifier" and _labelled(path):
        from plait.adapt.datasets import load_dataset

        dataset = load_dataset(path, "multilabel" if is_multi_label(source.spec) else "classify")
        gold = [e.labels for e in dataset.examples]
        check_labels(gold, labels, str(path))
        index = {label: i for i, label in enumerate(labels)}
        return TrainSet(tuple(dataset.texts), tuple(index[g[0]] if len(g) == 1 else None for g in gold), str(path))
    return TrainSet(tuple(_documents(path)), source=str(path))
