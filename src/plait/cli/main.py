"""Entry point: global options, command groups, and turning errors into one line and an exit code."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated

import click
import typer

from plait import __version__
from plait.cli import backup as backup_cli
from plait.cli import classify as classify_cli
from plait.cli import compress as compress_cli
from plait.cli import config, embed, generate, models, text_tasks
from plait.cli import doctor as doctor_cli
from plait.cli import eval as eval_cli
from plait.cli import explain as explain_cli
from plait.cli import hear as hear_cli
from plait.cli import index as index_cli
from plait.cli import keys as keys_cli
from plait.cli import plan as plan_cli
from plait.cli import recommend as recommend_cli
from plait.cli import runs as runs_cli
from plait.cli import search as search_cli
from plait.cli import security as security_cli
from plait.cli import see as see_cli
from plait.cli import serve as serve_cli
from plait.cli import speak as speak_cli
from plait.cli import tune as tune_cli
from plait.cli import workflows as workflows_cli
from plait.cli.common import state
from plait.cli.tasks import add_task_commands
from plait.errors import PlaitError
from plait.models.llamacpp import wait_passively

app = typer.Typer(
    name="plait", no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
    help="Local models in your daily work: chat, embeddings and tasks on your own machine.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(models.app, name="models")
app.add_typer(config.app, name="config")
app.add_typer(index_cli.app, name="index")
search_cli.register(app)
generate.register(app)
embed.register(app)
app.add_typer(keys_cli.app, name="keys")
app.add_typer(security_cli.app, name="security")
serve_cli.register(app)
app.add_typer(recommend_cli.app, name="recommend")
see_cli.register(app)
hear_cli.register(app)
speak_cli.register(app)
classify_cli.register(app)
plan_cli.register(app)
text_tasks.register(app)
workflows_cli.register(app)
app.add_typer(workflows_cli.app, name="workflows")
tune_cli.register(app)
app.add_typer(runs_cli.app, name="runs")
app.add_typer(eval_cli.app, name="eval")
explain_cli.register(app)
compress_cli.register(app)
doctor_cli.register(app)
backup_cli.register(app)
add_task_commands(app)  # last: every task without a command of its own gets a generated one


def _version(value: bool) -> None:
    if value:
        print(f"plait {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(help="plait's home folder (default: $PLAIT_HOME or ~/.plait)",
                                              show_default=False)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="show full tracebacks on errors")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    s = state(ctx)
    s.home, s.debug = home, debug
    ctx.call_on_close(lambda: s._runtime.close() if s._runtime else None)


def _database(args: list[str]) -> Path | None:
    """The database this invocation uses (--home, else the settings), to name it in an error."""
    for i, arg in enumerate(args):
        if arg == "--home" and i + 1 < len(args):
            return Path(args[i + 1]).expanduser() / "plait.db"
        if arg.startswith("--home="):
            return Path(arg.split("=", 1)[1]).expanduser() / "plait.db"
    try:
        from plait.settings import load_settings

        return load_settings().database_path
    except Exception:  # noqa: BLE001 - only to name a file in a message
        return None


def run(argv: list[str] | None = None) -> None:
    """Run the CLI; every error becomes one line on stderr and a non-zero exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    from plait.security.permissions import private_umask

    private_umask()  # every file and folder plait (or a library it calls) creates is its user's only
    wait_passively()  # before any command loads a library that uses OpenMP
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="plait", standalone_mode=False)
        if isinstance(code, int) and code:  # without standalone mode, click returns typer.Exit's code
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.ClickException, typer.TyperException) as exc:
        # typer >= 0.2x vendors click: its usage errors are not click.ClickException.
        if hasattr(exc, "show"):
            exc.show()
        else:
            print(f"plait: error: {exc}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("plait: interrupted", file=sys.stderr)
        sys.exit(130)
    except PlaitError as exc:
        if debug:
            traceback.print_exc()
        print(f"plait: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)  # `plait ... | head` closed the pipe; not an error
    except Exception as exc:  # a bug: still one line unless --debug
        from plait.store.failures import store_error

        known = store_error(exc, _database(args))  # a damaged database, a full disk, a read-only home
        if known is not None:
            if debug:
                traceback.print_exc()
            print(f"plait: error: {known}", file=sys.stderr)
            sys.exit(known.exit_code)
        if debug:
            traceback.print_exc()
        print(f"plait: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        sys.exit(1)
