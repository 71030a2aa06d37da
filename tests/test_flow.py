"""The flow drivers: one flow, run blocking by drive() and awaiting by adrive()."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator

import anyio
import anyio.lowlevel
import httpx
import pytest

from buttress._flow import (
    Effect,
    Flow,
    OutOfTime,
    Read,
    Send,
    Sleep,
    acall_at_once,
    adrive,
    call,
    call_at_once,
    drive,
    step_methods,
)
from buttress.testing import FakeClock

pytestmark = pytest.mark.anyio


class Recorder(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An inner transport that answers from a script and records what it was sent."""

    def __init__(self, *answers: httpx.Response | BaseException) -> None:
        self.answers = list(answers)
        self.sent: list[httpx.Request] = []

    def _next(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._next(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._next(request)


async def run(mode: str, flow: Flow, inner: Recorder, clock: FakeClock) -> httpx.Response:
    if mode == "sync":
        return drive(flow, inner, clock)
    return await adrive(flow, inner, clock)


REQUEST = httpx.Request("GET", "http://api.test/x")


async def test_flow_that_ends_without_yielding(mode: str) -> None:
    def flow(open_circuit: bool) -> Flow:
        if open_circuit:  # an open breaker answers at once
            return httpx.Response(503)
        return (yield Send(REQUEST))  # type: ignore[return-value]  # pragma: no cover

    inner = Recorder()
    response = await run(mode, flow(open_circuit=True), inner, FakeClock())
    assert response.status_code == 503
    assert inner.sent == []


async def test_a_step_asks_the_store_blocking_or_awaiting_as_it_is_run(mode: str) -> None:
    asked: list[str] = []

    def answer(how: str, value: str) -> str:
        asked.append(f"{how} {value}")
        if value == "down":
            raise ConnectionError("store down")
        return value

    async def awaiting(value: str) -> str:
        await anyio.lowlevel.checkpoint()
        return answer("awaiting", value)

    def ask(value: str) -> Generator[Effect, object, str]:
        return call(lambda: answer("blocking", value), lambda: awaiting(value))

    def step() -> Generator[Effect, object, list[str]]:
        first = yield from ask("up")
        try:
            yield from ask("down")
        except ConnectionError as error:  # the store's error comes back into the step
            return [first, str(error)]
        raise AssertionError("the store's error was lost")  # pragma: no cover

    done = call_at_once(step()) if mode == "sync" else await acall_at_once(step())
    assert done == ["up", "store down"]
    how = "blocking" if mode == "sync" else "awaiting"
    assert asked == [f"{how} up", f"{how} down"]


class Tally:
    """A store-backed counter written once, as a step, for both kinds of caller."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def _answer(self, how: str, amount: int) -> int:
        self.asked.append(how)
        if amount < 0:
            raise ValueError("no negative amounts")
        return amount

    async def _awaiting(self, amount: int) -> int:
        await anyio.lowlevel.checkpoint()
        return self._answer("awaiting", amount)

    def _add(self, amount: int, *, times: int = 1) -> Generator[Effect, object, int]:
        total = 0
        for _ in range(times):
            total += yield from call(
                lambda: self._answer("blocking", amount), lambda: self._awaiting(amount)
            )
        return total

    add, aadd = step_methods(_add)


async def test_step_methods_make_a_blocking_and_an_awaiting_method_of_one_step(
    mode: str,
) -> None:
    tally = Tally()
    assert inspect.iscoroutinefunction(Tally.aadd)
    assert not inspect.iscoroutinefunction(Tally.add)
    added = tally.add(2, times=3) if mode == "sync" else await tally.aadd(2, times=3)
    assert added == 6
    assert tally.asked == ["blocking" if mode == "sync" else "awaiting"] * 3
    with pytest.raises(ValueError, match="no negative amounts"):  # the store's error, raised
        tally.add(-1) if mode == "sync" else await tally.aadd(-1)


async def test_flow_that_sleeps_between_sends(mode: str) -> None:
    def flow() -> Flow:
        first = yield Send(REQUEST)
        assert isinstance(first, httpx.Response)
        assert first.status_code == 500
        nothing = yield Sleep(1.5)
        assert nothing is None
        second = yield Send(REQUEST)
        assert isinstance(second, httpx.Response)
        return second

    clock = FakeClock()
    inner = Recorder(httpx.Response(500), httpx.Response(200))
    response = await run(mode, flow(), inner, clock)
    assert response.status_code == 200
    assert clock.sleeps == [1.5]
    assert clock.monotonic() == 1.5
    assert len(inner.sent) == 2


async def test_exceptions_come_back_as_outcomes(mode: str) -> None:
    seen: list[object] = []

    def flow() -> Flow:
        outcome = yield Send(REQUEST)
        seen.append(outcome)
        assert isinstance(outcome, Exception)
        raise outcome

    error = httpx.ConnectError("refused")
    with pytest.raises(httpx.ConnectError):
        await run(mode, flow(), Recorder(error), FakeClock())
    assert seen == [error]


async def test_flow_that_raises_propagates_and_is_closed(mode: str) -> None:
    closed: list[bool] = []

    def flow() -> Flow:
        try:
            yield Send(REQUEST)
            raise ValueError("policy says no")
        finally:
            closed.append(True)

    with pytest.raises(ValueError, match="policy says no"):
        await run(mode, flow(), Recorder(httpx.Response(200)), FakeClock())
    assert closed == [True]


async def test_read_effect_reads_the_body(mode: str) -> None:
    def flow() -> Flow:
        response = yield Send(REQUEST)
        assert isinstance(response, httpx.Response)
        read = yield Read(response)
        assert read is response
        return response

    stream_response = httpx.Response(200, content=b"body")
    response = await run(mode, flow(), Recorder(stream_response), FakeClock())
    assert response.content == b"body"


async def test_read_failure_comes_back_as_outcome(mode: str) -> None:
    class Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            if self:
                raise httpx.ReadError("cut")
            yield b""  # pragma: no cover

        async def __aiter__(self) -> AsyncIterator[bytes]:
            if self:
                raise httpx.ReadError("cut")
            yield b""  # pragma: no cover

    outcomes: list[object] = []

    def flow() -> Flow:
        response = yield Send(REQUEST)
        assert isinstance(response, httpx.Response)
        outcomes.append((yield Read(response)))
        return httpx.Response(204)

    await run(mode, flow(), Recorder(httpx.Response(200, stream=Broken())), FakeClock())
    assert isinstance(outcomes[0], httpx.ReadError)


class Dripping(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body of ``chunks`` chunks; the clock moves ``step`` seconds before each arrives."""

    def __init__(self, clock: FakeClock, chunks: int, step: float) -> None:
        self.clock, self.chunks, self.step = clock, chunks, step
        self.sent = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            self.clock.advance(self.step)
            self.sent += 1
            yield b"x"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def _within_flow(seconds: float, outcomes: list[object]) -> Flow:
    response = yield Send(REQUEST, within=seconds)
    outcomes.append(response)
    if isinstance(response, httpx.Response):
        outcomes.append((yield Read(response, within=seconds)))
    return httpx.Response(204)


async def test_a_body_still_arriving_when_the_time_is_up_is_out_of_time(mode: str) -> None:
    clock = FakeClock()
    body = Dripping(clock, chunks=10, step=1.0)
    outcomes: list[object] = []
    await run(mode, _within_flow(3.5, outcomes), Recorder(httpx.Response(200, stream=body)), clock)
    assert isinstance(outcomes[0], httpx.Response)
    assert isinstance(outcomes[1], OutOfTime)
    assert body.sent == 4  # stopped at the first chunk past the time, not read to the end
    assert body.closed  # its connection goes back


async def test_a_body_in_time_is_the_response(mode: str) -> None:
    clock = FakeClock()
    outcomes: list[object] = []
    body = Dripping(clock, chunks=3, step=1.0)
    await run(mode, _within_flow(3.5, outcomes), Recorder(httpx.Response(200, stream=body)), clock)
    assert outcomes[0] is outcomes[1]
    assert body.sent == 3


async def test_a_response_that_came_late_is_out_of_time_and_closed(mode: str) -> None:
    clock = FakeClock()
    body = Dripping(clock, chunks=1, step=0.0)

    class Late(Recorder):
        def _next(self, request: httpx.Request) -> httpx.Response:
            clock.advance(5.0)  # the server took 5 s to answer
            return super()._next(request)

    outcomes: list[object] = []
    await run(mode, _within_flow(2.0, outcomes), Late(httpx.Response(200, stream=body)), clock)
    assert isinstance(outcomes[0], OutOfTime)
    assert outcomes[0].request is REQUEST
    assert body.closed


def test_fake_clock_records_and_advances() -> None:
    clock = FakeClock(start=10.0, epoch=1000.0)
    clock.advance(5)
    clock.sleep(-1)
    assert clock.monotonic() == 15.0
    assert clock.time() == 1015.0
    assert clock.sleeps == [-1]
    assert "15.0" in repr(clock)


def test_system_clock() -> None:
    from buttress import SystemClock

    clock = SystemClock()
    clock.sleep(0)
    assert clock.time() > 1_600_000_000
    assert repr(clock) == "SystemClock()"


async def test_system_clock_async_sleep() -> None:
    from buttress import SystemClock

    await SystemClock().asleep(0)


class Closing(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that records whether it was closed; ``interrupt`` breaks off its first read."""

    def __init__(self, interrupt: Callable[[], Awaitable[None] | None]) -> None:
        self.interrupt = interrupt
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        self.interrupt()
        yield b"never"  # pragma: no cover

    async def __aiter__(self) -> AsyncIterator[bytes]:
        result = self.interrupt()
        if result is not None:
            await result
        yield b"never"  # pragma: no cover

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        await anyio.lowlevel.checkpoint()  # a close that awaits: cancellation must not skip it
        self.closed = True


def _body_read_flow() -> Flow:
    response = yield Send(REQUEST)
    assert isinstance(response, httpx.Response)
    yield Read(response)
    return response  # pragma: no cover - the read never ends


async def test_keyboard_interrupt_during_a_read_closes_the_response(mode: str) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    body = Closing(interrupt)
    with pytest.raises(KeyboardInterrupt):
        await run(mode, _body_read_flow(), Recorder(httpx.Response(200, stream=body)), FakeClock())
    assert body.closed


async def test_cancellation_during_a_read_closes_the_response() -> None:
    with anyio.CancelScope() as scope:

        async def cancel() -> None:
            scope.cancel()
            await anyio.sleep_forever()

        body = Closing(cancel)
        await adrive(_body_read_flow(), Recorder(httpx.Response(200, stream=body)), FakeClock())
    assert scope.cancelled_caught
    assert body.closed


class BrokenClock(FakeClock):
    """A clock whose sleeps fail: a fault of the driver's own, not an outcome of the flow's."""

    def sleep(self, seconds: float) -> None:
        raise RuntimeError("the clock is broken")

    async def asleep(self, seconds: float) -> None:
        raise RuntimeError("the clock is broken")


def _closing_flow(effect: Send | Sleep, seen: list[object], closed: list[bool]) -> Flow:
    try:
        seen.append((yield effect))
        return httpx.Response(200)  # pragma: no cover - the effect never comes back
    finally:
        closed.append(True)


async def test_a_failing_sleep_passes_through_and_closes_the_flow(mode: str) -> None:
    seen: list[object] = []
    closed: list[bool] = []
    with pytest.raises(RuntimeError, match="the clock is broken"):
        await run(mode, _closing_flow(Sleep(1.0), seen, closed), Recorder(), BrokenClock())
    assert seen == []  # never sent into the flow as an outcome
    assert closed == [True]


async def test_keyboard_interrupt_during_a_send_closes_the_flow(mode: str) -> None:
    seen: list[object] = []
    closed: list[bool] = []
    inner = Recorder(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        await run(mode, _closing_flow(Send(REQUEST), seen, closed), inner, FakeClock())
    assert seen == []
    assert closed == [True]
