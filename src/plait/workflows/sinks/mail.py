"""Mail drafts: a message per item, written as an .eml file into a drafts folder (open it in any mail
client), or sent over SMTP.

The Message-ID is derived from the workflow, item and step, and the draft's file name from the item, so
a draft is written once however often it is applied. SMTP cannot be undone or checked afterwards: if
plait dies after the server accepted a message but before the ledger recorded it, the message is sent
again with the same Message-ID (which lets mail clients show it once).
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, formatdate
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plait.workflows.context import StepContext
from plait.workflows.errors import StepError
from plait.workflows.sinks import Sink, SinkOptions, write_atomic
from plait.workflows.templates import key_slug, slug


class SmtpOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable holding the password")
    timeout: float = Field(30.0, gt=0)


class MailOptions(SinkOptions):
    to: str | list[str] = Field(description="recipient(s): a template or a list")
    subject: str
    body: str
    from_: str = Field("plait <plait@localhost>", alias="from")
    in_reply_to: str | None = Field(None, description="Message-ID this answers (threads the draft)")
    folder: str | None = Field(None, description="write .eml drafts here (relative: in the output folder)")
    smtp: SmtpOptions | None = None

    @model_validator(mode="after")
    def _one_way(self) -> MailOptions:
        if (self.folder is None) == (self.smtp is None):
            raise ValueError("give exactly one of folder (drafts as .eml files) or smtp (send)")
        return self


class MailSink(Sink):
    Options = MailOptions
    options: MailOptions

    @property
    def external(self) -> bool:
        return self.options.smtp is not None  # sent mail leaves the machine; a draft file does not

    def _message(self, ctx: StepContext) -> EmailMessage:
        o = self.options
        to = ctx.render(o.to)
        recipients = to if isinstance(to, list) else [a.strip() for a in str(to).split(",") if a.strip()]
        if not recipients:
            raise StepError(f"step '{ctx.step_path}': the mail has no recipient (`to` gave nothing)")
        msg = EmailMessage()
        msg["From"] = ctx.render_text(o.from_)
        msg["To"] = ", ".join(str(r) for r in recipients)
        msg["Subject"] = ctx.render_text(o.subject)
        msg["Date"] = format_datetime(ctx.variables["received"]) if ctx.variables.get("received") else formatdate()
        digest = hashlib.sha256(f"{self.env.workflow}|{ctx.item_key}|{ctx.step_path}".encode()).hexdigest()[:32]
        msg["Message-ID"] = f"<{digest}@plait.workflows>"
        if o.in_reply_to:
            reply = ctx.render_text(o.in_reply_to).strip().strip("<>")
            if reply:
                msg["In-Reply-To"] = f"<{reply}>"
                msg["References"] = f"<{reply}>"
        msg["X-Plait-Workflow"] = self.env.workflow
        msg.set_content(ctx.render_text(o.body))
        return msg

    def _draft_path(self, ctx: StepContext) -> Path:
        assert self.options.folder is not None
        return ctx.output_path(self.options.folder) / f"{key_slug(ctx.item_key)}-{slug(ctx.step_path, 40)}.eml"

    def apply(self, ctx: StepContext) -> dict[str, Any]:
        msg = self._message(ctx)
        if self.options.folder is not None:
            path = self._draft_path(ctx)
            write_atomic(path, msg.as_bytes())
            return {"draft": str(path), "message_id": msg["Message-ID"]}
        assert self.options.smtp is not None
        from plait.security.ssrf import check_host, policy_from

        smtp = self.options.smtp
        # As for HTTP: no loopback or private mail server unless the workflow's network.allow lists it.
        check_host(smtp.host, smtp.port, policy_from(ctx.workflow.network.allow, 0))
        self._send(msg, smtp)
        return {"sent_to": msg["To"], "message_id": msg["Message-ID"]}

    @staticmethod
    def _send(msg: EmailMessage, o: SmtpOptions) -> None:
        password = os.environ.get(o.password_env) if o.password_env else None
        if o.password_env and not password:
            raise StepError(f"SMTP {o.host}: the password variable ${o.password_env} is not set")
        # Both ways of TLS check the server's certificate and name (smtplib's own default for SMTP_SSL does not).
        context = ssl.create_default_context()
        try:
            if o.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(o.host, o.port, timeout=o.timeout, context=context)
            else:
                smtp = smtplib.SMTP(o.host, o.port, timeout=o.timeout)
            with smtp:
                if o.starttls and not o.ssl:
                    smtp.starttls(context=context)
                if o.username:
                    smtp.login(o.username, password or "")
                smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise StepError(f"SMTP login to {o.host} failed; check username and password") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise StepError(f"SMTP {o.host} refused the recipients {list(exc.recipients)}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise StepError(f"SMTP {o.host}: its TLS certificate is not trusted ({exc.verify_message}); check the "
                            "host name, or add its CA to the system's trusted certificates") from exc
        # Other SMTP and network errors are left to the retry policy.

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        msg = self._message(ctx)
        where = str(self._draft_path(ctx)) if self.options.folder is not None else f"smtp://{self.options.smtp.host}"  # type: ignore[union-attr]
        return {"would_mail": msg["To"], "subject": msg["Subject"], "via": where,
                "body": msg.get_content()[:300]}
