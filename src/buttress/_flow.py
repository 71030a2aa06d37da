"""The only place where synchronous and asynchronous code differ.

A *flow* is a generator that decides what to do and yields *effects*; a driver
performs them. :func:`drive` performs them with blocking calls, :func:`adrive`
with ``await``. Every layer writes its logic once, as a flow, and calls the
driver that matches the transport method it is in::

    def retry_flow(request):
        outcome = yield Send(request)          # a Response, or the Exception raised
        if isinstance(outcome, Exception):
            yield Sleep(1.0)
            outcome = yield Send(request)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    class MyTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
        def handle_request(self, request):
            return drive(retry_flow(request), self._inner, self._clock)

        async def handle_async_request(self, request):
            return await adrive(retry_flow(request), self._inner, self._clock)

A ``Call`` calls out of the flow (a shared store such as Redis, or the
client's own httpx ``send``): :func:`drive` makes the blocking call, :func:`adrive`
awaits the asynchronous one, so a flow never blocks an event loop;
``yield from call(...)`` returns its value or raises its error.

Outcomes of ``Send`` and ``Read`` are sent back into the flow as values: a
response, or the :class:`Exception` the inner transport raised (a ``Read`` that
fails closes its response first, so the connection goes back to the pool). Only
``Exception`` is sent back; cancellation and ``KeyboardInterrupt`` close a
half-read response too, then pass straight through and close the flow.
httpx's own ``Auth.auth_flow`` works the same way.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeAlias, TypeVar, cast

import anyio
import httpx

from ._clock import SYSTEM_CLOCK

if TYPE_CHECKING:
    from ._clock import Clock

__all__ = [
    "Call",
    "Effect",
    "Flow",
    "OutOfTime",
    "Outcome",
    "Read",
    "Reply",
    "Send",
    "Sleep",
    "Step",
    "acall_at_once",
    "adrive",
    "call",
    "call_at_once",
    "drive",
    "step_methods",
    "time_left",
]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


# The effects are not frozen dataclasses: one is made for every step of every request, and
# a frozen one's __init__ (object.__setattr__ per field) costs several times a plain one's.
# Nothing changes an effect once it is yielded.


@dataclass(slots=True)
class Send:
    """Send ``request`` through the inner transport; the outcome is the response or the error.

    With ``within`` (seconds), a response that came back after it is :class:`OutOfTime`.
    """

    request: httpx.Request
    within: float | None = None


@dataclass(slots=True)
class Read:
    """Read ``response``'s whole body; the outcome is the response or the error.

    With ``within`` (seconds), a body that has not arrived in time is :class:`OutOfTime`.
    """

    response: httpx.Response
    within: float | None = None


@dataclass(slots=True)
class Sleep:
    """Wait ``seconds`` on the clock; the outcome is ``None``."""

    seconds: float


@dataclass(slots=True)
class Call:
    """Call out: ``blocking()`` under :func:`drive`, ``awaiting()`` under :func:`adrive`.

    The outcome is a :class:`Reply` with the value, or the Exception raised.
    """

    blocking: Callable[[], object]
    awaiting: Callable[[], Awaitable[object]]


@dataclass(slots=True)
class Reply(Generic[T]):
    """What a :class:`Call` returned (its own type, so a reply is never taken for a response)."""

    value: T


class OutOfTime(httpx.TimeoutException):
    """The outcome of a ``Send`` or ``Read`` that ran past its ``within``.

    Time is up when it is on the flow's clock or in real time. Both drivers stop a
    body at its first chunk after that (each chunk arrives within the read
    timeout), and refuse a response whose headers came late once they are in. A
    step is never cut short: the layers beneath a ``Send`` must see how the
    attempt ended (a circuit breaker counts a timeout) and finish their own work
    on the response, and the timeouts of its phases, cut to the time left, bound
    the wait.
    """


def time_left(deadline: float | None, clock: Clock) -> float | None:
    """The seconds left before ``deadline`` on ``clock`` (none: 0): a step's ``within``."""
    return None if deadline is None else max(deadline - clock.monotonic(), 0.0)


