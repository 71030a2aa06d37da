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

A ``Call`` asks a shared store (Redis) something: :func:`drive` makes the
blocking call, :func:`adrive` awaits the asynchronous one, so a flow that keeps
fleet-wide state never blocks an event loop; ``yield from call(...)`` returns
its value or raises its error.

Outcomes of ``Send`` and ``Read`` are sent back into the flow as values: a
response, or the :class:`Exception` the inner transport raised (a ``Read`` that
fails closes its response first, so the connection goes back to the pool). Only
``Exception`` is sent back; cancellation and ``KeyboardInterrupt`` close a
half-read response too, then pass straight through and close the flow.
httpx's own ``Auth.auth_flow`` works the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeAlias, TypeVar, cast

import anyio
import httpx

if TYPE_CHECKING:
    from ._clock import Clock

__all__ = [
    "Call",
    "Effect",
    "Flow",
    "Outcome",
    "Read",
    "Reply",
    "Send",
    "Sleep",
    "adrive",
    "call",
    "call_at_once",
    "drive",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``request`` through the inner transport; the outcome is the response or the error."""

    request: httpx.Request


@dataclass(frozen=True, slots=True)
class Read:
    """Read ``response``'s whole body; the outcome is the response or the error."""

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` on the clock; the outcome is ``None``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Call:
    """Ask a shared store: ``blocking()`` under :func:`drive`, ``awaiting()`` under :func:`adrive`.

    The outcome is a :class:`Reply` with the value, or the Exception raised.
    """

    blocking: Callable[[], object]
    awaiting: Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Reply(Generic[T]):
    """What a :class:`Call` returned (its own type, so a reply is never taken for a response)."""

    value: T


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
    return cast("T", outcome.value)


Flow: TypeAlias = Generator[Effect, Outcome, httpx.Response]


def call_at_once(step: Generator[Effect, object, T]) -> T:
    """Run a step that only asks stores (``Call``), blocking, outside any flow.

    For plain methods such as a shared circuit's ``force_open()``.
    """
    outcome: object = None
    while True:
        try:
            effect = step.send(outcome)
        except StopIteration as done:
            return cast("T", done.value)
        assert isinstance(effect, Call), "only store calls run outside a flow"
        try:
            outcome = Reply(effect.blocking())
        except Exception as exc:
            outcome = exc


def drive(flow: Flow, inner: httpx.BaseTransport, clock: Clock) -> httpx.Response:
    """Run ``flow`` to completion with blocking I/O and return its response."""
    try:
        effect = next(flow)  # a flow may return before its first yield (an open breaker)
        while True:
            outcome: Outcome = None
            if isinstance(effect, Sleep):
                clock.sleep(effect.seconds)
            elif isinstance(effect, Call):
                try:
                    outcome = cast("Outcome", Reply(effect.blocking()))
                except Exception as exc:
                    outcome = exc
            else:
                try:
                    if isinstance(effect, Send):
                        outcome = inner.handle_request(effect.request)
                    else:
                        outcome = effect.response
                        effect.response.read()
                except BaseException as exc:
                    if isinstance(effect, Read):  # a body that broke off: release its connection
                        with contextlib.suppress(Exception):
                            effect.response.close()
                    if not isinstance(exc, Exception):  # cancellation, KeyboardInterrupt
                        raise
                    outcome = exc
            effect = flow.send(outcome)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        flow.close()


async def adrive(flow: Flow, inner: httpx.AsyncBaseTransport, clock: Clock) -> httpx.Response:
    """Run ``flow`` to completion with ``await`` and return its response."""
    try:
        effect = next(flow)
        while True:
            outcome: Outcome = None
            if isinstance(effect, Sleep):
                await clock.asleep(effect.seconds)
            elif isinstance(effect, Call):
                try:
                    outcome = cast("Outcome", Reply(await effect.awaiting()))
                except Exception as exc:
                    outcome = exc
            else:
                try:
                    if isinstance(effect, Send):
                        outcome = await inner.handle_async_request(effect.request)
                    else:
                        outcome = effect.response
                        await effect.response.aread()
                except BaseException as exc:
                    if isinstance(effect, Read):  # a body that broke off: release its connection
                        # shielded: inside a cancelled scope (trio, anyio) the close must still run
                        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                            await effect.response.aclose()
                    if not isinstance(exc, Exception):  # cancellation, KeyboardInterrupt
                        raise
                    outcome = exc
            effect = flow.send(outcome)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        flow.close()
