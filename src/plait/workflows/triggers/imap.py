"""IMAP: new messages of a mailbox on a mail server, by UID (standard library ``imaplib``).

The cursor is the mailbox's UIDVALIDITY and the highest UID seen: each scan asks only for UIDs above it
(``UID SEARCH UID n+1:*``) and fetches with ``BODY.PEEK[]``, so messages are not marked as read. If the
server renumbers the mailbox (a new UIDVALIDITY), the scan starts again from the first message; items are
keyed by Message-ID (when there is one), so messages already processed are not processed again.

The password comes from an environment variable (``password_env``) or a file (``password_file``, relative
to the workflow's folder), never from the workflow file itself.
"""

from __future__ import annotations

import imaplib
import os
import re
import ssl
from collections.abc import Iterator
from typing import Any

from pydantic import Field, model_validator

from plait.errors import InputError
from plait.workflows.errors import TriggerError
from plait.workflows.triggers import Trigger, TriggerItem, TriggerOptions
from plait.workflows.triggers.mail import mail_item

FETCH_CHUNK = 50
_UID = re.compile(rb"UID (\d+)")


class ImapOptions(TriggerOptions):
    host: str
    port: int | None = Field(None, ge=1, le=65535, description="default 993 with ssl, else 143")
    ssl: bool = True
    starttls: bool = False
    username: str
    password_env: str | None = Field(None, description="environment variable holding the password")
    password_file: str | None = Field(None, description="file holding the password (first line); relative "
                                                  "to the workflow's folder")
    mailbox: str = "INBOX"
    timeout: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _one_password(self) -> ImapOptions:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env or password_file")
        return self


class ImapTrigger(Trigger):
    Options = ImapOptions
    options: ImapOptions

    def __init__(self, options: Any, env: Any) -> None:
        super().__init__(options, env)
        self._conn: imaplib.IMAP4 | None = None

    @property
    def _where(self) -> str:
        o = self.options
        return f"{o.username}@{o.host}:{self._port}/{o.mailbox}"

    @property
    def _port(self) -> int:
        return self.options.port or (993 if self.options.ssl else 143)

    def _password(self) -> str:
        o = self.options
        if o.password_env:
            value = os.environ.get(o.password_env)
            if not value:
                raise TriggerError(f"IMAP {self._where}: the password variable ${o.password_env} is not set")
            return value
        assert o.password_file is not None
        from plait.workflows.context import resolve_path

        try:  # like every path of a workflow, relative to the workflow's folder
            path = resolve_path(o.password_file, self.env.base_dir)
        except InputError as exc:  # an unset ${VAR}
            raise TriggerError(f"IMAP {self._where}: {exc}") from exc
        try:
            return path.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise TriggerError(f"IMAP {self._where}: cannot read the password file {path}") from exc

    def _connect(self) -> imaplib.IMAP4:
        o = self.options
        password = self._password()  # before connecting: a missing one must not leave a connection open
        if self.env.network is not None:
            from plait.security.ssrf import OutboundRefused, check_host

            try:
                check_host(o.host, self._port, self.env.network)
            except OutboundRefused as exc:
                raise TriggerError(str(exc)) from exc
        try:
            if o.ssl:
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(o.host, self._port, ssl_context=ssl.create_default_context(),
                                                        timeout=o.timeout)
            else:
                conn = imaplib.IMAP4(o.host, self._port, timeout=o.timeout)
                if o.starttls:
                    conn.starttls(ssl.create_default_context())
        except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
            raise TriggerError(f"cannot reach IMAP server {o.host}:{self._port} ({exc}); is it up, and are host, "
                               "port and ssl right?") from exc
        try:
            conn.login(o.username, password)
        except imaplib.IMAP4.error as exc:
            _logout(conn)
            raise TriggerError(f"IMAP login failed for {o.username} at {o.host} ({_text(exc)}); check the "
                               "username and password") from exc
        return conn

    def _select(self, conn: imaplib.IMAP4) -> int:
        status, _ = conn.select(_quote(self.options.mailbox), readonly=True)
        if status != "OK":
            raise TriggerError(f"IMAP {self._where}: mailbox '{self.options.mailbox}' cannot be opened (deleted "
                               "or renamed?); fix the trigger's mailbox")
        _, values = conn.response("UIDVALIDITY")
        try:
            return int(values[0]) if values and values[0] else 0
        except (TypeError, ValueError):
            return 0

    def scan(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        reused = self._conn is not None
        yielded = False
        try:
            for item in self._scan(cursor):
                yielded = True
                yield item
        except (OSError, imaplib.IMAP4.abort) as exc:
            self.close()
            if reused and not yielded:
                # The server dropped the connection while we were idle: reconnect once.
                yield from self._reconnected(cursor)
                return
            raise TriggerError(f"IMAP {self._where}: connection lost ({exc}); will reconnect next time") from exc
        except imaplib.IMAP4.error as exc:
            self.close()
            raise TriggerError(f"IMAP {self._where}: the server refused a command ({_text(exc)})") from exc

    def _reconnected(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        try:
            yield from self._scan(cursor)
        except (TimeoutError, OSError, imaplib.IMAP4.abort) as exc:
            self.close()
            raise TriggerError(f"IMAP {self._where}: connection lost ({exc}); will reconnect next time") from exc
        except imaplib.IMAP4.error as exc:
            self.close()
            raise TriggerError(f"IMAP {self._where}: the server refused a command ({_text(exc)})") from exc

    def _scan(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        validity = self._select(conn)
        if cursor.get("uidvalidity") != validity:
            cursor.clear()
            cursor.update(uidvalidity=validity, last_uid=0)
        last = int(cursor.get("last_uid", 0))
        status, data = conn.uid("SEARCH", f"UID {last + 1}:*")
        if status != "OK":
            raise TriggerError(f"IMAP {self._where}: search failed ({data!r})")
        # "n:*" always matches the newest message, even when its UID is below n: filter.
        uids = sorted(u for u in (int(x) for x in (data[0] or b"").split()) if u > last)
        for start in range(0, len(uids), FETCH_CHUNK):
            chunk = uids[start:start + FETCH_CHUNK]
            status, parts = conn.uid("FETCH", ",".join(map(str, chunk)), "(UID BODY.PEEK[])")
            if status != "OK":
                raise TriggerError(f"IMAP {self._where}: fetch failed ({parts!r})")
            messages: dict[int, bytes] = {}
            for part in parts:
                if isinstance(part, tuple) and len(part) == 2:
                    match = _UID.search(part[0])
                    if match:
                        messages[int(match.group(1))] = part[1]
            for uid in chunk:
                raw = messages.get(uid)
                cursor["last_uid"] = uid
                if raw is None:
                    continue  # expunged between search and fetch
                data_item, at = mail_item(raw, f"imap://{self._where}#{uid}")
                data_item.update(uid=uid, uidvalidity=validity, mailbox=self.options.mailbox)
                key = f"imap:{data_item['message_id']}" if data_item.get("message_id") \
                    else f"imap:{validity}:{uid}"
                yield TriggerItem(key, data_item, at)

    def close(self) -> None:
        if self._conn is not None:
            _logout(self._conn)
            self._conn = None


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _logout(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (OSError, imaplib.IMAP4.error):
        pass
