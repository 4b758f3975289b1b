"""`plait security init|status|rotate-key|export|audit`: encryption at rest, keys, permissions, the audit log."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.common import state
from plait.settings import load_settings

app = typer.Typer(help="Encryption at rest, keys, file permissions and the audit log.", no_args_is_help=True)


def _home(ctx: typer.Context) -> Path:
    # Settings only: opening the store here would make (and encrypt) a home before `init` decides how.
    return load_settings(home=state(ctx).home).home


def _say(message: str) -> None:
    print(message, file=sys.stderr)


@app.command()
def init(
    ctx: typer.Context,
    passphrase: Annotated[bool, typer.Option("--passphrase", help="protect the key with a passphrase you type "
                                             "(or PLAIT_KEY), not the OS keyring")] = False,
    keyring: Annotated[bool, typer.Option("--keyring", help="keep a random key in the OS keyring")] = False,
    no_encryption: Annotated[bool, typer.Option("--no-encryption", help="keep this new home unencrypted "
                                                "(files are still private to you)")] = False,
    backup: Annotated[Path | None, typer.Option(help="where to put the verified backup made before encrypting an "
                                                "existing home (default: beside it)")] = None,
) -> None:
    """Encrypt plait's home: set up the keys of a new home, or encrypt an existing one after a verified backup."""
    from plait.errors import InputError
    from plait.security.keys import Master, SecurityError, key_file, mark_plaintext, new_master, prompt_passphrase
    from plait.security.migrate import migrate

    home = _home(ctx)
    kf = key_file(home)
    existing = (home / "plait.db").exists()
    if passphrase and keyring:
        raise InputError("choose --passphrase or --keyring, not both")
    if no_encryption:
        if existing or (kf is not None and kf.encrypted):
            raise InputError("--no-encryption is for a new home; an encrypted home can be copied out with "
                             "`plait security export`")
        mark_plaintext(home)
        _say(f"{home} stays unencrypted (its files are still readable by you only)")
        return
    if kf is not None and kf.encrypted and not (kf.rotation and kf.rotation.get("migration")):
        _say(f"{home} is encrypted already; `plait security status` shows how")
        return

    def choose() -> Master:
        if passphrase and not os.environ.get("PLAIT_KEY"):
            typed = prompt_passphrase(confirm=True)
            if typed is None:
                raise SecurityError("--passphrase needs a terminal to type it in, or PLAIT_KEY set to it")
            return new_master(passphrase=typed)
        try:
            return new_master(use_keyring=True if keyring else None)
        except SecurityError:
            typed = None if keyring else prompt_passphrase(confirm=True)
            if typed is None:
                raise
            return new_master(passphrase=typed)

    if existing or (kf is not None and kf.rotation):
        resuming = kf is not None and kf.encrypted
        migrate(home, None if resuming else choose(), backup_to=backup, say=_say)
        _say("done. The backup holds your data UNENCRYPTED: check plait works, then delete it")
        return
    from plait.security.keys import create_home_keys

    keys = create_home_keys(home, choose())
    hint = " (`plait security export --key` prints it for safekeeping)" if keys.file.slot.get("kind") == "key" else ""
    _say(f"{home} is encrypted; its key: {keys.master_source}. Keep the key safe: without it the data cannot be "
         f"read{hint}")


