"""Streaming a large download through the full buttress stack, against bare httpx.

Each variant streams ``size`` bytes from the bundled server's
``/download?size=N`` route in 64 KiB pieces (``iter_bytes`` / ``aiter_bytes``),
in a fresh interpreter of its own, so that its resident memory is its own.
After a 1 MB warm-up download on the same client, the process's peak resident
set is reset (Linux ``/proc/self/clear_refs``); the growth is the peak during
the download minus the resident set before it. Rounds run the variants in turn;
throughput is the median of the rounds, growth the largest.

``python -m benchmarks`` runs it with the rest (1 GiB per download with ``--full``).
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

import buttress

from .cases import TIMEOUT, full_stack, quiet_logging

__all__ = ["VARIANTS", "StreamResult", "measure", "report"]

CHUNK = 64 * 1024
WARM_UP = 1_000_000


@dataclass(frozen=True)
class Variant:
    """A client that streams; ``base`` names the bare-httpx variant with the same bottom."""

    name: str
    base: str
    make: Callable[[], Any]
    asynchronous: bool


VARIANTS = [
    Variant("httpx.Client", "", lambda: httpx.Client(timeout=TIMEOUT), False),
    Variant("buttress.Client", "httpx.Client", lambda: buttress.Client(**full_stack()), False),
    Variant("httpx.AsyncClient", "", lambda: httpx.AsyncClient(timeout=TIMEOUT), True),
    Variant(
        "buttress.AsyncClient",
        "httpx.AsyncClient",
        lambda: buttress.AsyncClient(**full_stack()),
        True,
    ),
    Variant(
        "httpx.AsyncClient + AiohttpTransport",
        "",
        lambda: httpx.AsyncClient(timeout=TIMEOUT, transport=AiohttpTransport()),
        True,
    ),
    Variant(
        "buttress.AsyncClient(backend='aiohttp')",
        "httpx.AsyncClient + AiohttpTransport",
        lambda: buttress.AsyncClient(backend="aiohttp", **full_stack()),
        True,
    ),
]


@dataclass
class StreamResult:
    """One variant's rounds: seconds per download and resident growth in MB."""

    name: str
    base: str
    size: int
    seconds: list[float] = field(default_factory=list)
    growth_mb: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Median MiB per second."""
        return self.size / (1 << 20) / statistics.median(self.seconds)

    @property
    def growth(self) -> float:
        """The largest resident growth over the rounds, in MB (NaN when unknown)."""
        return max(self.growth_mb) if self.growth_mb else float("nan")


# -- in the child process -----------------------------------------------------------------


def _rss_mb(field_name: str) -> float | None:
    """``VmRSS`` or ``VmHWM`` (the peak) of this process, in MB (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_mb() -> float:
    peak = _rss_mb("VmHWM")
    if peak is not None:
        return peak
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib * 1024 / 1e6


def _sync(client: httpx.Client, url: str, size: int) -> int:
    received = 0
    with client.stream("GET", url, params={"size": size}) as response:
        for chunk in response.iter_bytes(CHUNK):
            received += len(chunk)
    return received


async def _async(client: httpx.AsyncClient, url: str, size: int) -> int:
    received = 0
    async with client.stream("GET", url, params={"size": size}) as response:
        async for chunk in response.aiter_bytes(CHUNK):
            received += len(chunk)
    return received


def _child(index: int, url: str, size: int) -> dict[str, float]:
    """Warm up, then stream ``size`` bytes once; seconds and growth as JSON-ready values."""
    quiet_logging()
    variant = VARIANTS[index]
    url += "download"
    figures: dict[str, float] = {}

    def start() -> None:
        _reset_peak()
        figures["before"] = _rss_mb("VmRSS") or _peak_mb()
        figures["start"] = time.perf_counter()

    def stop(received: int) -> None:
        figures["seconds"] = time.perf_counter() - figures["start"]
        figures["growth_mb"] = _peak_mb() - figures["before"]
        assert received == size, (received, size)

    if variant.asynchronous:

        async def main() -> None:
            async with variant.make() as client:
                await _async(client, url, WARM_UP)
                start()
                stop(await _async(client, url, size))

        asyncio.run(main())
    else:
        with variant.make() as client:
            _sync(client, url, WARM_UP)
            start()
            stop(_sync(client, url, size))
    return {"seconds": figures["seconds"], "growth_mb": figures["growth_mb"]}


# -- in the runner ------------------------------------------------------------------------


def measure(url: str, size: int, rounds: int) -> list[StreamResult]:
    """Stream ``size`` bytes with every variant, ``rounds`` times in turn."""
    results = [StreamResult(v.name, v.base, size) for v in VARIANTS]
    for _ in range(rounds):
        for index, result in enumerate(results):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.streaming", str(index), url, str(size)],
                capture_output=True,
                check=True,
                text=True,
                cwd=Path(__file__).resolve().parent.parent,
            ).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            result.seconds.append(figures["seconds"])
            result.growth_mb.append(figures["growth_mb"])
    return results


def report(results: Sequence[StreamResult]) -> list[str]:
    """The markdown table of :func:`measure`'s results."""
    by_name = {r.name: r for r in results}
    size = results[0].size
    lines = [
        f"{size / (1 << 20):,.0f} MiB per download in {CHUNK // 1024} KiB pieces; median of "
        f"{len(results[0].seconds)} rounds, largest resident growth.\n",
        "| client | MiB/s | vs bare httpx, same bottom | resident growth |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        base = by_name.get(r.base)
        ratio = f"{r.rate / base.rate:.2f}" if base else ""
        lines.append(f"| {r.name} | {r.rate:,.0f} | {ratio} | {r.growth:.1f} MB |")
    return lines


if __name__ == "__main__":
    print(json.dumps(_child(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))), flush=True)
