"""Run every benchmark against a local server and print the targets table (all tables: --full).

Usage: ``uv run python -m benchmarks [--full] [--server auto|nginx|builtin]``: the quick
set (short windows, a 256 MiB download; under 5 minutes) unless ``--full``.

Throughput: each case runs ``concurrency`` workers (tasks or threads) that GET
the same URL in a loop, and the completed requests are counted in time windows
after a warm-up. Sync cases of one thread count take turns, window after
window, so a noisy neighbour on the machine hits them all alike; each async
case runs in its own fresh interpreter (see ``_async_case``) with its windows
back to back. Each figure is the median over the windows; each ratio divides
two medians of this run.

Then the comparison with the stack users assemble by hand from separate libraries
(:mod:`benchmarks.handbuilt`), cache hits (:mod:`benchmarks.cache_hits`), a large streamed download
(:mod:`benchmarks.streaming`) and the import time. The one table the quick set
prints holds every target of the performance issue with the minimum, median and
maximum of its ratio over the repetitions of this run; ``--full`` prints each
benchmark's own table before it. A fleet
of processes sharing one rate limit through a local redis-server is measured
too (:mod:`benchmarks.fleet`: small in the quick set, 4 processes sharing 200/s
for 10 s with ``--full``). The full set also measures how buttress scales with tasks,
threads, hosts and cache entries (:mod:`benchmarks.scaling`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import operator
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cache_hits, fleet, handbuilt, scaling, streaming
from .cases import ASYNC_CASES, SYNC_CASES, check_full_stack, quiet_logging
from .server import BODY, Server, cpu_seconds

ASYNC_CONCURRENCY = (1, 100, 1000)
SYNC_THREADS = (1, 8)


@dataclass(frozen=True)
class Settings:
    """How long to measure."""

    name: str
    warmup: float  # once per case and concurrency
    settle: float  # before each window, after the workers start
    window: float
    rounds: int
    import_runs: int
    cache_hits: int  # per round
    cache_rounds: int
    stream_size: int  # bytes per download
    stream_rounds: int
    handbuilt_rounds: int  # repetitions of the comparison with the hand-built stack
    handbuilt_requests: int  # per case and repetition


QUICK = Settings(
    name="quick",
    warmup=0.3,
    settle=0.1,
    window=0.4,
    rounds=4,
    import_runs=7,
    cache_hits=5_000,
    cache_rounds=5,
    stream_size=256 << 20,
    stream_rounds=7,  # a download here takes about 0.15 s: three rounds were mostly noise
    handbuilt_rounds=5,
    handbuilt_requests=1_000,
)
FULL = Settings(
    name="full",
    warmup=1.0,
    settle=0.3,
    window=2.0,
    rounds=7,
    import_runs=15,
    cache_hits=20_000,
    cache_rounds=7,
    stream_size=1 << 30,
    stream_rounds=3,
    handbuilt_rounds=11,
    handbuilt_requests=2_000,
)


@dataclass
class Result:
    """Throughputs (requests per second) of one case at one concurrency, one per round."""

    case: str
    bottom: str
    concurrency: int
    rates: list[float] = field(default_factory=list)
    server_busy: list[float] = field(default_factory=list)
    errors: int = 0

    def add(self, completed: int, elapsed: float, errors: int, busy: float | None) -> None:
        """Record one window (``busy``: the server's share of one core meanwhile)."""
        self.rates.append(completed / elapsed)
        self.errors += errors
        if busy is not None:
            self.server_busy.append(busy)

    @property
    def rate(self) -> float:
        """The median throughput."""
        return statistics.median(self.rates)


# -- async ------------------------------------------------------------------------------


async def _measure_async(
    index: int, concurrency: int, url: str, server_pid: int | None, settings: Settings
) -> Result:
    """Run ``concurrency`` tasks of one case and count completions window after window."""
    case = ASYNC_CASES[index]
    result = Result(case.name, case.bottom, concurrency)
    get, _ = case.open(url)
    done = errors = 0

    async def worker() -> None:
        nonlocal done, errors
        while True:
            try:
                await get()
            except Exception:
                errors += 1
            else:
                done += 1

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(settings.warmup)
    for _ in range(settings.rounds):
        before, start, cpu = done, time.perf_counter(), cpu_seconds(server_pid)
        await asyncio.sleep(settings.window)
        elapsed, now = time.perf_counter() - start, cpu_seconds(server_pid)
        busy = None if cpu is None or now is None else (now - cpu) / elapsed
        result.add(done - before, elapsed, 0, busy)
    result.errors = errors
    del tasks  # never cancelled: the child process exits instead (see _async_case)
    return result


def _async_case(index: int, concurrency: int, server: Server, settings: Settings) -> Result:
    """Measure one async case in a child process.

    httpcore's pool takes seconds to cancel a thousand queued requests (it rescans
    every waiting request on each cancellation), so the child reports and exits
    without cleaning up; every case also starts from a fresh interpreter.
    """
    argv = [str(index), str(concurrency), server.url, str(server.pid or ""), settings.name]
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--child", *argv],
        capture_output=True,
        check=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    return Result(**json.loads(out))


def _child(argv: Sequence[str]) -> None:
    index, concurrency, url, pid, name = argv
    quiet_logging()
    settings = QUICK if name == "quick" else FULL
    result = asyncio.run(
        _measure_async(int(index), int(concurrency), url, int(pid) if pid else None, settings)
    )
    print(json.dumps(dataclasses.asdict(result)), flush=True)
    os._exit(0)


# -- sync -------------------------------------------------------------------------------


def _sync_window(
    get: Callable[[], Any], threads: int, settle: float, window: float
) -> tuple[int, float, int]:
    """The threaded twin of :func:`_async_window`."""
    stop = threading.Event()
    counts = [0] * threads
    errors = [0] * threads

    def worker(index: int) -> None:
        while not stop.is_set():
            try:
                get()
            except Exception:
                errors[index] += 1
            else:
                counts[index] += 1

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    try:
        time.sleep(settle)
        before, start = sum(counts), time.perf_counter()
        time.sleep(window)
        return sum(counts) - before, time.perf_counter() - start, sum(errors)
    finally:
        stop.set()
        for thread in workers:
            thread.join()


def _sync_group(threads: int, server: Server, settings: Settings) -> list[Result]:
    """All sync cases at one thread count, taking turns window after window."""
    opened = [case.open(server.url) for case in SYNC_CASES]
    results = [Result(case.name, case.bottom, threads) for case in SYNC_CASES]
    try:
        for get, _ in opened:
            _sync_window(get, threads, settings.warmup, 0)
        for _ in range(settings.rounds):
            for (get, _), result in zip(opened, results, strict=True):
                cpu = cpu_seconds(server.pid)
                completed, elapsed, errors = _sync_window(
                    get, threads, settings.settle, settings.window
                )
                now = cpu_seconds(server.pid)
                busy = None if cpu is None or now is None else (now - cpu) / elapsed
                result.add(completed, elapsed, errors, busy)
    finally:
        for _, close in opened:
            close()
    return results


# -- import time ------------------------------------------------------------------------

_IMPORT = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"
COLD_HTTPX = "import httpx, pydantic; httpx.Client()"
COLD_BUTTRESS = "import buttress; buttress.Client()"
IMPORTS = [
    "import httpx, pydantic",
    "import buttress",
    "from buttress import Client, AsyncClient",
    COLD_HTTPX,  # cold start: the import and a client, as a program's first lines run
    COLD_BUTTRESS,
]


def import_times(runs: int) -> dict[str, list[float]]:
    """Seconds of each import statement in fresh interpreters, one per run (runs interleaved).

    An untimed first run writes the bytecode (even under PYTHONDONTWRITEBYTECODE), so
    that the figures are those of an installed package rather than of compiling sources.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", "; ".join(IMPORTS)], check=True, env=env)
    samples: dict[str, list[float]] = {statement: [] for statement in IMPORTS}
    for _ in range(runs):
        for statement, values in samples.items():
            out = subprocess.run(
                [sys.executable, "-c", _IMPORT.format(statement)],
                capture_output=True,
                check=True,
                text=True,
            ).stdout
            values.append(float(out))
    return samples


# -- report -----------------------------------------------------------------------------


def machine() -> str:
    """One line describing where the numbers come from."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()})"
    )


