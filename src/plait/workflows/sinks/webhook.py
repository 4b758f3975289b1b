"""Webhook POSTs: the item (or a JSON body from templates) sent to a URL.

Each request carries ``Idempotency-Key: <workflow>/<item>/<step>``: if plait dies after the receiver got
a request but before the ledger recorded it, the request is sent again with the same key, and a receiver
that honours the header (Stripe-style APIs, most queues) does the work once. A 2xx answer is success;
5xx, 429 and network errors are retried with backoff; other answers fail the item.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from plait.workflows.context import StepContext
from plait.workflows.errors import StepError
from plait.workflows.sinks import Sink, SinkOptions
from plait.workflows.steps import HttpStatusError, to_jsonable


class WebhookOptions(SinkOptions):
    url: str = Field(description="where to POST (a template)")
    json_: Any = Field(None, alias="json", description="the body (default: the item and its step outputs)")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(30.0, gt=0, le=600)


class WebhookSink(Sink):
    Options = WebhookOptions
    options: WebhookOptions

    @property
    def external(self) -> bool:
        return True  # a POST leaves the machine

    def _request(self, ctx: StepContext) -> tuple[str, dict[str, str], Any]:
        o = self.options
        body = ctx.render(o.json_) if o.json_ is not None else {
            "workflow": self.env.workflow, "key": ctx.item_key, "item": ctx.variables["item"],
            "steps": {k: v for k, v in ctx.variables["steps"].items() if v is not None}}
        headers = {k: ctx.render_text(v) for k, v in o.headers.items()}
        headers["Idempotency-Key"] = f"{self.env.workflow}/{ctx.item_key}/{ctx.step_path}"
        return ctx.render_text(o.url), headers, to_jsonable(body)

    def apply(self, ctx: StepContext) -> dict[str, Any]:
        import httpx

        url, headers, body = self._request(ctx)
        try:
            resp = ctx.http().post(url, json=body, headers=headers, timeout=self.options.timeout)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise StepError(f"POST {url}: {exc}") from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            raise HttpStatusError(f"POST {url} answered {resp.status_code}; will retry")
        if resp.status_code >= 300:
            raise StepError(f"POST {url} answered {resp.status_code}: {resp.text[:200]}")
        return {"url": url, "status": resp.status_code, "idempotency_key": headers["Idempotency-Key"]}

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        url, headers, body = self._request(ctx)
        return {"would_post": url, "idempotency_key": headers["Idempotency-Key"], "body": body}
