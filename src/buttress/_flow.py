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

Outcomes of ``Send`` and ``Read`` are sent back into the flow as values: a
response, or the :class:`Exception` the inner transport raised (a ``Read`` that
fails closes its response first, so the connection goes back to the pool). Only
``Exception`` is sent back; cancellation and ``KeyboardInterrupt`` close a
half-read response too, then pass straight through and close the flow.
httpx's own ``Auth.auth_flow`` works the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import anyio
import httpx

if TYPE_CHECKING:
    from ._clock import Clock

__all__ = ["Effect", "Flow", "Outcome", "Read", "Send", "Sleep", "adrive", "drive"]


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


Effect: TypeAlias = Send | Read | Sleep
Outcome: TypeAlias = "httpx.Response | Exception | None"
Flow: TypeAlias = Generator[Effect, Outcome, httpx.Response]


def drive(flow: Flow, inner: httpx.BaseTransport, clock: Clock) -> httpx.Response:
    """Run ``flow`` to completion with blocking I/O and return its response."""
    try:
        effect = next(flow)  # a flow may return before its first yield (an open breaker)
        while True:
            outcome: Outcome = None
            if isinstance(effect, Sleep):
                clock.sleep(effect.seconds)
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
