"""`plait backup DEST` and `plait restore BACKUP`: a consistent copy of plait's home, taken while it runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.common import state


def register(app: typer.Typer) -> None:
    app.command()(backup)
    app.command()(restore)


def backup(ctx: typer.Context,
           dest: Annotated[Path, typer.Argument(help="a new (or empty) folder for the backup")]) -> None:
    """Back up the database (online, safe while plait runs), models and outputs plait made, and settings."""
    from plait.store.backup import backup_home

    rt = state(ctx).runtime()
    report = backup_home(rt.store, rt.settings.home, dest)
    print(f"backed up {rt.settings.home} to {report.path}: {report.files} files, {report.bytes / 1e6:,.1f} MB, "
          f"databases {', '.join(report.databases)} ({report.seconds:.1f} s)")
    if report.external_models:
        print("not copied (your model files outside plait's home): " + ", ".join(report.external_models),
              file=sys.stderr)


def restore(ctx: typer.Context,
            source: Annotated[Path, typer.Argument(help="a folder `plait backup` made")],
            force: Annotated[bool, typer.Option("--force", help="replace the database this home already has")] = False,
            ) -> None:
    """Restore plait's home from a backup (checked first: every file's hash, the databases' integrity)."""
    from plait.settings import load_settings
    from plait.store.backup import restore_home

    home = load_settings(home=state(ctx).home).home
    manifest = restore_home(source, home, force=force)
    print(f"restored {home} from {source} (made {manifest.get('made_at')} by plait {manifest.get('plait')}); "
          "the vector index is rebuilt on the first search")
