"""``client.batch(requests)``: many requests, at most ``concurrency`` on the way at once.

Each request goes through the client's own ``send``, so a batch gets what a single
call gets (middleware, logging, cache, retries, circuit breaker, rate limit, the
pool's limits, each request's deadline) and opens no side channel.

:class:`Batch` is what both clients share: the checked arguments, the results in
input order, the progress callback and the rule for stopping. The two drivers
differ only in how requests run side by side:

* :func:`run` (``Client.batch``): a pool of ``concurrency`` threads, created for
  the call and shut down before it returns;
* :func:`arun` (``AsyncClient.batch``): an anyio task group, one task a request,
  whose results come back to the caller's task on a memory object stream.

Both start a request only once the caller's thread (or task) has taken in a
result, so nothing new starts after a stop: the first failure under
``return_exceptions=False``, an error from ``on_progress``, ``KeyboardInterrupt``
or cancellation. Nothing is left to close either: ``send`` reads each body to the
end before it returns (which gives its connection back to the pool), and closes
what it opened when it fails or is cancelled.
"""

from __future__ import annotations

import contextvars
import inspect
import queue
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeAlias, cast

import anyio
import httpx

from ._exceptions import ConfigurationError, closed_client, wrong_kind

if TYPE_CHECKING:
    from ._client import AsyncClient, Client
    from ._response import Response

__all__ = ["Batch", "BatchProgress", "arun", "run"]

BatchProgress: TypeAlias = Callable[[int, int], object]
"""Called as ``on_progress(done, total)`` after each request of a batch has its result."""

Outcome: TypeAlias = "Response | Exception"


def _check_options(
    owner: str, concurrency: object, return_exceptions: object, on_progress: object
) -> None:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        kind = type(concurrency).__name__
        raise wrong_kind(f"{owner}(concurrency=...) takes an int >= 1, not {kind}")
    if concurrency < 1:
        raise ConfigurationError(f"{owner}(concurrency=...) takes an int >= 1, not {concurrency!r}")
    if not isinstance(return_exceptions, bool):
        kind = type(return_exceptions).__name__
        raise wrong_kind(f"{owner}(return_exceptions=...) takes True or False, not {kind}")
    if on_progress is not None and not callable(on_progress):
        kind = type(on_progress).__name__
        raise wrong_kind(f"{owner}(on_progress=...) takes a callable or None, not {kind}")
    if inspect.iscoroutinefunction(on_progress):
        # Called without await, it would never run (and warn "never awaited" at best).
        raise wrong_kind(
            f"{owner}(on_progress=...) is called, not awaited: pass a plain function, "
            "not an async one"
        )


def _checked_requests(owner: str, requests: Iterable[httpx.Request]) -> list[httpx.Request]:
    if isinstance(requests, httpx.Request) or not isinstance(requests, Iterable):
        kind = (
            "a single Request" if isinstance(requests, httpx.Request) else type(requests).__name__
        )
        raise wrong_kind(f"{owner}() takes an iterable of httpx.Request, not {kind}")
    checked = list(requests)
    for index, request in enumerate(checked):
        if not isinstance(request, httpx.Request):
            # The item is not shown: a tuple or a dict may hold a credential.
            raise wrong_kind(
                f"{owner}() takes httpx.Request objects (build them with "
                f"client.build_request), not {type(request).__name__} (item {index})"
            )
    if len({id(request) for request in checked}) < len(checked):
        # Layers keep per-request state in request.extensions: one object sent
        # twice at once would share it.
        raise ConfigurationError(f"{owner}() got the same Request object twice: build one per call")
    return checked


