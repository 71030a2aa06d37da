"""A shared store that dies, freezes, comes back empty or fills up, under every driver.

Each test owns its redis-server (``own_redis_server``) and hurts it for real:
SIGKILL, SIGSTOP, a restart, ``--maxmemory``. Time is a FakeClock: the store's
``recheck`` passes when the test advances it, never by sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

import buttress
from buttress import PrometheusCollector
from buttress._flow import Flow, adrive, drive
from buttress.stores import UNAVAILABLE, RedisStore, StoreHealth
from buttress.testing import FakeClock
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio

COUNT = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], 60000)
return value
"""


class Probed:
    """A store operation that counts how often the store really was asked.

    ``busy`` is set once it has been asked ``busy_after`` times.
    """

    def __init__(self, key: str, busy_after: int = 0) -> None:
        self.key = key
        self.calls = 0
        self.busy_after = busy_after
        self.busy = threading.Event()

    def _called(self) -> None:
        self.calls += 1
        if self.calls >= self.busy_after:
            self.busy.set()

    def blocking(self, client: Any) -> object:
        self._called()
        return client.incr(self.key)

    async def awaiting(self, client: Any) -> object:
        self._called()
        return await client.incr(self.key)


async def ask(store: RedisStore, operation: Probed, mode: str) -> object:
    if mode == "sync":
        return store.run(operation.blocking)
    return await store.arun(operation.awaiting, operation.blocking)


def counting_flow(store: RedisStore) -> Flow:
    answer = yield from store.script(COUNT)([store.key("count")], [1])
    return httpx.Response(200, json=[None if answer is UNAVAILABLE else answer])


async def run(flow: Flow, mode: str) -> httpx.Response:
    inner = httpx.MockTransport(lambda request: httpx.Response(204))
    if mode == "sync":
        return drive(flow, inner, FakeClock())
    return await adrive(flow, inner, FakeClock())


async def count(store: RedisStore, mode: str) -> int | None:
    """Add one to the store's count through a flow: the new count, or ``None`` if away."""
    answer: int | None = (await run(counting_flow(store), mode)).json()[0]
    return answer


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def assert_every_key_expires(server: RedisServer, store: RedisStore) -> None:
    with redis.Redis(port=server.port) as direct:
        keys = direct.keys(f"buttress:{{{store.namespace}}}:*")
        assert keys
        assert all(direct.pttl(key) > 0 for key in keys)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_store(
    own_redis_server: RedisServer, clock: FakeClock
) -> Iterator[Callable[..., RedisStore]]:
    """Stores on the test's own server (closed afterwards), timed by the test's clock."""
    made: list[RedisStore] = []

    def factory(**settings: Any) -> RedisStore:
        settings.setdefault("timeout", 2.0)
        made.append(RedisStore(own_redis_server.url, namespace="faults", clock=clock, **settings))
        return made[-1]

    yield factory
    for store in made:
        store.close()


