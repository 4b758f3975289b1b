"""Anomaly detection on replayed traffic: two ordinary days of mixed use raise no alert (false alarms counted),
while an injected burst, a stolen key used from elsewhere and a key-guessing run each raise theirs; and alerts
reach the audit log, /metrics and /v1/security/alerts."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from plait.runtime import Runtime
from plait.security.anomaly import Alert, AnomalyDetector

DAY = 86_400.0
START = 1_767_225_600.0  # a Monday, 00:00 UTC


@dataclass(frozen=True)
class Request:
    at: float
    key: str | None
    client: str
    route: str
    status: int = 200
    bytes_out: int = 800
    auth_failed: bool = False


def ordinary_day(day: int, rng: random.Random) -> list[Request]:
    """A person's CLI and web page during working hours (with bursts: a page load, a batch of embeddings), an
    editor plug-in completing code, an automation classifying mail every five minutes all day, a few refused
    requests, and one mistyped key."""
    base = START + day * DAY
    out: list[Request] = []
    local_routes = ["/v1/chat/completions", "/v1/embeddings", "/v1/search", "/v1/ask", "/v1/models",
                    "/v1/summarize", "/v1/workflows"]
    for minute in range(8 * 60, 18 * 60):
        t = base + minute * 60
        n = rng.choices([0, 1, 2, 4, 30], weights=[50, 25, 15, 9, 1])[0]  # now and then a page load or a batch
        for _ in range(n):
            route = rng.choice(local_routes)
            status = 400 if rng.random() < 0.03 else 200
            size = rng.randint(2_000, 40_000) if route in ("/v1/search", "/v1/ask") else rng.randint(200, 4_000)
            out.append(Request(t + rng.random() * 59, "local", "127.0.0.1", route, status, size))
        if 9 * 60 <= minute < 17 * 60 and rng.random() < 0.6:
            for _ in range(rng.randint(1, 6)):
                out.append(Request(t + rng.random() * 59, "editor", "127.0.0.1", "/v1/completions", 200,
                                   rng.randint(300, 2_000)))
    for minute in range(0, 24 * 60, 5):
        t = base + minute * 60
        for i in range(rng.randint(3, 12)):
            out.append(Request(t + i, "n8n", "10.0.0.7", rng.choice(["/v1/classify", "/v1/summarize"]), 200,
                               rng.randint(300, 3_000)))
    typo = base + 10 * 3600 + rng.randint(0, 3600)
    out += [Request(typo + i, None, "127.0.0.1", "/v1/models", 401, auth_failed=True) for i in range(2)]
    return sorted(out, key=lambda r: r.at)


def replay(detector: AnomalyDetector, requests: list[Request]) -> list[Alert]:
    alerts: list[Alert] = []
    for r in requests:
        alerts += detector.observe(at=r.at, key=r.key, key_name=r.key, client=r.client, route=r.route,
                                   status=r.status, bytes_out=r.bytes_out, auth_failed=r.auth_failed)
    return alerts


def test_ordinary_days_raise_no_alert() -> None:
    rng = random.Random(1)
    traffic = ordinary_day(0, rng) + ordinary_day(1, rng) + ordinary_day(2, rng)
    alerts = replay(AnomalyDetector(), traffic)
    print(f"{len(traffic)} requests over 3 days, false alarms: {len(alerts)}")
    assert len(traffic) > 10_000
    assert alerts == [], [a.message for a in alerts]


def attacks(rng: random.Random) -> tuple[list[Request], float]:
    at = START + 2 * DAY + 14 * 3600 + 7  # day three, 14:00
    burst = [Request(at + i * 0.1, "editor", "127.0.0.1", "/v1/completions") for i in range(400)]
    stolen_at = at + 3600
    stolen = [Request(stolen_at + i * 2, "n8n", "198.51.100.23", rng.choice(["/v1/search", "/v1/ask"]), 200,
                      250_000) for i in range(120)]
    guessing = [Request(at + 7200 + i, None, "203.0.113.50", "/v1/models", 401, auth_failed=True) for i in range(30)]
    return burst + stolen + guessing, at


def test_a_burst_a_stolen_key_and_key_guessing_raise_alerts() -> None:
    rng = random.Random(2)
    detector = AnomalyDetector()
    ordinary = ordinary_day(0, rng) + ordinary_day(1, rng)
    third = ordinary_day(2, rng)
    injected, at = attacks(rng)
    alerts = replay(detector, sorted(ordinary + third + injected, key=lambda r: r.at))
    kinds = Counter((a.kind, a.key) for a in alerts)
    assert kinds[("burst", "editor")] == 1
    assert kinds[("new_address", "n8n")] == 1 and kinds[("new_route", "n8n")] >= 1
    assert kinds[("volume", "n8n")] == 1
    assert kinds[("failed_auth", "addr:203.0.113.50")] == 1
    false_alarms = [a for a in alerts if a.at < at or a.key not in ("editor", "n8n", "addr:203.0.113.50")]
    print(f"alerts: {dict(kinds)}; false alarms: {len(false_alarms)}")
    assert false_alarms == []
    burst = next(a for a in alerts if a.kind == "burst")
    assert "requests in a minute" in burst.message and burst.value > burst.threshold >= 60
    assert "198.51.100.23" in next(a.message for a in alerts if a.kind == "new_address")


def test_a_new_key_is_not_judged_before_it_has_a_history() -> None:
    detector = AnomalyDetector()
    alerts = replay(detector, [Request(START + i * 30, "fresh", "127.0.0.1", f"/v1/route{i % 7}") for i in range(30)])
    alerts += replay(detector, [Request(START + 1000, "fresh", "192.0.2.1", "/v1/other")])
    assert alerts == []  # under an hour old: new addresses and routes are what a new key does


def test_alerts_reach_the_audit_log_metrics_and_the_api(fake_models: Runtime) -> None:
    from fastapi.testclient import TestClient

    from plait.security.audit import read, verify
    from plait.serve.app import create_app
    from plait.serve.auth import KeyStore, ensure_local_key

    app = create_app(fake_models.settings, runtime=fake_models)
    key = ensure_local_key(KeyStore(fake_models.store), fake_models.settings.home)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for _ in range(12):  # guessing keys from one address
            client.app.state.ctx.backoff.succeeded("testclient")  # type: ignore[attr-defined]
            client.get("/v1/models", headers={"Authorization": "Bearer plait-" + "g" * 43})
        auth = {"Authorization": f"Bearer {key}"}
        alerts = client.get("/v1/security/alerts", headers=auth).json()["alerts"]
        assert [a["kind"] for a in alerts] == ["failed_auth"] and "testclient" in alerts[0]["message"]
        metrics = client.get("/metrics", headers=auth).text
        assert 'plait_security_alerts_total{kind="failed_auth"} 1.0' in metrics
        assert "plait_auth_failures_total 12.0" in metrics
        events = client.get("/v1/security/audit?kind=auth_failure", headers=auth).json()["events"]
        assert len(events) == 12 and events[0]["client"] == "testclient"
    rows = read(fake_models.store, kinds=("request",), limit=1000)
    assert any(r.route == "/v1/security/alerts" and r.key_name == "local" for r in rows)
    count, bad = verify(fake_models.store)
    assert count >= 26 and bad is None


def test_the_audit_log_is_append_only_and_tamper_evident(fake_models: Runtime) -> None:
    import sqlite3

    from plait.security.audit import AuditEvent, AuditLog, verify

    log = AuditLog(fake_models.store, background=False)
    for i in range(5):
        log.record(AuditEvent(START + i, "request", key="k", key_name="k", route="/v1/models", status=200))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        fake_models.store.connection.execute("UPDATE security_audit SET status = 500")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        fake_models.store.connection.execute("DELETE FROM security_audit")
    assert verify(fake_models.store) == (5, None)
    conn = fake_models.store.connection  # someone with the key drops the trigger and edits a row
    conn.execute("DROP TRIGGER security_audit_no_update")
    conn.execute("UPDATE security_audit SET status = 500 WHERE id = 3")
    assert verify(fake_models.store) == (3, 3)


def test_plait_security_audit_reads_filters_and_verifies(fake_models: Runtime,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from plait.security.audit import AuditEvent, AuditLog
    from tests.cli import plait

    log = AuditLog(fake_models.store, background=False)
    log.record(AuditEvent(START, "request", key="k1", key_name="editor", client="127.0.0.1", method="POST",
                          route="/v1/search", status=200, bytes_in=40, bytes_out=900,
                          detail={"passages": [3, 4], "egress": [{"backend": "http://h/v1", "bytes": 10,
                                                                  "redacted": 2}]}))
    for i in range(12):
        log.record(AuditEvent(START + 1 + i, "auth_failure", client="203.0.113.9", route="/v1/models"))
    code, out, _ = plait(capsys, "security", "audit", "--key", "editor")
    assert code == 0 and "/v1/search 200" in out and "passages=2" in out and "(2 redacted)" in out
    code, out, _ = plait(capsys, "security", "audit", "--alerts")
    assert code == 0 and out.count("ALERT failed_auth") == 1 and "203.0.113.9" in out
    code, out, _ = plait(capsys, "security", "audit", "--kind", "auth_failure", "--json", "--limit", "3")
    assert code == 0 and len(out.splitlines()) == 3
    code, _, err = plait(capsys, "security", "audit", "--verify")
    assert code == 0 and "14 row(s), chain verified" in err
    code, _, err = plait(capsys, "security", "audit", "--since", "yesterday-ish")
    assert code == 4 and "--since" in err


def test_network_allow_entries_are_checked_when_the_workflow_is_loaded(tmp_path: Path) -> None:
    from plait.workflows.errors import SpecError
    from tests import workflow_helpers as h

    with pytest.raises(SpecError, match="network"):
        h.workflow(tmp_path, "name: bad\ntrigger: {type: manual}\nnetwork: {allow: ['10.0.0.0/33x']}\n"
                             "steps:\n  - template: x\n")
    ok = h.workflow(tmp_path, "name: ok\ntrigger: {type: manual}\nnetwork: {allow: ['[::1]:8080', nas.local, "
                              "'192.168.1.0/24', '127.0.0.1:9']}\nsteps:\n  - template: x\n", name="ok.yml")
    assert ok.network.allow[0] == "[::1]:8080"


def test_failed_sign_ins_from_endless_addresses_do_not_grow_memory_without_bound(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.security import anomaly

    monkeypatch.setattr(anomaly, "MAX_ADDRESSES", 50)
    detector = anomaly.AnomalyDetector()
    for i in range(500):  # one failure each from 500 addresses, ten minutes apart in groups
        detector.observe(at=1_000_000.0 + (i // 50) * 600, key=None, client=f"2001:db8::{i:x}", auth_failed=True)
    assert len(detector._keys) <= 50
    # An address that keeps failing is still caught.
    alerts = [a for n in range(10) for a in detector.observe(at=1_010_000.0 + n, key=None, client="2001:db8::bad",
                                                              auth_failed=True)]
    assert [a.kind for a in alerts] == ["failed_auth"]
