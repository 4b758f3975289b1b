"""The server's parts on their own: keys, rate limits, cache, generation queue, micro-batcher."""

import asyncio
import logging
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from plait.errors import InputError
from plait.models.base import GenerationOptions
from plait.runtime import Runtime
from plait.serve.auth import KeyStore, ensure_local_key, local_key_path, parse_scopes
from plait.serve.batching import MicroBatcher
from plait.serve.cache import ResponseCache, cache_key, generation_is_cacheable
from plait.serve.queue import GenerationQueue, QueueFull
from plait.serve.ratelimit import RateLimiter


def test_keys_are_stored_hashed_and_verified_until_revoked(runtime: Runtime) -> None:
    keys = KeyStore(runtime.store)
    new = keys.create("editor", "chat,tasks")
    assert new.secret.startswith("plait-") and len(new.secret) > 40
    dump = "\n".join(str(tuple(r)) for r in runtime.store.query("SELECT * FROM api_keys"))
    assert new.secret not in dump  # only a hash is kept
    found = keys.verify(new.secret)
    assert found is not None and found.scopes == ("chat", "tasks")
    assert found.allows("chat") and not found.allows("admin") and not found.allows("index")
    assert keys.verify(new.secret + "x") is None and keys.verify("sk-other") is None
    assert [k.name for k in keys.revoke("editor")] == ["editor"]
    assert keys.verify(new.secret) is None
    assert keys.list() == [] and len(keys.list(include_revoked=True)) == 1
    with pytest.raises(InputError, match="no active API key"):
        keys.revoke("editor")


def test_scopes_are_checked() -> None:
    assert parse_scopes("admin, chat") == ("chat", "admin")
    with pytest.raises(InputError, match="unknown scope"):
        parse_scopes("chat,root")
    with pytest.raises(InputError, match="at least one"):
        parse_scopes("")


def test_admin_scope_allows_everything(runtime: Runtime) -> None:
    key = KeyStore(runtime.store).create("ops", "admin").key
    assert all(key.allows(s) for s in ("chat", "tasks", "index", "admin"))


