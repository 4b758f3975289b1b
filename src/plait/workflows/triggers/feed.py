"""RSS and Atom feeds (feedparser): one item per entry.

URLs are fetched with a conditional GET (the ETag and Last-Modified of the last answer are the cursor),
so an unchanged feed costs one small request. The key is the entry's id (or link), so an entry seen
in an earlier fetch is not an item again. Entry HTML is turned into plain text for the ``text`` field.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from plait.errors import MissingDependency
from plait.security.ssrf import NetworkPolicy, OutboundRefused, guarded_client, redirect_hint
from plait.workflows.errors import TriggerError
from plait.workflows.triggers import Trigger, TriggerItem, TriggerOptions

_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", text or "")).split())


class FeedOptions(TriggerOptions):
    url: str = Field(description="the feed's URL, or a file path")
    poll_seconds: float = Field(1800.0, ge=0.01, le=86_400)
    timeout: float = Field(30.0, gt=0)


class FeedTrigger(Trigger):
    Options = FeedOptions
    options: FeedOptions

    def _fetch(self, cursor: dict[str, Any]) -> bytes | None:
        import httpx

        url = self.options.url
        if not url.startswith(("http://", "https://")):
            from plait.workflows.context import resolve_path

            path = resolve_path(url, self.env.base_dir)
            try:
                return path.read_bytes()
            except OSError as exc:
                raise TriggerError(f"feed file {path} cannot be read ({exc.strerror}); moved or deleted?") from exc
        headers = {}
        if cursor.get("etag"):
            headers["If-None-Match"] = cursor["etag"]
        if cursor.get("modified"):
            headers["If-Modified-Since"] = cursor["modified"]
        client = self.env.http() if self.env.http else guarded_client(NetworkPolicy())
        try:
            resp = client.get(url, headers=headers, timeout=self.options.timeout)
        except httpx.HTTPError as exc:
            raise TriggerError(f"cannot fetch feed {url} ({exc}); check the URL and the network") from exc
        except OutboundRefused as exc:
            raise TriggerError(str(exc)) from exc
        if resp.status_code == 304:
            return None
        if resp.status_code != 200:
            raise TriggerError(f"feed {url} answered {resp.status_code}{redirect_hint(resp)}; is the URL still right?")
        cursor["etag"] = resp.headers.get("etag")
        cursor["modified"] = resp.headers.get("last-modified")
        return bytes(resp.content)

    def scan(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        try:
            import feedparser
        except ImportError as exc:
            raise MissingDependency("feed triggers", extra="workflows", package="feedparser") from exc
        pending = dict(cursor)
        content = self._fetch(pending)
        if content is None:
            return
        parsed = feedparser.parse(content)
        if parsed.get("bozo") and not parsed.get("entries"):
            raise TriggerError(f"{self.options.url} is not an RSS or Atom feed ({parsed.get('bozo_exception')})")
        feed_title = parsed.get("feed", {}).get("title", "")
        entries = []
        for entry in parsed.get("entries", []):
            ident = entry.get("id") or entry.get("link") or hashlib.sha256(
                (entry.get("title", "") + entry.get("summary", "")).encode()).hexdigest()[:32]
            entries.append((f"feed:{ident}", entry))
        known = self.env.known([k for k, _ in entries])
        fresh = [(k, e) for k, e in entries if k not in known]
        if not fresh:
            cursor.update(pending)
        for i, (key, entry) in enumerate(fresh):
            if i == len(fresh) - 1:
                cursor.update(pending)  # the conditional-GET state moves on with the last entry
            when = entry.get("published_parsed") or entry.get("updated_parsed")
            at = float(calendar.timegm(when)) if when else None
            summary = plain(entry.get("summary", ""))
            content_html = " ".join(c.get("value", "") for c in entry.get("content", []) or [])
            body = plain(content_html) or summary
            title = plain(entry.get("title", ""))
            yield TriggerItem(key, {
                "title": title, "link": entry.get("link", ""), "summary": summary, "body": body,
                "author": entry.get("author", ""), "published": entry.get("published", entry.get("updated", "")),
                "feed": feed_title, "tags": [t.get("term", "") for t in entry.get("tags", []) or []],
                "text": f"{title}\n\n{body}".strip(), "source": str(Path(self.options.url)) if not
                self.options.url.startswith("http") else self.options.url,
            }, at)
