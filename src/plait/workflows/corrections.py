"""Labels a person corrects become examples for the workflow's classifier.

A correction is the item's text (its subject and what the sender wrote) saved as a file in
``<the workflow's output folder>/corrections/<label>/``: one sub-folder per label, the layout
:mod:`plait.readers.labelled` reads, so a person can also drop mails there by hand, and ``plait tune`` takes
the folder as it is once there are enough. The bundled inbox-triage passes that folder to its classify step
(``corrections:``), so the next item is labelled with the corrections as examples (few-shot) and the
labels' thresholds are re-chosen on them (cross-validated). Correcting an item again moves its file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.errors import InputError
from plait.workflows.outputs import output_folder

if TYPE_CHECKING:
    from plait.store import Store
    from plait.workflows.spec import Workflow

FOLDER = "corrections"
TUNE_AT = 50  # corrections per label from which `plait tune` beats few-shot (bench/tasks_classify.py)
_LABEL = re.compile(r"^[\w][\w .-]{0,63}$")


@dataclass(frozen=True)
class Correction:
    workflow: str
    key: str
    label: str
    path: str
    counts: dict[str, int]  # corrections per label, after this one
    tune: bool  # every label has enough corrections for `plait tune`


def workflow_labels(workflow: Workflow) -> list[str]:
    """The labels the workflow classifies into (its ``vars.labels``), when it names them."""
    labels = workflow.vars.get("labels") if isinstance(workflow.vars, dict) else None
    if isinstance(labels, dict):
        return [str(k) for k in labels]
    if isinstance(labels, list):
        return [str(x).partition("=")[0] for x in labels]
    return []


def correct(store: Store, workflow: Workflow, home: Path, key: str, label: str) -> Correction:
    """Record that item ``key`` of ``workflow`` carries ``label``."""
    from plait.workflows.sinks import write_atomic
    from plait.workflows.templates import key_slug

    known = workflow_labels(workflow)
    if known and label not in known:
        raise InputError(f"'{label}' is not one of {workflow.name}'s labels: {', '.join(known)}")
    if not _LABEL.match(label):
        raise InputError(f"'{label}' cannot be a label: use letters, digits, spaces, '.', '_' or '-'")
    rows = store.query("SELECT data FROM workflow_items WHERE workflow = ? AND key = ?", (workflow.name, key))
    if not rows:
        raise InputError(f"workflow '{workflow.name}' has no item '{key}'; `plait workflows status "
                         f"{workflow.name}` lists them")
    data: dict[str, Any] = json.loads(rows[0]["data"])
    text = "\n\n".join(str(data[k]).strip() for k in ("subject", "body") if data.get(k)) or str(data.get("text", ""))
    if not text.strip():
        raise InputError(f"item '{key}' has no text to learn from")
    folder = output_folder(workflow, home) / FOLDER
    name = key_slug(key) + ".txt"
    for old in folder.glob(f"*/{name}"):
        old.unlink()
    path = folder / label / name
    write_atomic(path, text + "\n")
    counts = corrections_count(folder)
    return Correction(workflow.name, key, label, str(path), counts,
                      bool(known) and all(counts.get(k, 0) >= TUNE_AT for k in known))


def corrections_count(folder: Path) -> dict[str, int]:
    if not folder.is_dir():
        return {}
    return {p.name: sum(1 for f in p.iterdir() if f.is_file()) for p in sorted(folder.iterdir()) if p.is_dir()}
