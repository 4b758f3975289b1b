"""The workflow HTTP routes with a running background runner: webhooks with their own key, status and
progress, manual runs, retries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from plait.runtime import Runtime
from plait.workflows import runner as workflow_runner
from plait.workflows.webhook_keys import create_webhook_key
from tests import workflow_helpers as h
from tests.homes import read_text

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

HOOK = """name: hook
trigger: {type: webhook, poll_seconds: 30}
steps:
  - id: line
    template: "{{ item.body.event }} for {{ item.body.user }}"
  - sink: file
    with: {path: "{{ key_slug }}.txt", content: "{{ line }}"}
"""
MANUAL = """name: byhand
trigger: {type: manual}
retry: {attempts: 1}
steps:
  - id: up
    task: test_flaky
    with: {text: "{{ item.text }}", failures: 1}
"""


@pytest.fixture
def client(fake_models: Runtime) -> Iterator[tuple[TestClient, workflow_runner.Runner]]:
    from fastapi import Depends, Header, HTTPException

    h.reset()
    folder = fake_models.settings.home / "workflows"
    folder.mkdir()
    (folder / "hook.yml").write_text(HOOK)
    (folder / "byhand.yml").write_text(MANUAL)
    (folder / "broken.yml").write_text("name: broken\ntrigger: {type: manual}\nsteps: []\n")

    def admin(x_admin: str | None = Header(None)) -> None:
        if x_admin != "yes":
            raise HTTPException(403, "admin only")

    handle = workflow_runner.start(fake_models)
    app = fastapi.FastAPI()
    app.state.ctx = SimpleNamespace(runtime=fake_models)
    app.state.workflows = handle
    from plait.workflows.router import workflow_router

    app.include_router(workflow_router(admin=[Depends(admin)]))
    try:
        yield TestClient(app, base_url="http://127.0.0.1"), handle
    finally:
        handle.stop()


def _wait(condition, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_webhook_deliveries_need_the_workflows_own_key_and_are_recorded_once(
        client: tuple[TestClient, workflow_runner.Runner], fake_models: Runtime) -> None:
    http, _ = client
    secret = create_webhook_key(fake_models.store, "hook")
    assert http.post("/v1/workflows/hook/webhook", json={"event": "push"}).status_code == 401
    assert http.post("/v1/workflows/hook/webhook", json={}, headers={"X-Plait-Webhook-Key": "nope"}).status_code == 401
    other = create_webhook_key(fake_models.store, "byhand")
    assert http.post("/v1/workflows/hook/webhook", json={}, headers={"X-Plait-Webhook-Key": other}).status_code == 401
    headers = {"X-Plait-Webhook-Key": secret, "Idempotency-Key": "delivery-1"}
    first = http.post("/v1/workflows/hook/webhook", json={"event": "push", "user": "ann"}, headers=headers)
    again = http.post("/v1/workflows/hook/webhook", json={"event": "push", "user": "ann"}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == {"workflow": "hook", "key": "webhook:delivery-1", "duplicate": False}
    assert again.json()["duplicate"] is True
    via_query = http.post(f"/v1/workflows/hook/webhook?key={secret}", json={"event": "tag", "user": "bo"})
    assert via_query.status_code == 202
    out = fake_models.settings.home / "output" / "hook"
    _wait(lambda: out.exists() and len(list(out.iterdir())) == 2)
    assert read_text(out / "webhook-delivery-1.txt") == "push for ann"
    big = http.post("/v1/workflows/hook/webhook", content=b"x" * 1_000_001, headers=headers)
    assert big.status_code == 413


def test_status_run_and_retry_routes(client: tuple[TestClient, workflow_runner.Runner]) -> None:
    http, handle = client
    admin = {"X-Admin": "yes"}
    assert http.get("/v1/workflows").status_code == 403
    listed = {w["name"]: w for w in http.get("/v1/workflows", headers=admin).json()}
    assert set(listed) == {"hook", "byhand", "broken.yml"} and listed["broken.yml"]["problem"]
    assert listed["hook"]["enabled"] is True
    accepted = http.post("/v1/workflows/byhand/run", json={"items": [{"text": "a"}, {"text": "b"}]}, headers=admin)
    assert accepted.status_code == 202 and len(accepted.json()["accepted"]) == 2
    _wait(lambda: http.get("/v1/workflows/byhand", headers=admin).json()["counts"]["failed"] == 2)
    status = http.get("/v1/workflows/byhand", headers=admin).json()
    assert status["progress"] == 1.0 and status["failed"][0]["error"].startswith("step 'up': ConnectionError")
    assert status["extra"]["trigger"] == "manual"
    assert http.post("/v1/workflows/byhand/retry", json={}, headers=admin).json()["retried"] == 2
    _wait(lambda: http.get("/v1/workflows/byhand", headers=admin).json()["counts"]["done"] == 2)
    assert http.post("/v1/workflows/nope/run", json={}, headers=admin).status_code == 404
    assert sorted(s.name for s in handle.status() if s.extra["thread_alive"]) == ["byhand", "hook"]


def test_items_given_by_hand_are_keyed_manual_whatever_the_trigger(
        client: tuple[TestClient, workflow_runner.Runner], fake_models: Runtime) -> None:
    http, handle = client
    admin = {"X-Admin": "yes"}
    item = {"body": {"event": "replay", "user": "cy"}}
    via_runner = http.post("/v1/workflows/hook/run", json={"items": [item]}, headers=admin).json()["accepted"]
    handle.remove("hook")  # not running here: the route records the item itself
    via_route = http.post("/v1/workflows/byhand/run", json={"items": [item]}, headers=admin).json()["accepted"]
    assert [k.split(":")[0] for k in via_runner + via_route] == ["manual", "manual"]
    assert h.state(fake_models, "hook").known(via_runner) == set(via_runner)


class _Guarded(dict[str, Any]):
    """A runner's ``slots`` that fails when iterated without the runner's lock: enabling or disabling a
    workflow from another thread would change it meanwhile ("dictionary changed size during iteration")."""

    def __init__(self, lock: Any, slots: dict[str, Any]) -> None:
        super().__init__(slots)
        self.lock = lock

    def _check(self) -> None:
        assert self.lock.locked(), "the runner's slots were iterated without its lock"

    def __iter__(self) -> Iterator[str]:
        self._check()
        return super().__iter__()

    def keys(self) -> Any:
        self._check()
        return super().keys()

    def items(self) -> Any:
        self._check()
        return super().items()

    def values(self) -> Any:
        self._check()
        return super().values()


def test_the_runners_workflows_are_read_under_its_lock(client: tuple[TestClient, workflow_runner.Runner]) -> None:
    http, handle = client
    handle.slots = _Guarded(handle._lock, handle.slots)
    assert handle.names == ["byhand", "hook"]
    assert sorted(s.name for s in handle.status()) == ["byhand", "hook"]
    listed = http.get("/v1/workflows", headers={"X-Admin": "yes"}).json()
    assert {w["name"] for w in listed} >= {"byhand", "hook"}
    handle.remove("hook")
    assert handle.names == ["byhand"]
