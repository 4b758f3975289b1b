"""Per-key anomaly detection over the audit log.

The method, in one paragraph: plait keeps, for every API key (and, for failed sign-ins, every client
address), a day of per-minute history: how many requests, how many failed, how many bytes went out, which
routes and client addresses the key used. A request raises an alert when its key's current behaviour is
far outside that history: a **burst** (more requests in the last minute than five times the key's busiest
minute of the past day, and at least 60), an **error storm** (at least 20 requests in five minutes, half
or more refused or failed), **failed sign-ins** (10 wrong or revoked keys from one address in five
minutes), a **volume** spike (more bytes sent out in five minutes than ten times the key's largest
five-minute total of the day, and at least 5 MB), or, once a key has an hour and 20 requests of history,
a **new client address** or a **new kind of request** (a route it has never called). Each alert names the
key, the figure and the threshold it crossed; an alert of one kind is raised at most once per key every
15 minutes. Nothing is learned across keys and no threshold is fitted to the data it judges: the
thresholds are fixed multiples of the key's own past.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

MINUTE = 60.0
HISTORY_MINUTES = 24 * 60
BURST_FACTOR, BURST_FLOOR = 5.0, 60
ERROR_WINDOW, ERROR_MIN_REQUESTS, ERROR_SHARE = 5, 20, 0.5
AUTH_WINDOW, AUTH_FAILURES = 5, 10
VOLUME_WINDOW, VOLUME_FACTOR, VOLUME_FLOOR = 5, 10.0, 5_000_000
LEARN_SECONDS, LEARN_REQUESTS = 3600.0, 20
COOLDOWN_SECONDS = 15 * 60.0
# Failed sign-ins are kept per client address, which an attacker can vary at will (IPv6): past this many
# addresses the quiet ones are forgotten (an address still failing keeps its history).
MAX_ADDRESSES = 10_000


@dataclass(frozen=True)
class Alert:
    at: float
    kind: str  # burst | errors | failed_auth | volume | new_address | new_route
    key: str  # the key's id, or "addr:IP" for failed sign-ins
    key_name: str | None
    message: str  # one line a person can act on
    value: float
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "kind": self.kind, "key": self.key, "key_name": self.key_name, "message": self.message,
                "value": self.value, "threshold": self.threshold}


@dataclass
class _Minute:
    start: float
    requests: int = 0
    errors: int = 0
    auth_failures: int = 0
    bytes_out: int = 0


@dataclass
class _KeyHistory:
    first_seen: float
    requests: int = 0
    minutes: deque[_Minute] = field(default_factory=lambda: deque(maxlen=HISTORY_MINUTES))  # active minutes only
    routes: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    last_alert: dict[str, float] = field(default_factory=dict)
    # The baseline changes only when a new minute starts: computed then, not per request.
    busiest: float = 0.0  # 99th percentile of requests per minute over the past day, the current minute excluded
    largest: int = 0  # largest bytes out in 5 minutes over the past day, the last 5 minutes excluded

    def minute(self, at: float) -> _Minute:
        start = at - at % MINUTE
        if not self.minutes or self.minutes[-1].start < start:
            self.minutes.append(_Minute(start))
            self.busiest = _percentile([m.requests for m in self.past(at, 1)], 0.99)
            past = self.past(at, VOLUME_WINDOW)
            self.largest = max((sum(m.bytes_out for m in past[i:i + VOLUME_WINDOW]) for i in range(len(past))),
                               default=0)
        return self.minutes[-1]

    def recent(self, at: float, minutes: int) -> list[_Minute]:
        since = at - at % MINUTE - (minutes - 1) * MINUTE
        out = []
        for m in reversed(self.minutes):  # newest first: stop at the first minute before the window
            if m.start < since:
                break
            out.append(m)
        return out

    def past(self, at: float, minutes: int) -> list[_Minute]:
        """Minutes of the past day before the last ``minutes`` (the baseline the recent ones are judged by)."""
        until = at - at % MINUTE - (minutes - 1) * MINUTE
        return [m for m in self.minutes if at - HISTORY_MINUTES * MINUTE <= m.start < until]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class AnomalyDetector:
    """Feed it every audited request, in time order; it returns the alerts each one raises."""

    def __init__(self) -> None:
        self._keys: dict[str, _KeyHistory] = {}

    def observe(self, *, at: float, key: str | None, key_name: str | None = None, client: str | None = None,
                route: str | None = None, status: int = 200, bytes_out: int = 0,
                auth_failed: bool = False) -> list[Alert]:
        alerts: list[Alert] = []
        if auth_failed:
            who = f"addr:{client or '?'}"
            if who not in self._keys:
                self._forget_quiet_addresses(at)
            history = self._keys.setdefault(who, _KeyHistory(at))
            history.minute(at).auth_failures += 1
            failures = sum(m.auth_failures for m in history.recent(at, AUTH_WINDOW))
            if failures >= AUTH_FAILURES:
                alerts += self._raise(history, Alert(
                    at, "failed_auth", who, None, f"{failures} requests with a wrong or revoked key from {client} in "
                    f"{AUTH_WINDOW} minutes (threshold {AUTH_FAILURES}): someone may be guessing keys",
                    failures, AUTH_FAILURES))
            return alerts
        if key is None:
            return alerts
        history = self._keys.setdefault(key, _KeyHistory(at))
        learned = history.requests >= LEARN_REQUESTS and at - history.first_seen >= LEARN_SECONDS
        name = key_name or key
        if learned and client and client not in history.addresses:
            alerts += self._raise(history, Alert(
                at, "new_address", key, key_name, f"key '{name}' used from {client}, an address it never used before "
                f"(known: {', '.join(sorted(history.addresses)[:3])}): if that was not you, revoke the key",
                1, 0), cooldown_kind=f"new_address:{client}")
        if learned and route and route not in history.routes:
            alerts += self._raise(history, Alert(
                at, "new_route", key, key_name, f"key '{name}' called {route}, which it never called before",
                1, 0), cooldown_kind=f"new_route:{route}")
        if client:
            history.addresses.add(client)
        if route:
            history.routes.add(route)
        history.requests += 1
        minute = history.minute(at)
        minute.requests += 1
        minute.errors += status >= 400
        minute.bytes_out += bytes_out

        busiest = history.busiest
        burst_threshold = max(BURST_FLOOR, BURST_FACTOR * busiest)
        if minute.requests > burst_threshold:
            alerts += self._raise(history, Alert(
                at, "burst", key, key_name, f"key '{name}' made {minute.requests} requests in a minute; its busiest "
                f"minute of the past day had {busiest:.0f} (threshold {burst_threshold:.0f})", minute.requests,
                burst_threshold))
        window = history.recent(at, ERROR_WINDOW)
        requests, errors = sum(m.requests for m in window), sum(m.errors for m in window)
        if requests >= ERROR_MIN_REQUESTS and errors >= ERROR_SHARE * requests:
            alerts += self._raise(history, Alert(
                at, "errors", key, key_name, f"{errors} of key '{name}''s last {requests} requests failed or were "
                f"refused in {ERROR_WINDOW} minutes (threshold {ERROR_SHARE:.0%} of at least {ERROR_MIN_REQUESTS})",
                errors / requests, ERROR_SHARE))
        sent = sum(m.bytes_out for m in history.recent(at, VOLUME_WINDOW))
        largest = history.largest
        volume_threshold = max(VOLUME_FLOOR, VOLUME_FACTOR * largest)
        if sent > volume_threshold:
            alerts += self._raise(history, Alert(
                at, "volume", key, key_name, f"key '{name}' received {sent / 1e6:.1f} MB in {VOLUME_WINDOW} minutes; "
                f"its largest before was {largest / 1e6:.1f} MB (threshold {volume_threshold / 1e6:.1f} MB)", sent,
                volume_threshold))
        return alerts

    def _forget_quiet_addresses(self, at: float) -> None:
        addresses = [k for k in self._keys if k.startswith("addr:")]
        if len(addresses) < MAX_ADDRESSES:
            return
        since = at - AUTH_WINDOW * MINUTE
        quiet = [k for k in addresses if not self._keys[k].minutes or self._keys[k].minutes[-1].start < since]
        # Everyone failing at once: forget the oldest half rather than grow without bound.
        for k in quiet or sorted(addresses, key=lambda k: self._keys[k].first_seen)[:len(addresses) // 2]:
            del self._keys[k]

    @staticmethod
    def _raise(history: _KeyHistory, alert: Alert, cooldown_kind: str | None = None) -> list[Alert]:
        kind = cooldown_kind or alert.kind
        last = history.last_alert.get(kind)
        if last is not None and alert.at - last < COOLDOWN_SECONDS:
            return []
        history.last_alert[kind] = alert.at
        return [alert]
