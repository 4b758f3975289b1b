"""Durable workflows: a trigger yields items, steps transform them, sinks act; every item's progress is
kept in SQLite, so a killed run resumes without losing or repeating work.

    from plait.workflows import load_workflow, Engine
    summary = Engine(load_workflow("inbox.yml")).run()

Modules: ``spec`` (the schema) · ``loader`` (YAML with file:line errors) · ``engine`` · ``state`` (SQLite)
· ``steps`` (registry tasks by name, templates, set, HTTP) · ``templates`` (Jinja2) · ``triggers/`` · ``sinks/`` ·
``runner`` (background, for ``plait up``) · ``router`` (HTTP routes) · ``enabled`` ($PLAIT_HOME/workflows)
· ``status`` · ``clock`` · ``functions`` (read) · ``webhook_keys``. Bundled workflows are in
``bundled/`` (see its README.md).
"""

from plait.workflows.clock import Clock, ManualClock
from plait.workflows.engine import Engine, EngineEvent, RunSummary
from plait.workflows.loader import load_workflow, parse_workflow
from plait.workflows.sinks import register_sink
from plait.workflows.spec import Workflow
from plait.workflows.triggers import register_trigger

__all__ = ["Clock", "Engine", "EngineEvent", "ManualClock", "RunSummary", "Workflow", "load_workflow",
           "parse_workflow", "register_sink", "register_trigger"]
