"""The pool gate: requests queue for a connection here, not inside httpcore's pool.

httpcore matches every queued request against every connection each time a
request arrives or a response closes (encode/httpcore#1035), so its cost grows
with the square of the queue: 1,000 tasks sharing one ``AsyncClient`` spend
their CPU matching requests to connections instead of sending them, and under
a slow interpreter (coverage, a busy machine) the connections being opened
are starved until their connect timeout runs out. The gate lets at most
``max_connections`` requests into the pool at once; the others wait in a
queue whose cost per request is logarithmic at worst. A request keeps its place until its
response is closed, as it keeps its connection.

The queue serves the highest request priority first, first come, first served
within a level, with ageing (see :mod:`buttress.policies.priority`); requests without
a priority are served in the order they came.

The wait is bounded by the request's ``pool`` timeout (httpx's timeout for
"waiting for a connection from the pool") and fails with ``httpx.PoolTimeout``,
which the facade raises as :class:`~buttress.PoolTimeoutError`.
"""

from __future__ import annotations

from typing import cast

import httpx

from .._body import WatchedStream
from .._clock import SYSTEM_CLOCK, Clock
from .._exceptions import ConfigurationError
from .._options import RequestOptions
from ..policies.priority import AGEING, Places
from ._layer import Wrapper

__all__ = ["PoolGateTransport"]


def _pool_timeout(request: httpx.Request) -> float | None:
    timeouts = request.extensions.get("timeout")
    return cast("float | None", timeouts.get("pool")) if isinstance(timeouts, dict) else None


def _timed_out(request: httpx.Request, timeout: float | None) -> httpx.PoolTimeout:
    return httpx.PoolTimeout(
        f"timed out after {timeout}s waiting for a free connection (pool timeout)",
        request=request,
    )


class _Releasing(WatchedStream):
    """A body that gives its place back to the gate when it is closed (once)."""

    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, places: Places):
        super().__init__(stream)
        self._places: Places | None = places

    def _closed(self) -> None:
        places, self._places = self._places, None
        if places is not None:
            places.release()


class PoolGateTransport(Wrapper):
    """Let at most ``max_in_flight`` requests into ``inner`` at once; the rest wait in order.

    Give it the pool's ``max_connections``. The facade puts it beneath every
    layer of an HTTP/1.1 client (HTTP/2 multiplexes many requests on one
    connection, so a gate sized by connections would only hold them back).
    Waiting requests go by priority (``buttress.options(priority="high")``),
    then in the order they came; a waiting request gains one level every
    ``ageing`` seconds, read on ``clock``.

    Examples:
        >>> import httpx
        >>> from buttress.testing import DemoServer
        >>> transport = PoolGateTransport(httpx.HTTPTransport(), max_in_flight=2)
        >>> with DemoServer() as server, httpx.Client(transport=transport) as client:
        ...     client.get(f"{server.url}/users/1").status_code
        200
    """

    def __init__(
        self,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport,
        *,
        max_in_flight: int,
        clock: Clock = SYSTEM_CLOCK,
        ageing: float = AGEING,
    ) -> None:
        if max_in_flight < 1:
            raise ConfigurationError(f"max_in_flight must be at least 1, not {max_in_flight!r}")
        self._inner = inner
        self.max_in_flight = max_in_flight
        # Threads and the tasks of an event loop wait apart: a thread cannot wake a task.
        self._threads = Places(max_in_flight, clock, ageing)
        self._tasks = Places(max_in_flight, clock, ageing)

    @property
    def waiting(self) -> int:
        """How many requests wait for a place right now.

        Examples:
            >>> import httpx
            >>> PoolGateTransport(httpx.HTTPTransport(), max_in_flight=2).waiting
            0
        """
        return self._threads.waiting + self._tasks.waiting

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self._threads.take_free():
            timeout = _pool_timeout(request)
            if not self._threads.acquire(RequestOptions.of(request).priority, timeout):
                raise _timed_out(request, timeout)
        try:
            response = cast(httpx.BaseTransport, self._inner).handle_request(request)
        except BaseException:
            self._threads.release()
            raise
        if response.is_closed:  # read to the end beneath us: its connection is free
            self._threads.release()
            return response
        response.stream = _Releasing(response.stream, self._threads)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self._tasks.take_free():
            timeout = _pool_timeout(request)
            if not await self._tasks.acquire_async(RequestOptions.of(request).priority, timeout):
                raise _timed_out(request, timeout)
        try:
            response = await cast(httpx.AsyncBaseTransport, self._inner).handle_async_request(
                request
            )
        except BaseException:
            self._tasks.release()
            raise
        if response.is_closed:
            self._tasks.release()
            return response
        response.stream = _Releasing(response.stream, self._tasks)
        return response

    def __repr__(self) -> str:
        return f"PoolGateTransport({self._inner!r}, max_in_flight={self.max_in_flight})"