_LATE_RESPONSE = "no response within the time left"
_LATE_BODY = "the body did not arrive within the time left"

Effect: TypeAlias = Send | Read | Sleep | Call
# A Reply is sent only to a flow that yielded a Call, through call(): not part of Outcome.
Outcome: TypeAlias = "httpx.Response | Exception | None"


def call(
    blocking: Callable[[], T], awaiting: Callable[[], Awaitable[T]]
) -> Generator[Effect, object, T]:
    """``value = yield from call(...)`` in a flow: the store's answer, or its error raised."""
    outcome = yield Call(blocking, awaiting)
    if isinstance(outcome, Exception):
        raise outcome
    assert isinstance(outcome, Reply)
    value: T = outcome.value  # an annotation, not cast(): no call at run time
    return value


Flow: TypeAlias = Generator[Effect, Outcome, httpx.Response]
# A step asks stores (``yield from call(...)``) and answers ``T``: run in a flow, or at once.
Step: TypeAlias = Generator[Effect, object, T]


def _outcome_of(
    failure: BaseException, effect: Effect, flow: Generator[Any, Any, Any]
) -> Exception | None:
    """``failure``, raised performing ``effect``, as the outcome that goes back into ``flow``.

    Only an ``Exception`` does, and not from a ``Sleep``: cancellation, ``KeyboardInterrupt``
    or a clock that fails closes the flow (its ``finally`` blocks run) and gives ``None``:
    the failure passes straight through.
    """
    if isinstance(failure, Exception) and not isinstance(effect, Sleep):
        return failure
    flow.close()
    return None


