"""Stream 1 GB through the full buttress stack and compare with bare httpx.

Each variant runs in its own process (so peak resident memory is its own)
against the demo API's ``/download`` endpoint, served from another process.
It reports throughput, the ratio to bare httpx, and the growth of resident
memory while streaming (goal: under 30 MB)::

    python benchmarks/streaming.py            # 1 GiB
    python benchmarks/streaming.py --size 100000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import subprocess
import sys
import time
from typing import Any

import httpx

import buttress
from buttress.testing import DemoServer

CHUNK = 64 * 1024
VARIANTS = ("httpx", "buttress", "httpx-async", "buttress-async")


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


def _sync(client: httpx.Client, size: int) -> int:
    received = 0
    with client.stream("GET", "/download", params={"size": size}) as response:
        for chunk in response.iter_bytes(CHUNK):
            received += len(chunk)
    return received


async def _async(client: httpx.AsyncClient, size: int) -> int:
    received = 0
    async with client.stream("GET", "/download", params={"size": size}) as response:
        async for chunk in response.aiter_bytes(CHUNK):
            received += len(chunk)
    return received


def run_variant(variant: str, url: str, size: int) -> dict[str, Any]:
    """Stream ``size`` bytes once with ``variant``; returns seconds and memory figures."""
    timeout = httpx.Timeout(60.0)
    sync_cls: Any = buttress.Client if variant.startswith("buttress") else httpx.Client
    async_cls: Any = buttress.AsyncClient if variant.startswith("buttress") else httpx.AsyncClient
    with sync_cls(base_url=url, timeout=timeout) as warm:
        _sync(warm, 1_000_000)  # imports, connection set-up
    before = _rss_mb()
    start = time.perf_counter()
    if variant.endswith("async"):

        async def main() -> int:
            async with async_cls(base_url=url, timeout=timeout) as client:
                return await _async(client, size)

        received = asyncio.run(main())
    else:
        with sync_cls(base_url=url, timeout=timeout) as client:
            received = _sync(client, size)
    seconds = time.perf_counter() - start
    assert received == size, (received, size)
    return {"variant": variant, "seconds": seconds, "growth_mb": _peak_mb() - before}


def _serve(queue: Any) -> None:
    with DemoServer() as server:
        queue.put(server.url)
        queue.get()  # until told to stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1 << 30, help="bytes per download")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.url, args.size)))
        return

    queue: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(queue,), daemon=True)
    server.start()
    url = queue.get()
    results = {}
    try:
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--variant", variant, "--url", url]
            out = subprocess.run(
                [*command, "--size", str(args.size)], check=True, capture_output=True, text=True
            ).stdout
            results[variant] = json.loads(out.strip().splitlines()[-1])
    finally:
        queue.put("stop")
        server.join(timeout=10)
    mib = args.size / (1 << 20)
    print(f"streamed {mib:.0f} MiB per variant, {CHUNK // 1024} KiB chunks")
    print(f"{'variant':<16}{'MiB/s':>10}{'vs httpx':>10}{'RSS growth':>13}")
    for variant, result in results.items():
        base = results["httpx-async" if variant.endswith("async") else "httpx"]["seconds"]
        print(
            f"{variant:<16}{mib / result['seconds']:>10.0f}{base / result['seconds']:>10.2f}"
            f"{result['growth_mb']:>10.1f} MB"
        )


if __name__ == "__main__":
    main()
