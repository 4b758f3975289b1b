"""`plait doctor`: check plait's home, database, index, models and services; repair what can be repaired."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from plait.cli.common import state

MARKS = {"ok": "ok", "warn": "warn", "fail": "FAIL", "repaired": "fixed"}


def register(app: typer.Typer) -> None:
    app.command()(doctor)


def doctor(
    ctx: typer.Context,
    check_only: Annotated[bool, typer.Option("--check-only", help="report, repair nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per check")] = False,
) -> None:
    """Check the database, the index (rows, keyword index, vectors), models and workflows; repair what can be.

    Exit code 0 when nothing is left failing, 3 when the database itself is damaged, 1 otherwise."""
    from plait.doctor import diagnose
    from plait.settings import load_settings

    settings = load_settings(home=state(ctx).home)
    progress = None if as_json else (lambda message: print(f"… {message}", file=sys.stderr))
    checks = diagnose(settings, repair=not check_only, progress=progress)
    if as_json:
        for check in checks:
            print(json.dumps(check.as_dict()))
    else:
        for check in checks:
            line = f"{MARKS[check.status]:>5}  {check.area:<8} {check.name}: {check.detail}"
            print(line + (f"\n       → {check.fix}" if check.fix and check.status != "ok" else ""))
    failed = [c for c in checks if c.status == "fail"]
    if any(c.area == "database" for c in failed):
        raise typer.Exit(3)
    if failed:
        raise typer.Exit(1)
