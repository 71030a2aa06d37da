"""How closely the client-side rate limit holds its rate, against the local demo API.

A limit of 50 requests per second (token bucket) is driven for 10 seconds (500
requests), sync (threads sharing a ``Client``) and async (tasks sharing an
``AsyncClient``), two ways:

* ``paced``: requests arrive on schedule at 50 per second, with the default
  burst (``max_requests``): the limiter must not slow a load that complies.
* ``flood``: 20 workers send back to back, far above the limit, with
  ``burst_size=2``: the limiter alone must hold the rate at 50 per second.
  (With the default burst the first second would carry the burst on top, by
  design. A burst of two lets a request that woke late be followed on time;
  with ``burst_size=1`` every late wake-up delays every later send, because the
  limiter counts the moments requests really leave.)

The rate is measured where requests leave the client (a counting transport
beneath the limiter): ``(sends - 1) / (last send - first send)``. Each run must
stay within 2% of 50/s; the script exits non-zero otherwise.

Run: ``uv run python -m benchmarks.ratelimit_accuracy``
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

import buttress
from buttress.testing import DemoServer

RATE = 50
SECONDS = 10
REQUESTS = RATE * SECONDS
WORKERS = 20
TOLERANCE = 0.02


class Counting(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The network, noting when each request leaves."""

    def __init__(self, inner: httpx.HTTPTransport | httpx.AsyncHTTPTransport) -> None:
        self.inner = inner
        self.sent: list[float] = []
        self.lock = threading.Lock()

    def _note(self) -> None:
        with self.lock:
            self.sent.append(time.perf_counter())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._note()
        assert isinstance(self.inner, httpx.HTTPTransport)
        return self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._note()
        assert isinstance(self.inner, httpx.AsyncHTTPTransport)
        return await self.inner.handle_async_request(request)

    def rate(self) -> float:
        return (len(self.sent) - 1) / (self.sent[-1] - self.sent[0])


def limit(how: str) -> buttress.RateLimitConfig:
    return buttress.RateLimitConfig(
        max_requests=RATE,
        time_window=1.0,
        burst_size=2 if how == "flood" else None,
        queue_timeout=None,
    )


def run_sync(url: str, how: str) -> float:
    network = Counting(httpx.HTTPTransport())
    with (
        buttress.Client(base_url=url, transport=network, rate_limit=limit(how)) as client,
        ThreadPoolExecutor(max_workers=WORKERS if how == "flood" else RATE) as pool,
    ):
        if how == "flood":
            left = iter(range(REQUESTS))
            lock = threading.Lock()

            def worker() -> None:
                while True:
                    with lock:
                        if next(left, None) is None:
                            return
                    client.get("/users/1")

            for future in [pool.submit(worker) for _ in range(WORKERS)]:
                future.result()
        else:
            start = time.perf_counter()
            futures = []
            for i in range(REQUESTS):
                time.sleep(max(0.0, start + i / RATE - time.perf_counter()))
                futures.append(pool.submit(client.get, "/users/1"))
            for sent in futures:
                sent.result()
    return network.rate()


async def run_async(url: str, how: str) -> float:
    network = Counting(httpx.AsyncHTTPTransport())
    async with buttress.AsyncClient(
        base_url=url, transport=network, rate_limit=limit(how)
    ) as client:
        if how == "flood":
            left = iter(range(REQUESTS))

            async def worker() -> None:
                while next(left, None) is not None:
                    await client.get("/users/1")

            await asyncio.gather(*(worker() for _ in range(WORKERS)))
        else:
            loop = asyncio.get_running_loop()
            start = loop.time()
            tasks = []
            for i in range(REQUESTS):
                await asyncio.sleep(max(0.0, start + i / RATE - loop.time()))
                tasks.append(asyncio.create_task(client.get("/users/1")))
            await asyncio.gather(*tasks)
    return network.rate()


def main() -> int:
    runs: list[tuple[str, Callable[[str, str], float]]] = [
        ("sync", run_sync),
        ("async", lambda url, how: asyncio.run(run_async(url, how))),
    ]
    ok = True
    with DemoServer() as server:
        print(f"limit {RATE}/s, {REQUESTS} requests per run (about {SECONDS} s)")
        for how in ("paced", "flood"):
            for name, run in runs:
                measured = run(server.url, how)
                error = measured / RATE - 1
                ok &= abs(error) <= TOLERANCE
                print(f"{name:5} {how:5}  {measured:6.2f} requests/s  ({error:+.2%})")
    print("within 2%" if ok else "OUTSIDE 2%")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