def _ratio(value: float, base: float | None) -> str:
    return "" if not base else f"{value / base:.2f}"


def _table(results: list[Result], unit: str) -> list[str]:
    by_key = {(r.case, r.concurrency): r for r in results}
    lines = [
        f"| client | {unit} | req/s | vs bare httpx, same bottom | vs aiohttp | server CPU |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        bottom = by_key.get((r.bottom, r.concurrency)) if r.bottom != r.case else None
        aiohttp = by_key.get(("aiohttp.ClientSession", r.concurrency))
        busy = f"{statistics.median(r.server_busy):.0%}" if r.server_busy else "n/a"
        errors = f" ({r.errors} errors)" if r.errors else ""
        lines.append(
            f"| {r.case} | {r.concurrency} | {r.rate:,.0f}{errors} "
            f"| {_ratio(r.rate, bottom.rate if bottom else None)} "
            f"| {_ratio(r.rate, aiohttp.rate if aiohttp else None)} | {busy} |"
        )
    return lines


def _div(a: float, b: float) -> float:
    return a / b if b else math.nan


def paired(values: Sequence[float], bases: Sequence[float]) -> list[float]:
    """``values[i] / bases[i]`` for each repetition ``i`` measured side by side."""
    return [_div(value, base) for value, base in zip(values, bases, strict=True)]


Target = tuple[str, Sequence[float], str]
"""A row of the targets table: what, the ratio of each repetition, and the goal."""

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}