async def test_killed_mid_run_falls_back_warns_once_and_says_when_it_is_back(
    own_redis_server: RedisServer,
    make_store: Callable[..., RedisStore],
    clock: FakeClock,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector = PrometheusCollector()
    store = make_store(on_degraded_change=collector.store_degraded_changed)

    def gauge() -> float | None:
        labels = {"store": store.health.name}
        return collector.registry.get_sample_value("buttress_store_degraded", labels)

    caplog.set_level(logging.INFO, "buttress.store")
    assert gauge() == 0
    answers = [await count(store, mode) for _ in range(3)]
    own_redis_server.kill()
    for _ in range(5):
        answers.append(await count(store, mode))
        clock.advance(0.25)  # not yet a whole recheck (1 s) per call
    assert answers == [1, 2, 3, None, None, None, None, None]
    assert store.degraded
    assert gauge() == 1
    assert len(records(caplog, logging.WARNING)) == 1
    assert records(caplog, logging.INFO) == []

    own_redis_server.start()  # empty: the count starts again, the scripts are sent again
    clock.advance(1.0)
    assert await count(store, mode) == 1
    assert not store.status().degraded
    assert gauge() == 0
    assert len(records(caplog, logging.WARNING)) == 1
    [back] = records(caplog, logging.INFO)
    assert "is back" in back
    assert_every_key_expires(own_redis_server, store)
    await store.aclose()


async def test_a_frozen_store_costs_one_timeout_then_one_probe_per_recheck(
    own_redis_server: RedisServer,
    make_store: Callable[..., RedisStore],
    clock: FakeClock,
    mode: str,
) -> None:
    store = make_store(timeout=0.5, recheck=1.0)
    operation = Probed(store.key("n"))
    assert await ask(store, operation, mode) == 1
    own_redis_server.pause()
    try:
        started = time.monotonic()
        assert await ask(store, operation, mode) is UNAVAILABLE
        # The call gave up after its timeout (0.5 s, twice at most: connect, then the
        # command). 5 s of tolerance for a loaded 2-core machine; a hang never returns.
        assert time.monotonic() - started < 5
        assert "Timeout" in str(store.status().last_error)
        assert operation.calls == 2

        for _ in range(10):  # within one recheck: nobody asks the frozen store
            assert await ask(store, operation, mode) is UNAVAILABLE
            clock.advance(0.09)
        assert operation.calls == 2
        clock.advance(0.15)  # past a whole recheck since the failure: one probe, timing out
        for _ in range(10):
            assert await ask(store, operation, mode) is UNAVAILABLE
        assert operation.calls == 3
    finally:
        own_redis_server.resume()
    clock.advance(1.0)
    answer = await ask(store, operation, mode)
    # Thawed, the server may still run the increments that timed out: a timeout
    # cannot take back a command already sent, so a count only errs upwards.
    assert isinstance(answer, int)
    assert answer >= 2
    assert operation.calls == 4
    assert not store.degraded
    await store.aclose()


async def test_a_store_restarted_empty_runs_its_scripts_again(
    own_redis_server: RedisServer,
    make_store: Callable[..., RedisStore],
    clock: FakeClock,
    mode: str,
) -> None:
    store = make_store()
    assert await count(store, mode) == 1
    own_redis_server.stop()  # the store is not asked meanwhile: it never sees it away
    own_redis_server.start()  # no keys, and no scripts cached: NOSCRIPT, then loaded again
    answers = [await count(store, mode) for _ in range(2)]
    if mode == "async" and answers == [None, None]:
        # redis-py's asyncio client may send on the connection the restart closed
        # before it sees it closed: that call falls back (a retry might count twice),
        # and a recheck later the store reconnects. The blocking client checks first.
        clock.advance(1.0)
        answers = [await count(store, mode) for _ in range(2)]
    assert answers == [1, 2]
    assert not store.degraded
    assert_every_key_expires(own_redis_server, store)
    await store.aclose()


@pytest.fixture
def full_redis_server() -> Iterator[RedisServer]:
    """A redis-server that refuses every write: its memory is over its (tiny) maximum.

    Filling a server up to its maximum is not enough: a connection closing frees a little
    memory, and the next write may fit again. A maximum of one byte is always exceeded.
    """
    from tests.servers import redis_server_binary, require_server

    require_server("redis-server", redis_server_binary() is not None)
    with RedisServer("--maxmemory-policy", "noeviction") as server:
        with redis.Redis(port=server.port) as direct:
            direct.config_set("maxmemory", 1)
            with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
                direct.set("ballast", b"x")
        yield server


async def test_a_full_store_is_a_store_error_not_a_redis_one(
    full_redis_server: RedisServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "buttress.store")
    store = RedisStore(full_redis_server.url, namespace="full", timeout=2.0)
    assert await count(store, mode) is None  # per-process state instead
    assert store.degraded
    assert "maxmemory" in str(store.status().last_error)
    assert len(records(caplog, logging.WARNING)) == 1

    raising = RedisStore(
        full_redis_server.url, namespace="full", timeout=2.0, on_store_error="raise"
    )
    with pytest.raises(buttress.StoreError, match="maxmemory") as caught:
        await count(raising, mode)
    assert isinstance(caught.value.__cause__, redis.exceptions.ResponseError)
    for each in (store, raising):
        await each.aclose()


@pytest.mark.parametrize("fault", ["killed", "frozen"])
async def test_on_store_error_raise_gives_our_error_never_redis_pys(
    own_redis_server: RedisServer, make_store: Callable[..., RedisStore], mode: str, fault: str
) -> None:
    store = make_store(on_store_error="raise", timeout=0.5)
    assert await count(store, mode) == 1
    if fault == "killed":
        own_redis_server.kill()
    else:
        own_redis_server.pause()
    try:
        for _ in range(2):  # every call is tried, and each failure raises
            with pytest.raises(buttress.StoreError) as caught:
                await count(store, mode)
            assert isinstance(caught.value, buttress.ClientError)
            assert isinstance(caught.value.__cause__, redis.exceptions.RedisError | OSError)
            assert not store.degraded  # raising is not falling back
    finally:
        if fault == "frozen":
            own_redis_server.resume()
    await store.aclose()


@pytest.mark.parametrize("kind", ["threads", "tasks"])
async def test_many_callers_of_a_store_killed_mid_run_make_one_warning(
    own_redis_server: RedisServer,
    make_store: Callable[..., RedisStore],
    clock: FakeClock,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "buttress.store")
    store = make_store()
    callers, calls_after = 16, 20
    operation = Probed(store.key("n"), busy_after=5 * callers)
    killed = threading.Event()

    def in_thread() -> list[object]:
        answers = []
        while not killed.is_set():
            answers.append(store.run(operation.blocking))
        return answers + [store.run(operation.blocking) for _ in range(calls_after)]

    async def in_task() -> list[object]:
        answers = []
        while not killed.is_set():
            answers.append(await store.arun(operation.awaiting, operation.blocking))
        for _ in range(calls_after):
            answers.append(await store.arun(operation.awaiting, operation.blocking))
        return answers

    def kill_when_busy() -> None:
        operation.busy.wait(30)  # every caller is asking by then (30 s: a stuck test's bound)
        own_redis_server.kill()
        killed.set()

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    if kind == "threads":
        with ThreadPoolExecutor(callers) as pool:
            each = list(pool.map(lambda _: in_thread(), range(callers)))
    else:
        each = list(await asyncio.gather(*(in_task() for _ in range(callers))))
    killer.join()
    assert operation.busy.is_set()
    counted = [a for answers in each for a in answers if isinstance(a, int)]
    assert len(counted) == len(set(counted))  # no increment answered twice
    assert all(a is UNAVAILABLE for answers in each for a in answers if not isinstance(a, int))
    assert all(answers[-calls_after:] == [UNAVAILABLE] * calls_after for answers in each)
    assert len(records(caplog, logging.WARNING)) == 1

    own_redis_server.start()
    clock.advance(1.0)
    if kind == "threads":
        with ThreadPoolExecutor(callers) as pool:
            back = list(pool.map(lambda _: store.run(operation.blocking), range(callers)))
    else:
        back = await asyncio.gather(
            *(store.arun(operation.awaiting, operation.blocking) for _ in range(callers))
        )
    # One caller probes, the others keep their own state until the probe succeeds.
    counted = sorted(a for a in back if isinstance(a, int))
    assert len(counted) + back.count(UNAVAILABLE) == callers
    assert counted == list(range(1, len(counted) + 1))  # a fresh count, none counted twice
    assert counted
    assert len(records(caplog, logging.INFO)) == 1
    assert len(records(caplog, logging.WARNING)) == 1
    await store.aclose()


async def test_an_answer_from_before_the_store_went_away_does_not_say_it_is_back(
    own_redis_server: RedisServer,
    make_store: Callable[..., RedisStore],
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reply that was on its way when the server died says nothing of the store now."""
    caplog.set_level(logging.INFO, "buttress.store")
    store = make_store()
    key = store.key("n")
    answered, reported = threading.Event(), threading.Event()

    def slow_blocking(client: Any) -> object:
        value = client.incr(key)
        answered.set()
        reported.wait(30)  # 30 s: a stuck test's bound
        return value

    answered_on_loop, reported_on_loop = asyncio.Event(), asyncio.Event()

    async def slow_awaiting(client: Any) -> object:
        value = await client.incr(key)
        answered_on_loop.set()
        await reported_on_loop.wait()
        return value

    if mode == "sync":
        with ThreadPoolExecutor(1) as pool:
            late = pool.submit(store.run, slow_blocking)
            answered.wait(30)
            own_redis_server.kill()
            assert await ask(store, Probed(key), mode) is UNAVAILABLE  # now it is away
            reported.set()
            assert late.result() == 1
    else:
        late_task = asyncio.ensure_future(store.arun(slow_awaiting, slow_blocking))
        await answered_on_loop.wait()
        own_redis_server.kill()
        assert await ask(store, Probed(key), mode) is UNAVAILABLE
        reported_on_loop.set()
        assert await late_task == 1
    assert store.degraded
    assert records(caplog, logging.INFO) == []
    assert await ask(store, Probed(key), mode) is UNAVAILABLE  # not asked: not due a recheck
    assert len(records(caplog, logging.WARNING)) == 1
    await store.aclose()


def test_a_timeout_that_ends_after_the_store_came_back_is_not_a_new_outage(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "buttress.store")
    health = StoreHealth("Redis at redis://127.0.0.1:6379/0", clock=clock)
    slow = health.generation  # a call begins, and waits for a frozen server...
    health.failed(OSError("connection refused"), health.generation)  # another finds it gone
    clock.advance(1.0)
    probe = health.generation
    assert health.should_try()
    health.succeeded(probe)  # a probe finds it back
    health.failed(TimeoutError("timed out"), slow)  # ...and times out only now
    assert not health.degraded
    assert len(records(caplog, logging.WARNING)) == 1
    assert len(records(caplog, logging.INFO)) == 1
    health.failed(OSError("connection refused"), health.generation)  # a new outage is one
    assert health.status().degraded
    assert len(records(caplog, logging.WARNING)) == 2
