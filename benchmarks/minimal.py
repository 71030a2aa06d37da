"""Async requests where nothing but buttress and its own dependencies is installed.

A development environment brings in packages the users' environments may lack:
there, httpcore once retried a failing ``import sniffio`` on every pool operation
and halved the throughput of every async client. This case runs in such a
minimal install and shows what a user of it gets.

Bare ``httpx.AsyncClient`` and buttress's full default stack (``full_stack()``)
each send the same number of GETs to the bundled server, with 1 and 100
concurrent tasks, in rounds that alternate between the two on one client each.
It reports requests per second (median, min and max of the rounds), the ratio
within each round, the client's CPU time per request (steadier than the rates
on a busy machine) and the imports that failed per request (a finder placed
last on ``sys.meta_path`` sees every lookup no other finder satisfied): it must
be 0, since a failed import is searched for again each time.

From a clone, in a fresh environment (see docs/performance.md)::

    uv venv /tmp/minimal && uv pip install --python /tmp/minimal .
    /tmp/minimal/bin/python -m benchmarks.minimal
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

import httpx

import buttress

from .cases import TIMEOUT, full_stack, quiet_logging
from .server import Server

__all__ = ["main", "measure"]

CONCURRENCY = (1, 100)
VERSIONS = ("httpx", "httpcore", "anyio", "sniffio", "buttress")
# what the extras and the development environment would add
OPTIONAL = ("aiohttp", "h2", "opentelemetry", "orjson", "socksio", "trio", "uvicorn")


class _FailedImports:
    """Placed last on ``sys.meta_path``: counts the names no other finder found."""

    def __init__(self) -> None:
        self.count = 0

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        self.count += 1
        return None


@dataclass
class Case:
    """One client at one concurrency: its rate and CPU in each round, its failed imports."""

    name: str
    concurrency: int
    rates: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # seconds of this process per request
    failed_imports: int = 0
    requests: int = 0


async def _batch(
    get: Callable[[], Awaitable[Any]], requests: int, concurrency: int
) -> tuple[float, float]:
    """Send ``requests`` GETs from ``concurrency`` tasks; the seconds and CPU seconds taken."""
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            (await get()).raise_for_status()

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, time.process_time() - cpu


async def _measure(url: str, requests: int, rounds: int) -> list[tuple[Case, Case]]:
    pairs = []
    finder = _FailedImports()
    for concurrency in CONCURRENCY:
        async with (
            httpx.AsyncClient(timeout=TIMEOUT) as bare,
            buttress.AsyncClient(**full_stack()) as stacked,
        ):
            cases = (
                Case("httpx.AsyncClient", concurrency),
                Case("buttress.AsyncClient (full stack)", concurrency),
            )
            gets = (lambda: bare.get(url)), (lambda: stacked.get(url))
            for get in gets:  # connections opened, first-use imports done
                await _batch(get, concurrency, concurrency)
            for _ in range(rounds):
                for case, get in zip(cases, gets, strict=True):
                    before = finder.count
                    sys.meta_path.append(finder)
                    try:
                        elapsed, cpu = await _batch(get, requests, concurrency)
                    finally:
                        sys.meta_path.remove(finder)
                    case.rates.append(requests / elapsed)
                    case.cpu.append(cpu / requests)
                    case.failed_imports += finder.count - before
                    case.requests += requests
            pairs.append(cases)
    return pairs


def measure(url: str, requests: int, rounds: int) -> list[tuple[Case, Case]]:
    """Bare httpx and buttress's full stack, paired by concurrency."""
    return asyncio.run(_measure(url, requests, rounds))


def installed() -> str:
    """The versions that matter here, and which optional packages are importable."""
    versions = []
    for name in VERSIONS:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} not installed")
    extras = [name for name in OPTIONAL if importlib.util.find_spec(name) is not None]
    return f"{', '.join(versions)}; optional packages present: {', '.join(extras) or 'none'}"


def report(pairs: list[tuple[Case, Case]]) -> list[str]:
    """A markdown table: rates as median (min-max) of the rounds, ratios per round."""

    def spread(values: list[float], form: str) -> str:
        low, mid, high = min(values), statistics.median(values), max(values)
        return f"{mid:{form}} ({low:{form}}-{high:{form}})"

    lines = [
        "| client | concurrency | req/s | vs bare httpx | CPU per request, us "
        "| failed imports per request |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for bare, stacked in pairs:
        ratios = [s / b for s, b in zip(stacked.rates, bare.rates, strict=True)]
        for case, ratio in ((bare, ""), (stacked, spread(ratios, ".2f"))):
            lines.append(
                f"| {case.name} | {case.concurrency} | {spread(case.rates, ',.0f')} | {ratio} "
                f"| {spread([1e6 * cpu for cpu in case.cpu], ',.0f')} "
                f"| {case.failed_imports / case.requests:.2f} |"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, measure against the bundled server, print the report."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.minimal", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=2_000, help="per client and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    quiet_logging()
    with Server("builtin") as server:
        pairs = measure(server.url, args.requests, args.rounds)
    print(f"Installed: {installed()}")
    print(
        f"Each figure: {args.requests:,} GETs per round, median (min-max) of "
        f"{args.rounds} rounds alternating between the clients.\n"
    )
    print("\n".join(report(pairs)))


if __name__ == "__main__":
    main()