def _targets(
    results: list[Result],
    imports: dict[str, list[float]],
    cache: cache_hits.CacheResult,
    streams: list[streaming.StreamResult],
    by_hand: handbuilt.Comparison,
    shared: fleet.FleetResult | None,
) -> list[str]:
    rates = {(r.case, r.concurrency): r.rates for r in results}
    backend = "buttress.AsyncClient(backend='aiohttp')"
    rows: list[Target] = []
    for threads in SYNC_THREADS:
        value = paired(rates["buttress.Client", threads], rates["httpx.Client", threads])
        rows.append((f"sync full stack / bare httpx, {threads} threads", value, ">= 0.95"))
    for c in ASYNC_CONCURRENCY:
        value = paired(rates["buttress.AsyncClient", c], rates["httpx.AsyncClient", c])
        rows.append((f"async full stack / bare httpx, c={c}", value, ">= 0.95"))
        value = paired(rates[backend, c], rates["httpx.AsyncClient + AiohttpTransport", c])
        rows.append((f"aiohttp backend / httpx on AiohttpTransport, c={c}", value, ">= 0.95"))
    value = paired(rates[backend, 100], rates["aiohttp.ClientSession", 100])
    rows.append(("aiohttp backend / raw aiohttp, c=100", value, ">= 0.35"))
    value = paired(rates[backend, 100], rates["httpx.AsyncClient", 100])
    rows.append(("aiohttp backend / bare httpx.AsyncClient, c=100", value, ">= 10"))
    value = paired(rates[backend, 1000], rates[backend, 100])
    rows.append(("aiohttp backend c=1000 / c=100 (no collapse)", value, ">= 0.5"))
    rows.append(("cache hits / hishel RFC mode on SQLite :memory:", cache.ratios, ">= 1.6"))
    rows += handbuilt.targets(by_hand)
    by_name = {s.name: s for s in streams}
    for stream in streams:
        if stream.base:  # a rate ratio is the inverse ratio of the seconds per download
            value = paired(by_name[stream.base].seconds, stream.seconds)
            rows.append((f"streaming {stream.name} / {stream.base}", value, ">= 0.95"))
    growth = [g for s in streams if s.name.startswith("buttress") for g in s.growth_mb]
    mib = streams[0].size / (1 << 20)
    rows.append((f"buttress streaming: resident growth, MB ({mib:,.0f} MiB)", growth, "< 30"))
    value = paired(imports["import buttress"], imports["import httpx, pydantic"])
    rows.append(("import buttress / import httpx, pydantic", value, "<= 1.2"))
    value = paired(imports[COLD_BUTTRESS], imports[COLD_HTTPX])
    rows.append((f"cold start: {COLD_BUTTRESS} / {COLD_HTTPX}", value, "<= 1.2"))
    rows += fleet.targets(shared)
    lines = ["| target | min | median | max | goal | met |", "|---|---:|---:|---:|---:|:---:|"]
    for name, values, goal in rows:
        op, limit = goal.split()
        low, middle, high = _spread(values)
        met = "yes" if _COMPARE[op](middle, float(limit)) else "no"  # judged on the median
        lines.append(f"| {name} | {low:.2f} | {middle:.2f} | {high:.2f} | {goal} | {met} |")
    return lines


