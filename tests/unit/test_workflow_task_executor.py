"""The engine's task executor hook (what runs task steps on Ray): it gets each checked request and the mail
document a mail item came from, exactly what a local task step runs on, and its JSON is recorded as a local
result would be; steps without a model (templates, sinks) stay in the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plait.runtime import Runtime
from plait.tasks.registry import Task, TaskContext
from plait.workflows.engine import Engine
from tests import workflow_helpers as h
from tests.homes import open_db

MAIL = {"kind": "email", "sender": "Anna <anna@example.org>", "subject": "Budget", "date": "2026-05-01T09:00:00",
        "body": "Please send the budget by Friday. The numbers look good.", "message_id": "<m1@example.org>",
        "text": "Please send the budget by Friday. The numbers look good.", "source": "maildir:1"}


class Recording:
    """Runs tasks in this process, as a Ray worker runs them, and records what it was given."""

    parallelism = 2

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.calls: list[tuple[str, Any, Any]] = []

    def __call__(self, task: Task, request: Any, document: Any = None) -> Any:
        self.calls.append((task.name, request, document))
        return task.to_json(task.run(request, TaskContext(self.runtime, document=document)))

    def close(self) -> None:
        pass


def test_task_steps_go_to_the_executor_with_the_mail_document(tmp_path: Path, fake_models: Runtime) -> None:
    wf = h.workflow(tmp_path, """
name: t
trigger: {type: manual}
steps:
  - id: gist
    task: sentiment
  - id: line
    template: "{{ item.subject }}: {{ gist.label }}"
  - sink: table
    with: {table: seen, columns: {line: "{{ line }}"}}
""")
    executor = Recording(fake_models)
    local = Engine(wf.model_copy(update={"name": "local"}), fake_models)
    local.submit(MAIL, key="m1")
    local.run()
    engine = Engine(wf, fake_models, tasks=executor)
    engine.submit(MAIL, key="m1")
    engine.submit({**MAIL, "kind": "note", "text": "A note."}, key="n1")  # not a mail: no document
    assert engine.run().done == 2
    assert [c[0] for c in executor.calls] == ["sentiment", "sentiment"]
    documents = {c[1].text: c[2] for c in executor.calls}  # items run two at a time: in either order
    mail_doc, note_doc = documents[MAIL["text"]], documents["A note."]
    assert mail_doc is not None and mail_doc.kind == "email" and mail_doc.metadata["subject"] == "Budget"
    assert note_doc is None
    st = h.state(fake_models, "t")
    recorded = st.steps(st.items()[0].id)["gist"].output
    local_st = h.state(fake_models, "local")
    assert recorded == local_st.steps(local_st.items()[0].id)["gist"].output  # the same JSON as a local step
    rows = open_db(fake_models.settings.home / "workflows" / "tables.db").execute("SELECT line FROM seen").fetchall()
    assert len(rows) == 3 and all(r[0].startswith("Budget: ") for r in rows)  # the local run's and these two