def test_local_key_file_is_private_and_reused(runtime: Runtime, plait_home: Path) -> None:
    keys = KeyStore(runtime.store)
    secret = ensure_local_key(keys, plait_home)
    path = local_key_path(plait_home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_local_key(keys, plait_home) == secret  # reused, not recreated
    keys.revoke("local")
    assert ensure_local_key(keys, plait_home) != secret  # a revoked local key is replaced


def test_rate_limiter_allows_a_burst_then_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert all(limiter.check("k", 3) == 0 for _ in range(3))
    wait = limiter.check("k", 3)
    assert 19 < wait <= 20  # one request per 20 s at 3/min
    assert limiter.check("other", 3) == 0  # per key
    now[0] += 20
    assert limiter.check("k", 3) == 0
    assert limiter.check("k", None) == 0  # no limit


def test_cache_is_bounded_in_entries_bytes_and_time() -> None:
    now = [0.0]
    cache = ResponseCache(2, 10, max_bytes=100, clock=lambda: now[0])
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"  # a is now the most recent
    cache.put("c", b"3")
    assert cache.get("b") is None and cache.get("a") == b"1" and cache.get("c") == b"3"
    now[0] += 11
    assert cache.get("a") is None  # expired
    cache.put("big", b"x" * 60)  # over a quarter of the byte budget: not kept
    assert cache.get("big") is None
    cache.put("d", b"x" * 20)
    cache.put("e", b"y" * 20)
    assert cache.get("d") is not None
    assert not ResponseCache(0, 10).enabled


def test_cache_keys_and_what_may_be_cached() -> None:
    assert cache_key("chat", {"a": 1, "b": 2}) == cache_key("chat", {"b": 2, "a": 1})
    assert cache_key("chat", "x") != cache_key("chat", "y")
    assert generation_is_cacheable(GenerationOptions(temperature=0))
    assert generation_is_cacheable(GenerationOptions(temperature=0.8, seed=3))
    assert not generation_is_cacheable(GenerationOptions(temperature=0.8))


def test_queue_is_fair_between_clients_and_bounded() -> None:
    async def main() -> list[str]:
        queue = GenerationQueue(max_waiting=4)
        first = queue.admit("m", "greedy")
        await first.wait()  # runs at once
        greedy = [queue.admit("m", "greedy") for _ in range(3)]
        polite = queue.admit("m", "polite")
        with pytest.raises(QueueFull) as full:
            queue.admit("m", "late")
        assert full.value.retry_after > 0
        order: list[str] = []

        async def run(name: str, ticket: object) -> None:
            await ticket.wait()  # type: ignore[attr-defined]
            order.append(name)
            await asyncio.sleep(0)
            ticket.release()  # type: ignore[attr-defined]

        tasks = [asyncio.create_task(run(f"greedy{i}", t)) for i, t in enumerate(greedy)]
        tasks.append(asyncio.create_task(run("polite", polite)))
        await asyncio.sleep(0)
        first.release()
        await asyncio.gather(*tasks)
        assert queue.depth("m") == 0
        return order

    order = asyncio.run(main())
    # The polite client's one request is not served after all of the greedy client's.
    assert order.index("polite") <= 1


def test_queue_runs_as_many_as_the_model_has_slots_and_shares_the_rest_fairly() -> None:
    async def main() -> list[str]:
        queue = GenerationQueue(max_waiting=8)
        # Four slots: a greedy client's four requests all run at once, none waits.
        running = [queue.admit("m", "greedy", slots=4) for _ in range(4)]
        assert all(t.turn.done() for t in running) and queue.depth("m") == 0
        more = [queue.admit("m", "greedy", slots=4) for _ in range(3)]
        polite = queue.admit("m", "polite", slots=4)
        assert not any(t.turn.done() for t in [*more, polite]) and queue.depth("m") == 4
        running[0].release()  # a slot frees: greedy still has three running, polite none, so polite goes
        await asyncio.sleep(0)
        started = ["polite" for t in [polite] if t.turn.done()]
        assert started == ["polite"] and not any(t.turn.done() for t in more)
        running[1].release()
        await asyncio.sleep(0)
        assert more[0].turn.done() and not more[1].turn.done()
        for t in [*running[2:], *more, polite]:
            t.release()
        assert queue.depth("m") == 0
        return started

    assert asyncio.run(main()) == ["polite"]


def test_queue_place_is_given_up_when_the_waiter_is_cancelled() -> None:
    async def main() -> None:
        queue = GenerationQueue(max_waiting=1)
        running = queue.admit("m", "a")
        waiting = queue.admit("m", "b")
        task = asyncio.create_task(waiting.wait())
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert queue.depth("m") == 0
        queue.admit("m", "c")  # room again
        running.release()

    asyncio.run(main())


def test_micro_batcher_merges_concurrent_requests() -> None:
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        calls.append(items)
        return [i * 10 for i in items]

    async def main() -> list[list[int]]:
        batcher: MicroBatcher[int, int] = MicroBatcher(run, window=0.05, max_batch=64)
        results = await asyncio.gather(*(batcher.submit([i, i + 100]) for i in range(8)))
        await batcher.close()
        return list(results)

    results = asyncio.run(main())
    assert results == [[i * 10, (i + 100) * 10] for i in range(8)]  # each gets its own rows back
    assert len(calls) < 8 and sum(len(c) for c in calls) == 16


def test_micro_batcher_respects_max_batch_and_passes_errors() -> None:
    sizes: list[int] = []

    def run(items: list[str]) -> list[str]:
        sizes.append(len(items))
        if "bad" in items:
            raise InputError("bad item")
        return items

    async def main() -> None:
        batcher: MicroBatcher[str, str] = MicroBatcher(run, window=0.02, max_batch=4)
        out = await asyncio.gather(*(batcher.submit([str(i)]) for i in range(10)))
        assert [o[0] for o in out] == [str(i) for i in range(10)]
        with pytest.raises(InputError):
            await batcher.submit(["bad"])
        assert await batcher.submit(["fine"]) == ["fine"]  # the batcher survives an error
        await batcher.close()

    asyncio.run(main())
    assert max(sizes) <= 4


def test_micro_batcher_runs_up_to_in_flight_batches_at_once() -> None:
    import threading

    gate = threading.Event()
    running: list[int] = []
    peak: list[int] = [0]
    lock = threading.Lock()

    def run(items: list[int]) -> list[int]:
        with lock:
            running.append(1)
            peak[0] = max(peak[0], len(running))
        gate.wait(2)  # held until the test has seen how many batches run together
        with lock:
            running.pop()
        return items

    async def main(in_flight: int) -> list[list[int]]:
        from concurrent.futures import ThreadPoolExecutor

        batcher: MicroBatcher[int, int] = MicroBatcher(run, window=0.0, max_batch=1, in_flight=in_flight,
                                                       executor=ThreadPoolExecutor(4))
        tasks = [asyncio.create_task(batcher.submit([i])) for i in range(4)]
        for _ in range(100):  # until as many batches run as may (or 2 s: a slow machine gets time)
            await asyncio.sleep(0.02)
            if peak[0] >= in_flight:
                break
        await asyncio.sleep(0.1)  # and a moment more, in which no extra batch may start
        gate.set()
        out = await asyncio.gather(*tasks)
        await batcher.close()
        return list(out)

    assert asyncio.run(main(2)) == [[0], [1], [2], [3]] and peak[0] == 2
    gate.clear()
    peak[0] = 0
    assert asyncio.run(main(1)) == [[0], [1], [2], [3]] and peak[0] == 1


def test_a_job_that_fails_unexpectedly_logs_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    from plait.serve.jobs import Jobs

    def work(progress: Any) -> None:
        {}["missing"]

    with caplog.at_level(logging.ERROR, logger="plait.serve"):
        job = Jobs().start("test", "a job", work)
        for _ in range(500):
            if job.finished_at is not None:
                break
            time.sleep(0.01)
    assert job.state == "failed" and job.error == "unexpected error: KeyError"
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "'missing'" in caplog.text and "work" in caplog.text  # the traceback, not only the name