def _spread(values: Sequence[float]) -> tuple[float, float, float]:
    """Minimum, median and maximum (NaN for a figure that could not be measured)."""
    known = [value for value in values if not math.isnan(value)]
    if not known:
        return math.nan, math.nan, math.nan
    return min(known), statistics.median(known), max(known)


def _progress(results: list[Result]) -> list[Result]:
    for r in results:
        print(f"{r.case} x{r.concurrency}: {r.rate:,.0f} req/s", file=sys.stderr)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, run everything, print the report."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="longer windows, more rounds, a 1 GiB download, and the scaling cases",
    )
    # the quick set is the default; the flag stays for the commands that still pass it
    parser.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--server", choices=["auto", "nginx", "builtin"], default="auto")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
    settings = FULL if args.full else QUICK
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    quiet_logging()
    started = time.perf_counter()

    results: list[Result] = []
    with Server(args.server) as server:
        layers = check_full_stack(server.url)
        for threads in SYNC_THREADS:
            results += _progress(_sync_group(threads, server, settings))
        for concurrency in ASYNC_CONCURRENCY:
            for index in range(len(ASYNC_CASES)):
                results += _progress([_async_case(index, concurrency, server, settings)])
        scale = None
        if settings is FULL:
            scale = scaling.measure(server.url, settings.warmup, settings.window, settings.rounds)
        by_hand = handbuilt.measure(
            server.url, server.kind, settings.handbuilt_rounds, settings.handbuilt_requests
        )
        shared = fleet.measure(server.url, full=settings is FULL)
    cache = cache_hits.measure(settings.cache_hits, settings.cache_rounds)
    print(f"cache hits: {cache.ratio:.2f} x hishel", file=sys.stderr)
    with Server("builtin") as downloads:  # the bundled server has the /download route
        streams = streaming.measure(downloads.url, settings.stream_size, settings.stream_rounds)
    for stream in streams:
        print(f"streaming {stream.name}: {stream.rate:,.0f} MiB/s", file=sys.stderr)
    imports = import_times(settings.import_runs)

    sync = [r for r in results if r.case in {c.name for c in SYNC_CASES}]
    asynchronous = [r for r in results if r not in sync]
    print(f"\nMachine: {machine()}")
    print(f"Server: {server.kind}, 127.0.0.1, HTTP/1.1 keep-alive, {len(BODY)}-byte JSON")
    print(f"buttress full stack: {', '.join(layers)}")
    print(
        f"Each ratio: one per repetition ({settings.rounds} windows of {settings.window:g} s "
        f"for throughput, cases taking turns, after a {settings.warmup:g} s warm-up per case; "
        "the repetitions of each other benchmark), its two sides measured side by side; "
        "a goal is met by the median.\n"
    )
    if settings is FULL:  # every table behind the targets
        _details(sync, asynchronous, by_hand, cache, shared, scale, streams, imports)
        print("### Targets\n")
    print("\n".join(_targets(results, imports, cache, streams, by_hand, shared)))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


def _details(
    sync: list[Result],
    asynchronous: list[Result],
    by_hand: handbuilt.Comparison,
    cache: cache_hits.CacheResult,
    shared: fleet.FleetResult | None,
    scale: Any,
    streams: list[streaming.StreamResult],
    imports: dict[str, list[float]],
) -> None:
    """Print the table of each benchmark: what the targets are made of."""
    print("### Synchronous clients\n")
    print("\n".join(_table(sync, "threads")))
    print("\n### Asynchronous clients\n")
    print("\n".join(_table(asynchronous, "concurrency")))
    print("\n### Against the stack users build by hand\n")
    print("\n".join(handbuilt.report(by_hand)))
    print("\n### Cache hits\n")
    print("\n".join(cache_hits.report(cache)))
    print("\n### A rate limit shared by a fleet of processes (Redis)\n")
    print("\n".join(fleet.report(shared)))
    if scale is not None:
        print("\n### Scaling with the work\n")
        print("\n".join(scaling.report(scale)))
    print("\n### Streaming a large download (bundled server)\n")
    print("\n".join(streaming.report(streams)))
    print("\n### Import time (median of fresh interpreters)\n")
    print("| import | ms |\n|---|---:|")
    for name, seconds in imports.items():
        print(f"| `{name}` | {statistics.median(seconds) * 1000:.0f} |")
    print()


if __name__ == "__main__":
    main()