class _StoresOnly(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """What a step run outside any flow sends through: nothing, it may only ask stores."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError("only store calls run outside a flow")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError("only store calls run outside a flow")


_STORES_ONLY = _StoresOnly()


def call_at_once(step: Generator[Effect, object, T]) -> T:
    """Run a step that only asks stores (``Call``), blocking, outside any flow.

    For plain methods such as a shared circuit's ``force_open()``.
    """
    return drive(cast("Generator[Effect, Outcome, T]", step), _STORES_ONLY, SYSTEM_CLOCK)


async def acall_at_once(step: Generator[Effect, object, T]) -> T:
    """:func:`call_at_once` awaiting the store, for the event loop."""
    return await adrive(cast("Generator[Effect, Outcome, T]", step), _STORES_ONLY, SYSTEM_CLOCK)


def step_methods(
    step: Callable[P, Step[T]],
) -> tuple[Callable[P, T], Callable[P, CoroutineType[Any, Any, T]]]:
    """A method written once as a step that asks stores, as a blocking and an awaiting method.

    In a class body::

        def _remove_keys(self, prefix: str) -> Step[int]:
            return (yield from self.store.ask(...))

        remove_keys, aremove_keys = step_methods(_remove_keys)

    ``remove_keys`` runs the step with :func:`call_at_once`, ``aremove_keys`` with
    :func:`acall_at_once`; both take the step's arguments (``self`` first) and
    answer what it returns.
    """

    @functools.wraps(step)
    def blocking(*args: P.args, **kwargs: P.kwargs) -> T:
        return call_at_once(step(*args, **kwargs))

    @functools.wraps(step)
    async def awaiting(*args: P.args, **kwargs: P.kwargs) -> T:
        return await acall_at_once(step(*args, **kwargs))

    # what an ``async def`` answers is a CoroutineType, as the awaiting methods it overrides
    return blocking, cast("Callable[P, CoroutineType[Any, Any, T]]", awaiting)


def drive(flow: Generator[Effect, Outcome, R], inner: httpx.BaseTransport, clock: Clock) -> R:
    """Run ``flow`` to completion with blocking I/O and return what it returns (a response)."""
    outcome: Outcome = None
    while True:
        try:
            effect = flow.send(outcome)
        except StopIteration as done:  # a flow may return before its first yield
            result: R = done.value
            return result
        try:
            outcome = _perform(effect, inner, clock)
        except BaseException as failure:
            outcome = _outcome_of(failure, effect, flow)
            if outcome is None:
                raise


async def adrive(
    flow: Generator[Effect, Outcome, R], inner: httpx.AsyncBaseTransport, clock: Clock
) -> R:
    """Run ``flow`` to completion with ``await`` and return what it returns (a response)."""
    outcome: Outcome = None
    while True:
        try:
            effect = flow.send(outcome)
        except StopIteration as done:
            result: R = done.value
            return result
        try:
            outcome = await _aperform(effect, inner, clock)
        except BaseException as failure:
            outcome = _outcome_of(failure, effect, flow)
            if outcome is None:
                raise


def _perform(effect: Effect, inner: httpx.BaseTransport, clock: Clock) -> Outcome:
    if isinstance(effect, Send):
        if effect.within is None:
            return inner.handle_request(effect.request)
        limit = _Limit(effect.within, clock)
        response = inner.handle_request(effect.request)
        if not limit.passed():
            return response
        response.close()
        return OutOfTime(_LATE_RESPONSE, request=effect.request)
    if isinstance(effect, Read):
        response = _bounded(effect, clock)
        try:
            response.read()
        except BaseException:  # a body that broke off: release its connection
            with contextlib.suppress(Exception):
                response.close()
            raise
        return response
    if isinstance(effect, Call):
        return cast("Outcome", Reply(effect.blocking()))
    clock.sleep(effect.seconds)
    return None


async def _aperform(effect: Effect, inner: httpx.AsyncBaseTransport, clock: Clock) -> Outcome:
    if isinstance(effect, Send):
        if effect.within is None:
            return await inner.handle_async_request(effect.request)
        limit = _Limit(effect.within, clock)
        response = await inner.handle_async_request(effect.request)  # not cut short: see OutOfTime
        if not limit.passed():
            return response
        await response.aclose()
        return OutOfTime(_LATE_RESPONSE, request=effect.request)
    if isinstance(effect, Read):
        response = _bounded(effect, clock)
        try:
            await response.aread()
        except BaseException:  # a body that broke off: release its connection
            # shielded: inside a cancelled scope (trio, anyio) the close must still run
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await response.aclose()
            raise
        return response
    if isinstance(effect, Call):
        return cast("Outcome", Reply(await effect.awaiting()))
    await clock.asleep(effect.seconds)
    return None


def _bounded(read: Read, clock: Clock) -> httpx.Response:
    """The response ``read`` asks for, its body cut short at the read's deadline."""
    if read.within is not None:
        read.response.stream = _Until(read.response.stream, _Limit(read.within, clock))
    return read.response


class _Limit:
    """When a step's ``within`` runs out: on the flow's clock, and in real time.

    The flow's deadline is on its clock; real time is what a server's slowness
    takes, and a fake clock in a test may never move while the server drips.
    """

    __slots__ = ("_clock", "_on_clock", "_real")

    def __init__(self, within: float, clock: Clock) -> None:
        self._clock = clock
        self._on_clock = clock.monotonic() + within
        self._real = time.monotonic() + within

    def passed(self) -> bool:
        return time.monotonic() > self._real or self._clock.monotonic() > self._on_clock


class _Until(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that stops with :class:`OutOfTime` at the first chunk after ``limit`` passed.

    Checked between chunks rather than cut off by a cancel scope: a cancellation of
    the caller's own that came at the same moment could leave httpcore's connection
    in use for good.
    """

    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, limit: _Limit) -> None:
        self._stream = stream
        self._limit = limit

    def __iter__(self) -> Iterator[bytes]:
        assert isinstance(self._stream, httpx.SyncByteStream)  # a blocking transport's
        for chunk in self._stream:
            if self._limit.passed():
                raise OutOfTime(_LATE_BODY)
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._stream, httpx.AsyncByteStream)
        async for chunk in self._stream:
            if self._limit.passed():
                raise OutOfTime(_LATE_BODY)
            yield chunk

    def close(self) -> None:
        assert isinstance(self._stream, httpx.SyncByteStream)
        self._stream.close()

    async def aclose(self) -> None:
        assert isinstance(self._stream, httpx.AsyncByteStream)
        await self._stream.aclose()