@app.command()
def status(
    ctx: typer.Context,
    fix: Annotated[bool, typer.Option("--fix", help="make files and folders readable by you only")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Whether the home is encrypted, with which key, what is left unencrypted, and loose file permissions."""
    from plait.security.status import security_status

    st = security_status(_home(ctx), fix=fix)
    if as_json:
        print(json.dumps(st.as_dict()))
    else:
        print(f"home        {st.home}")
        print(f"state       {st.state}")
        if st.master:
            print(f"key         {st.master}; data key {st.data_key}")
        print(f"keyring     {'available' if st.keyring else 'not available on this machine'}")
        for path, how in st.databases.items():
            print(f"database    {path}: {how}")
        if st.fixed:
            print(f"fixed       {st.fixed} path(s) made private")
        for line in st.loose[:20]:
            print(f"loose       {line}")
        for problem in st.problems:
            print(f"problem     {problem}")
        if not st.problems:
            print("ok          nothing to fix")
    if st.problems and not fix:
        raise typer.Exit(1)


@app.command("rotate-key")
def rotate_key(
    ctx: typer.Context,
    new_master: Annotated[bool, typer.Option("--new-master", help="also replace the master key: a new random key "
                                             "in the keyring, or a new passphrase (typed, or PLAIT_NEW_KEY)")] = False,
) -> None:
    """Re-encrypt everything under a new data key; run it again to finish one that was interrupted."""
    from plait.security.keys import SecurityError, key_file, keyring_usable, master_from_env, prompt_passphrase
    from plait.security.keys import new_master as make
    from plait.security.rotation import rotate

    home = _home(ctx)
    master = None
    kf = key_file(home)
    if new_master and kf is not None and kf.rotation is None:
        fresh = os.environ.get("PLAIT_NEW_KEY")
        if fresh:
            saved = os.environ.get("PLAIT_KEY")
            os.environ["PLAIT_KEY"] = fresh
            try:
                master = master_from_env()
            finally:
                if saved is None:
                    os.environ.pop("PLAIT_KEY", None)
                else:
                    os.environ["PLAIT_KEY"] = saved
        elif kf.slot.get("kind") == "key" and kf.slot.get("keyring") and keyring_usable():
            master = make(use_keyring=True)
        else:
            typed = prompt_passphrase(confirm=True)
            if typed is None:
                raise SecurityError("give the new master key as PLAIT_NEW_KEY (a passphrase or 64 hex characters)")
            master = make(passphrase=typed)
    rotate(home, new_master=master, say=_say)
    if master is not None and master.slot.get("kind") == "key" and not master.slot.get("keyring"):
        _say("from now on PLAIT_KEY must be the new key (PLAIT_NEW_KEY)")


@app.command()
def export(
    ctx: typer.Context,
    dest: Annotated[Path | None, typer.Argument(help="a new folder for an unencrypted copy of the home's data")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="print one file plait keeps, decrypted (e.g. a digest "
                                              "a workflow wrote)")] = None,
    key: Annotated[bool, typer.Option("--key", help="print the home's master key (64 hex characters) to keep "
                                      "safe: PLAIT_KEY set to it opens the home if the keyring is lost")] = False,
) -> None:
    """Take data out of an encrypted home: an unencrypted copy, one file, or the master key."""
    from plait.errors import InputError
    from plait.security.export import export_file, export_home, master_key_hex

    home = _home(ctx)
    if sum(x is not None and x is not False for x in (dest, file, key)) != 1:
        raise InputError("give one of: a destination folder, --file PATH, or --key")
    if key:
        print(master_key_hex(home))
    elif file is not None:
        sys.stdout.buffer.write(export_file(file))
    else:
        assert dest is not None
        export_home(home, dest, say=_say)


def _since(value: str | None) -> float | None:
    """'90m', '6h', '2d' ago, or an ISO date/time."""
    import re
    import time
    from datetime import datetime

    from plait.errors import InputError

    if not value:
        return None
    match = re.fullmatch(r"(\d+)([mhd])", value.strip())
    if match:
        return time.time() - int(match.group(1)) * {"m": 60, "h": 3600, "d": 86400}[match.group(2)]
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as exc:
        raise InputError(f"--since '{value}': give 90m, 6h, 2d or an ISO date such as 2026-12-01") from exc


@app.command()
def audit(
    ctx: typer.Context,
    key: Annotated[str | None, typer.Option("--key", help="one API key (its id or name)")] = None,
    kind: Annotated[str | None, typer.Option(help="request, egress, auth_failure or alert (comma-separated)")] = None,
    alerts: Annotated[bool, typer.Option("--alerts", help="only the alerts of anomaly detection")] = False,
    since: Annotated[str | None, typer.Option(help="90m, 6h, 2d, or an ISO date")] = None,
    limit: Annotated[int, typer.Option(help="newest rows shown")] = 50,
    verify: Annotated[bool, typer.Option("--verify", help="check that no row was changed or removed")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per row")] = False,
) -> None:
    """Read the audit log: who (which key) did what, from where, when; and the alerts it raised."""
    from datetime import datetime

    from plait.security.audit import read
    from plait.security.audit import verify as verify_chain

    store = state(ctx).runtime().store
    if verify:
        count, bad = verify_chain(store)
        if bad is not None:
            print(f"the audit log was changed outside plait: row {bad} does not match the chain ({count} checked)",
                  file=sys.stderr)
            raise typer.Exit(1)
        print(f"audit log intact: {count} row(s), chain verified", file=sys.stderr)
        return
    kinds = ("alert",) if alerts else tuple(k.strip() for k in kind.split(",")) if kind else ()
    rows = read(store, since=_since(since), key=key, kinds=kinds, limit=limit)
    for event in reversed(rows):
        if as_json:
            print(json.dumps(event.as_dict(), default=str))
            continue
        when = datetime.fromtimestamp(event.at).strftime("%Y-%m-%d %H:%M:%S")
        who = event.key_name or event.key or "-"
        if event.kind == "alert":
            print(f"{when}  ALERT {event.detail.get('kind')}: {event.detail.get('message')}")
        else:
            extra = ""
            if event.detail.get("passages"):
                extra += f" passages={len(event.detail['passages'])}"
            for out in event.detail.get("egress", []):
                extra += f" sent {out['bytes']}B to {out['backend']} ({out['redacted']} redacted)"
            print(f"{when}  {event.kind:<12} {who:<12} {event.client or '-':<15} {event.method or ''} "
                  f"{event.route or ''} {event.status or ''} in={event.bytes_in} out={event.bytes_out}{extra}")
    if not rows:
        print("no audit rows match", file=sys.stderr)
