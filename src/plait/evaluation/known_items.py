"""Known-item queries from a person's own index: a sentence held out of a document finds the rest of it.

No labels are needed: a sentence of a document is a query whose right answer is that document. For the
test to be fair the sentence must not be in the index (it would match itself), so the evaluation runs on
a copy of the index in which each held-out sentence is removed from its document's passages and those
passages are embedded again. The person's own index is never changed.

The copy is made with SQLite's online backup (the index may be in use), in a scratch folder under the
plait home that is deleted afterwards. Sentences are picked at random (seeded, so a run can be repeated)
among those of 8 to 60 words, one per document, from documents of at least three sentences.
"""

from __future__ import annotations

import random
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plait.readers.sentences import sentences

if TYPE_CHECKING:
    from plait.runtime import Runtime

MIN_WORDS, MAX_WORDS = 8, 60
MIN_SENTENCES = 3


@dataclass(frozen=True)
class KnownItem:
    query: str  # the held-out sentence
    document_id: int  # the document it was taken from: the right answer
    chunk_ids: tuple[int, ...]  # the passages it was removed from


def sample(runtime: Runtime, count: int, *, seed: int = 0, collection: str | None = None) -> list[KnownItem]:
    """Up to ``count`` held-out sentences, one per document, from documents picked at random."""
    where, params = ("WHERE k.name = ?", (collection,)) if collection else ("", ())
    rows = runtime.store.query(
        "SELECT d.id FROM index_documents d JOIN index_files f ON f.id = d.file_id "
        f"JOIN index_collections k ON k.id = f.collection_id {where} ORDER BY d.id", params)
    documents = [int(r[0]) for r in rows]
    rng = random.Random(seed)
    rng.shuffle(documents)
    items: list[KnownItem] = []
    for document_id in documents:
        if len(items) >= count:
            break
        chunks = runtime.store.query("SELECT id, text FROM index_chunks WHERE document_id = ? ORDER BY position",
                                     (document_id,))
        seen: dict[str, list[int]] = {}
        for chunk_id, text in chunks:
            for sentence in sentences(text):
                seen.setdefault(sentence, []).append(int(chunk_id))
        if len(seen) < MIN_SENTENCES:
            continue
        # A sentence cut by a chunk boundary is not whole in any passage: only those found whole count.
        usable = [s for s in seen if MIN_WORDS <= len(s.split()) <= MAX_WORDS
                  and all(s in text for chunk_id, text in chunks if int(chunk_id) in seen[s])]
        if usable:
            sentence = rng.choice(sorted(usable))
            items.append(KnownItem(sentence, document_id, tuple(seen[sentence])))
    return items


@contextmanager
def held_out_copy(runtime: Runtime, items: list[KnownItem]) -> Iterator[Runtime]:
    """A runtime over a copy of the index with the items' sentences removed (and their passages embedded
    again). It shares the person's loaded models; the copy is deleted on exit."""
    from plait.index.core import open_index
    from plait.runtime import Runtime
    from plait.security.keys import KEY_FILE
    from plait.store.backup import copy_database

    folder = runtime.settings.home / "eval" / f"copy-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    try:
        # The copy is a home of its own with the person's key file, so it is encrypted as their index is.
        key_file = runtime.settings.home / KEY_FILE
        if key_file.is_file():
            shutil.copy2(key_file, folder / KEY_FILE)
        copy_database(runtime.store.connection, folder / "plait.db", runtime.store.key)
        (folder / "models").symlink_to(runtime.settings.models_dir.resolve(), target_is_directory=True)
        copy = Runtime(runtime.settings.model_copy(update={"home": folder}))
        # The same models as the person's runtime: loading them twice would double memory and time.
        copy.pool.close()
        copy.pool = runtime.pool
        try:
            _remove_sentences(copy, items, open_index(runtime).embedder())
            yield copy
        finally:
            copy.store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _remove_sentences(copy: Runtime, items: list[KnownItem], embedder: object) -> None:
    from plait.models.base import Embedder

    assert isinstance(embedder, Embedder)
    changed: dict[int, str] = {}
    context: dict[int, str] = {}
    for item in items:
        for chunk_id in item.chunk_ids:
            if chunk_id not in changed:
                row = copy.store.query("SELECT context, text FROM index_chunks WHERE id = ?", (chunk_id,))[0]
                context[chunk_id], changed[chunk_id] = row[0], row[1]
            changed[chunk_id] = " ".join(changed[chunk_id].replace(item.query, " ").split())
    ids = list(changed)
    # What the index embeds for a passage: its context (title and heading) line, then its text.
    texts = [f"{context[c]}\n{changed[c]}" if context[c] else changed[c] for c in ids]
    vectors = embedder.embed_many(texts, kind="document") if texts else None
    with copy.store.transaction() as conn:
        for i, chunk_id in enumerate(ids):
            conn.execute("UPDATE index_chunks SET text = ? WHERE id = ?", (changed[chunk_id], chunk_id))
            assert vectors is not None
            conn.execute("UPDATE index_vectors SET vector = ? WHERE chunk_id = ?",
                         (vectors[i].astype("<f4").tobytes(), chunk_id))
    # The copy's folder has no vector index file: its first search builds one from these rows.
