"""Chaos soak: thousands of calls through the default stack while the server misbehaves.

A seeded random plan mixes every fault the fault server stages with GET, PUT,
DELETE, POST and PATCH calls (some with an ``Idempotency-Key``, some streamed),
run concurrently on one ``Client`` (threads) and on one ``AsyncClient`` (tasks).
Afterwards:

- every call ended in a response or in an exception from buttress's tree;
- no POST or PATCH without an ``Idempotency-Key`` reached the server twice;
- no call outlived its deadline (:func:`call_deadline`) by more than ``MARGIN`` on a
  quiet machine, or by what the slowness measured in the same round explains
  (:class:`LagProbe`), never by as much as a held answer;
- open file descriptors and traced memory are flat (after a warm-up round).

Each runs twice: with per-process state, and with the rate limit, the breaker and
the cache shared through a Redis store that is killed after the second round and
started again after the third, so the calls also cross a store that goes away and
comes back (per-process state meanwhile).

CI runs it at scale 1 (a few seconds); ``BUTTRESS_SOAK_SCALE=20`` makes it twenty
times longer for a local run. ``pytest -m soak`` selects it, ``-m "not soak"``
leaves it out.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import statistics
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

import buttress
from buttress import TimeoutConfig
from buttress.testing import Fault, FaultServer
from tests.servers import RedisServer, redis_server_binary, require_server

from .conftest import assert_buttress_outcome, needs_proc_fd, open_fds

pytestmark = [pytest.mark.soak, pytest.mark.anyio, needs_proc_fd]

SCALE = float(os.environ.get("BUTTRESS_SOAK_SCALE", "1"))
ROUNDS = max(2, round(4 * SCALE))  # the first round warms up; memory is traced after it
CALLS_PER_ROUND = 500
SOAK_TIMEOUTS = TimeoutConfig(connect=0.25, read=0.25, write=0.5, pool=1.0, total=2.0)
MARGIN = 1.0  # seconds a call may overrun its deadline on a quiet machine (closing, logging)
LAG_FACTOR = 2  # ... plus twice the worst scheduler lag measured during the round (below)
PROBE_INTERVAL = 0.01  # how often the lag probe asks to be woken
HELD = 20.0  # a held answer waits this long: far past any deadline, so a missing timeout shows
HELD_SLACK = 0.5  # a call that waited for a held answer lasts at least HELD - this; it always fails
MEMORY_TOLERANCE = 1 << 20  # bytes still allocated at the end that were allocated after warm-up

# path -> (fault, weight); "refused" and "blackhole" are addresses, not faults.
MIX: dict[str, tuple[Fault | None, int]] = {
    "ok": (Fault.ok({"id": 1, "name": "Ada"}), 40),
    "service-unavailable": (Fault.service_unavailable(retry_after=1), 5),
    "rate-limited": (Fault.rate_limited(retry_after=1), 5),
    "close": (Fault.close(), 4),
    "reset-before-headers": (Fault.reset_before_headers(), 4),
    "reset-mid-body": (Fault.reset_mid_body(64 << 10), 4),
    "held": (Fault.delay_first_byte(HELD), 2),
    "short-delay": (Fault.delay_first_byte(0.02), 3),
    "drip-alive": (Fault.drip(8, chunk=2, interval=0.01), 3),
    "drip-stalled": (Fault.drip(4, interval=HELD), 2),
    "truncated": (Fault.truncated(), 4),
    "broken-chunked": (Fault.broken_chunked(), 4),
    "garbage-status": (Fault.garbage_status(), 4),
    "oversized-headers": (Fault.oversized_headers(), 3),
    "huge-body": (Fault.huge_body(1 << 20), 2),
    "bad-encoding": (Fault.bad_encoding(), 3),
    "not-found": (Fault.respond(404), 3),
    "refused": (None, 3),
    "blackhole": (None, 1),
}
METHODS = [("GET", 50), ("PUT", 8), ("DELETE", 7), ("POST", 20), ("PATCH", 15)]


def call_deadline(timeouts: TimeoutConfig) -> float:
    """The longest one call may take: THE HOOK FOR THE TOTAL DEADLINE.

    Today the default stack has no retry layer, so a call is one attempt, bounded
    by its phases: waiting for the pool, connecting, writing, and reading (each
    read is bounded by ``read``; the plan keeps every slow-but-alive body well
    under one read timeout). When the retry layer (#4) enforces
    ``TimeoutConfig.total`` over all attempts and backoff sleeps, give
    ``SOAK_TIMEOUTS`` a ``total`` and return it here.
    """
    if timeouts.total is not None:
        return timeouts.total
    phases = (timeouts.pool, timeouts.connect, timeouts.write, timeouts.read)
    return sum(phase for phase in phases if phase is not None)


class LagProbe:
    """Measures, while a round runs, how much the machine slows the calls down.

    A call's deadline is a timer: it fires late by however long the event loop (async)
    or the operating system and the GIL (threads) keep the waiting code from running,
    and the work that ends the call (closing, error mapping) is slowed the same way.
    The probe runs where the calls run (a thread beside the worker threads, a task on
    the client's event loop) and measures both:

    - ``worst``: the most a sleeper was woken late;
    - ``stretch``: wall time over CPU time for a small piece of work, that is how many
      times longer CPU-bound work takes than it would on an idle core; the 90th
      percentile of the round's samples, not their mean, since contention comes in bursts
      and the end of a call (its timer, its closing) falls in one as often as not (with
      other test runs on the same two cores the mean left calls 0.1 to 0.7 s short).

    On a quiet machine the allowance over the deadline is ``MARGIN``. With the cores
    busy it grows: the deadline and the margin stretched, plus ``LAG_FACTOR`` times the
    worst lag; but never so far that a call that waited for a held answer (``HELD``)
    without a timeout firing could pass.
    """

    def __init__(self) -> None:
        self.worst = 0.0
        self._stretches: list[float] = []
        self._stop = threading.Event()

    @property
    def stretch(self) -> float:
        samples = self._stretches
        if len(samples) < 10:
            return max([1.0, *samples])
        return max(1.0, statistics.quantiles(samples, n=10)[-1])

    def _measure(self, asked: float) -> None:
        self.worst = max(self.worst, time.monotonic() - asked - PROBE_INTERVAL)
        wall, cpu = time.perf_counter(), time.thread_time()
        sum(range(20_000))  # about a millisecond of CPU on an idle core
        cpu = time.thread_time() - cpu
        if cpu > 0:
            self._stretches.append((time.perf_counter() - wall) / cpu)

    def run_in_thread(self) -> threading.Thread:
        def probe() -> None:
            while not self._stop.is_set():
                asked = time.monotonic()
                time.sleep(PROBE_INTERVAL)
                self._measure(asked)

        thread = threading.Thread(target=probe, name="lag-probe", daemon=True)
        thread.start()
        return thread

    async def run_on_loop(self) -> None:
        while not self._stop.is_set():
            asked = time.monotonic()
            await anyio.sleep(PROBE_INTERVAL)
            self._measure(asked)

    def stop(self) -> None:
        self._stop.set()

    def allowance(self, deadline: float) -> float:
        """Seconds a call may run past ``deadline`` on the machine as measured."""
        stretched = (deadline + MARGIN) * self.stretch - deadline + LAG_FACTOR * self.worst
        return min(stretched, HELD - deadline - HELD_SLACK)


@dataclass(frozen=True)
class Call:
    number: int
    method: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    streamed: bool


@dataclass
class Outcome:
    call: Call
    result: object  # a buttress.Response, the body bytes of a streamed call, or an exception
    seconds: float


@dataclass
class Soak:
    """The plan, the addresses and the checks, shared by the sync and async runs."""

    server: FaultServer
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for path, (fault, _weight) in MIX.items():
            if fault is not None:
                self.server.route(f"/{path}", fault)
        self.bases = {
            "refused": self.server.refused_url,
            "blackhole": self.server.blackhole_url,
        }

    def plan(self, start: int, count: int) -> Iterator[Call]:
        paths, path_weights = zip(
            *[(path, weight) for path, (_, weight) in MIX.items()], strict=True
        )
        methods, method_weights = zip(*METHODS, strict=True)
        for number in range(start, start + count):
            path = self.rng.choices(paths, path_weights)[0]
            method = self.rng.choices(methods, method_weights)[0]
            headers = {"X-Soak-Call": str(number)}
            if method in ("POST", "PATCH") and self.rng.random() < 0.3:
                headers["Idempotency-Key"] = f"key-{number}"
            body = {"n": number} if method in ("POST", "PUT", "PATCH") else None
            url = self.bases.get(path, "") + f"/{path}"
            streamed = method == "GET" and self.rng.random() < 0.2
            yield Call(number, method, url, headers, body, streamed)

    def record(self, call: Call, result: object, started: float) -> None:
        outcome = Outcome(call, result, time.monotonic() - started)
        with self.lock:
            self.outcomes.append(outcome)

    def check_round(self, lag: LagProbe) -> None:
        """Every outcome allowed, no unsafe call sent twice, no call past its deadline."""
        total = call_deadline(SOAK_TIMEOUTS)
        deadline = total + lag.allowance(total)
        for outcome in self.outcomes:
            if not isinstance(outcome.result, bytes):
                assert_buttress_outcome(outcome.result)
            assert outcome.seconds <= deadline, (
                f"call {outcome.call} took {outcome.seconds:.2f}s, deadline {deadline:.2f}s "
                f"(measured: worst scheduler lag {lag.worst:.2f}s, CPU stretch {lag.stretch:.2f})"
            )
        sent = Counter(
            r.headers["x-soak-call"]
            for r in self.server.requests
            if r.method in ("POST", "PATCH") and "idempotency-key" not in r.headers
        )
        assert not [number for number, times in sent.items() if times > 1]
        self.outcomes.clear()
        self.server.clear()
        self.server.release_waiting()  # held answers end now; no server thread lingers

    def summary(self) -> Counter[str]:
        return Counter(type(o.result).__name__ for o in self.outcomes)


class MemoryWatch:
    """Traces the allocations made after the warm-up round and still alive at the end.

    Tracing starts only after the first round (caches, pools and lazy imports are
    warm by then), which also keeps tracemalloc's cost out of that round.
    """

    def __init__(self) -> None:
        self.baseline = 0

    def after_round(self, round_number: int) -> None:
        if round_number == 0:
            tracemalloc.start()
            self.baseline = self._traced()

    @staticmethod
    def _traced() -> int:
        """Bytes traced and still alive, leaving out the coverage tool's own bookkeeping."""
        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [
                tracemalloc.Filter(False, "*/coverage/*"),
                tracemalloc.Filter(False, tracemalloc.__file__),
            ]
        )
        return sum(stat.size for stat in snapshot.statistics("filename"))

    def grown(self) -> int:
        return self._traced() - self.baseline

    def stop(self) -> None:
        tracemalloc.stop()


def _call_sync(soak: Soak, client: buttress.Client, call: Call) -> None:
    started = time.monotonic()
    result: object
    try:
        if call.streamed:
            with client.stream(call.method, call.url, headers=call.headers) as response:
                result = response.read()
        else:
            result = client.request(call.method, call.url, headers=call.headers, json=call.body)
    except Exception as exc:
        result = exc
    soak.record(call, result, started)


async def _call_async(soak: Soak, client: buttress.AsyncClient, call: Call) -> None:
    started = time.monotonic()
    result: object
    try:
        if call.streamed:
            async with client.stream(call.method, call.url, headers=call.headers) as response:
                result = await response.aread()
        else:
            result = await client.request(
                call.method, call.url, headers=call.headers, json=call.body
            )
    except Exception as exc:
        result = exc
    soak.record(call, result, started)


@pytest.fixture
def soak_server() -> Iterator[FaultServer]:
    with FaultServer(max_delay=HELD) as server:
        yield server


@dataclass
class Fleet:
    """The state the soak's client keeps: its own, or a Redis store that goes away mid-run."""

    options: dict[str, Any]
    server: RedisServer | None = None
    store: buttress.RedisStore | None = None

    def between_rounds(self, round_number: int) -> None:
        if self.server is None:
            return
        if round_number == 1:
            self.server.kill()
        elif round_number == 2:
            self.server.start()

    def close(self) -> None:
        """Close the store's connections (a client never closes a store it shares)."""
        if self.store is not None:
            self.store.close()

    async def aclose(self) -> None:
        if self.store is not None:
            await self.store.aclose()


@pytest.fixture(params=["per-process", "shared-store"])
def fleet(request: pytest.FixtureRequest) -> Iterator[Fleet]:
    if request.param == "per-process":
        yield Fleet({})
        return
    require_server("redis-server", redis_server_binary() is not None)
    with RedisServer() as server:
        # A short timeout: a store call must not eat the soak's deadlines while it is away.
        store = buttress.RedisStore(server.url, namespace="soak", timeout=0.25, recheck=0.05)
        options = {
            "rate_limit": buttress.RateLimitConfig(max_requests=100_000, store=store),
            "circuit_breaker": buttress.CircuitBreakerConfig(per_host=True, store=store),
            "cache": buttress.CacheConfig(backend=buttress.RedisCache(store)),
        }
        store.close()  # RedisCache read its salt: the test counts descriptors from none open
        yield Fleet(options, server, store)


@pytest.fixture(autouse=True)
def _quiet_buttress_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Thousands of retry warnings would pile up in pytest's log capture and look like a leak."""
    caplog.set_level(logging.CRITICAL, logger="buttress")


def test_soak_sync_client_shared_by_threads(soak_server: FaultServer, fleet: Fleet) -> None:
    soak, memory = Soak(soak_server), MemoryWatch()
    fds_before = open_fds()
    try:
        with (
            buttress.Client(
                base_url=soak_server.url, timeout=SOAK_TIMEOUTS, **fleet.options
            ) as client,
            ThreadPoolExecutor(max_workers=16) as pool,
        ):
            for round_number in range(ROUNDS):
                calls = soak.plan(round_number * CALLS_PER_ROUND, CALLS_PER_ROUND)
                lag = LagProbe()
                probe = lag.run_in_thread()
                list(pool.map(lambda call: _call_sync(soak, client, call), calls))
                lag.stop()
                probe.join()
                assert len(soak.outcomes) == CALLS_PER_ROUND
                soak.check_round(lag)
                memory.after_round(round_number)
                fleet.between_rounds(round_number)
        assert soak_server.wait_idle(timeout=10)
        grown = memory.grown()
    finally:
        memory.stop()
    assert grown <= MEMORY_TOLERANCE, f"traced memory grew by {grown} bytes"
    fleet.close()
    assert open_fds() == fds_before


async def test_soak_async_client_shared_by_tasks(soak_server: FaultServer, fleet: Fleet) -> None:
    soak = Soak(soak_server)
    fds_before = open_fds()
    limit = anyio.Semaphore(64)

    async def one(client: buttress.AsyncClient, call: Call) -> None:
        async with limit:
            await _call_async(soak, client, call)

    memory = MemoryWatch()
    try:
        async with buttress.AsyncClient(
            base_url=soak_server.url, timeout=SOAK_TIMEOUTS, **fleet.options
        ) as client:
            for round_number in range(ROUNDS):
                lag = LagProbe()
                async with anyio.create_task_group() as probing:
                    probing.start_soon(lag.run_on_loop)
                    async with anyio.create_task_group() as tasks:
                        for call in soak.plan(round_number * CALLS_PER_ROUND, CALLS_PER_ROUND):
                            tasks.start_soon(one, client, call)
                    lag.stop()
                assert len(soak.outcomes) == CALLS_PER_ROUND
                soak.check_round(lag)
                memory.after_round(round_number)
                fleet.between_rounds(round_number)
        assert soak_server.wait_idle(timeout=10)
        grown = memory.grown()
    finally:
        memory.stop()
    assert grown <= MEMORY_TOLERANCE, f"traced memory grew by {grown} bytes"
    await fleet.aclose()
    assert open_fds() == fds_before


def test_soak_checks_catch_an_unsafe_call_sent_twice(soak_server: FaultServer) -> None:
    """The duplicate check is real: a POST without a key that arrives twice fails the round."""
    import httpx

    soak = Soak(soak_server)
    with httpx.Client(base_url=soak_server.url) as client:
        for _ in range(2):
            client.post("/ok", json={}, headers={"X-Soak-Call": "7"})
    with pytest.raises(AssertionError):
        soak.check_round(LagProbe())


def test_soak_checks_catch_a_call_past_its_deadline(soak_server: FaultServer) -> None:
    """The deadline check is real: a call that took as long as a held answer fails the round."""
    soak, lag = Soak(soak_server), LagProbe()
    call = next(soak.plan(0, 1))
    soak.outcomes.append(Outcome(call, buttress.ReadTimeoutError("held"), HELD))
    assert lag.allowance(2.0) == MARGIN  # nothing measured: a quiet machine
    lag._stretches.append(100.0)  # a machine this slow still cannot hide a held answer
    assert 2.0 + lag.allowance(2.0) == HELD - HELD_SLACK
    with pytest.raises(AssertionError, match="deadline"):
        soak.check_round(lag)


def test_call_deadline_is_the_total_when_there_is_one() -> None:
    assert call_deadline(TimeoutConfig(connect=1, read=2, write=3, pool=4)) == 10
    assert call_deadline(TimeoutConfig(connect=1, read=2, total=2.5)) == 2.5
