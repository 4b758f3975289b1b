"""A real IMAP server for tests and benchmarks: Debian's dovecot, started on a loopback port with a
temporary configuration, one user and a Maildir, and stopped afterwards.

``Dovecot.available()`` says whether the dovecot binary is installed (``apt-get install dovecot-imapd``;
scripts/system-packages.sh installs it); tests skip with that reason when it is not.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from email.message import EmailMessage
from pathlib import Path

BINARY = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "me", "plait-test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dovecot:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="plait-imap-"))
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return os.path.exists(BINARY)

    def _users(self) -> tuple[int, int, str, str]:
        """(mail uid, mail gid, internal user, login user): unprivileged accounts when running as root."""
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            internal = "dovecot" if _user_exists("dovecot") else "nobody"
            login = "dovenull" if _user_exists("dovenull") else "nobody"
            return nobody.pw_uid, nobody.pw_gid, internal, login
        me = pwd.getpwuid(os.getuid())
        return me.pw_uid, me.pw_gid, me.pw_name, me.pw_name

    def start(self) -> Dovecot:
        uid, gid, internal, login = self._users()
        mail = self.root / "mail"
        mail.mkdir()
        os.chmod(self.root, 0o755)
        (self.root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        os.chmod(self.root / "users", 0o644)
        config = self.root / "dovecot.conf"
        config.write_text(f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{mail}/%u
first_valid_uid = 1
default_internal_user = {internal}
default_login_user = {login}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
""")
        if os.geteuid() == 0:
            os.chown(mail, uid, gid)
        self.process = subprocess.Popen([BINARY, "-F", "-c", str(config)], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out = self.process.stdout.read().decode() if self.process.stdout else ""
                raise RuntimeError(f"dovecot exited: {out} {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")

    def log(self) -> str:
        try:
            return (self.root / "dovecot.log").read_text()[-2000:]
        except OSError:
            return ""

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port)
        conn.login(USER, PASSWORD)
        return conn

    def append(self, messages: Iterable[EmailMessage], mailbox: str = "INBOX") -> int:
        """Deliver messages through the server (IMAP APPEND), as mail arriving; returns how many."""
        conn = self.client()
        n = 0
        try:
            for msg in messages:
                status, data = conn.append(mailbox, None, None, msg.as_bytes())
                if status != "OK":
                    raise RuntimeError(f"APPEND failed: {data!r}")
                n += 1
        finally:
            conn.logout()
        return n

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def trigger_yaml(self, password_env: str = "PLAIT_TEST_IMAP_PASSWORD", poll_seconds: float = 60) -> str:
        os.environ[password_env] = PASSWORD
        return (f"{{type: imap, host: 127.0.0.1, port: {self.port}, ssl: false, username: {USER}, "
                f"password_env: {password_env}, poll_seconds: {poll_seconds}}}")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