class Batch:
    """The checked arguments of one batch, its results so far, and when it stops."""

    def __init__(
        self,
        client: Client | AsyncClient,
        requests: Iterable[httpx.Request],
        concurrency: int,
        return_exceptions: bool,
        on_progress: BatchProgress | None,
    ) -> None:
        owner = f"{type(client).__name__}.batch"
        _check_options(owner, concurrency, return_exceptions, on_progress)
        self.requests = _checked_requests(owner, requests)
        if client.is_closed:
            raise closed_client(client, "a batch")
        self.width = min(concurrency, len(self.requests))
        self.return_exceptions = return_exceptions
        self.on_progress = on_progress
        self.results: list[Outcome | None] = [None] * len(self.requests)
        self.done = 0

    def take(self, index: int, outcome: Response | BaseException) -> None:
        """Record the outcome of request ``index``; raise what stops the batch."""
        if isinstance(outcome, BaseException) and not (
            self.return_exceptions and isinstance(outcome, Exception)
        ):
            raise outcome
        self.results[index] = outcome
        self.done += 1
        if self.on_progress is not None:
            self.on_progress(self.done, len(self.requests))

    def outcomes(self) -> list[Outcome]:
        """The results in input order, once every request has one."""
        return cast("list[Outcome]", self.results)


def run(client: Client, batch: Batch) -> list[Outcome]:
    """Send ``batch``'s requests on ``client`` from a pool of threads; the results in input order.

    Examples:
        >>> from buttress import Client
        >>> from buttress.testing import DemoServer
        >>> with DemoServer() as server, Client(base_url=server.url) as client:
        ...     requests = [client.build_request("GET", f"/users/{n}") for n in (1, 2)]
        ...     batch = Batch(client, requests, 2, return_exceptions=False, on_progress=None)
        ...     [response.json()["id"] for response in run(client, batch)]
        [1, 2]
    """
    if not batch.requests:
        return []
    finished: queue.SimpleQueue[tuple[int, Response | BaseException]] = queue.SimpleQueue()

    def send(index: int, request: httpx.Request) -> None:
        try:
            outcome: Response | BaseException = client.send(request)
        except BaseException as exc:  # the caller's thread decides what it means
            outcome = exc
        finished.put((index, outcome))

    # Leaving the block waits for the requests already sent (threads cannot be
    # interrupted); none is started after a stop.
    with ThreadPoolExecutor(batch.width, thread_name_prefix="buttress-batch") as threads:
        for index, request in enumerate(batch.requests):
            if index >= batch.width:
                batch.take(*finished.get())
            # Each request sees the caller's context (trace context, log fields).
            threads.submit(contextvars.copy_context().run, send, index, request)
        for _ in range(batch.width):
            batch.take(*finished.get())
    return batch.outcomes()


async def arun(client: AsyncClient, batch: Batch) -> list[Outcome]:
    """Send ``batch``'s requests on ``client`` as tasks of one task group; the results in input
    order.

    Examples:
        >>> import anyio
        >>> from buttress import AsyncClient
        >>> from buttress.testing import DemoServer
        >>> async def main(url: str) -> list[int]:
        ...     async with AsyncClient(base_url=url) as client:
        ...         requests = [client.build_request("GET", f"/users/{n}") for n in (1, 2)]
        ...         batch = Batch(client, requests, 2, return_exceptions=False, on_progress=None)
        ...         return [response.json()["id"] for response in await arun(client, batch)]
        >>> with DemoServer() as server:
        ...     anyio.run(main, server.url)
        [1, 2]
    """
    stopped: BaseException | None = None
    # Room for every running task's result, so that handing it over never waits.
    sending, finished = anyio.create_memory_object_stream[tuple[int, Outcome]](batch.width)

    async def send(index: int, request: httpx.Request) -> None:
        try:
            outcome: Outcome = await client.send(request)
        except Exception as exc:
            outcome = exc
        sending.send_nowait((index, outcome))

    with sending, finished:
        async with anyio.create_task_group() as tasks:
            try:
                for index, request in enumerate(batch.requests):
                    if index >= batch.width:
                        batch.take(*await finished.receive())
                    tasks.start_soon(send, index, request)
                for _ in range(batch.width):
                    batch.take(*await finished.receive())
            except anyio.get_cancelled_exc_class():
                raise
            except BaseException as exc:
                # Raised here, the task group would wrap it in an ExceptionGroup.
                stopped = exc
                tasks.cancel_scope.cancel()
    if stopped is not None:
        raise stopped
    return batch.outcomes()
