"""The client's own cost per sync request, one layer at a time, with no network beneath.

Every case sends GETs to an ``httpx.MockTransport`` that answers the same 889-byte
JSON document, so what is measured is the client's work alone: bare httpx, the
stack users build by hand (see :mod:`benchmarks.handbuilt_clients`), ``stack()``
on a plain ``httpx.Client``, and ``buttress.Client`` with one layer more per row,
ending with the layers of :mod:`benchmarks.handbuilt` (retry, breaker, a rate
limit too generous to bind, and the default logging at INFO and tracing).

Two measures:

- **CPU time per request** (default): each case sends ``--requests`` GETs per
  repetition, cases taking turns; the figure is the median over ``--rounds``
  repetitions of the process's CPU time divided by the requests.
- **instructions per request** (``--instructions``, needs valgrind): one
  interpreter under callgrind makes each client in turn, warms it up, then sends
  ``--requests`` GETs inside one ``functools.reduce`` call, the only place
  callgrind counts (it writes the count after each call), so start-up, imports
  and warm-up are left out; a busy machine barely moves these figures. The
  cyclic garbage collector is paused while counting, since its passes would
  land in whichever case happens to be running.

With ``--cache-hits``, the cases are instead the cache-hit clients of
:mod:`benchmarks.handbuilt` (hishel's ``CacheTransport``, ``buttress.Client``
and ``stack()`` with a cache), each sending the GET its cache answers.

``--only TEXT`` keeps the cases whose name contains ``TEXT`` (the first two rows stay, as
the bases of the ratios): a quick count while working on one layer.

``python -m benchmarks.profile_layers [--instructions] [--cache-hits] [--only TEXT]
[--rounds N] [--requests N]``
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from .cases import quiet_logging
from .handbuilt_clients import GENEROUS_RATE, HAND_BUILT, _GuardedTransport, _retry

__all__ = ["CASES", "main"]

URL = "http://api.example.com/users/1"
BODY = json.dumps({"id": 1, "name": "Ada Lovelace", "padding": "x" * 841}).encode()


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200, headers={"Content-Type": "application/json", "Cache-Control": "no-store"}, content=BODY
    )


def _network() -> httpx.MockTransport:
    return httpx.MockTransport(_answer)


def _layers(*names: str) -> dict[str, Any]:
    import buttress

    every = {
        "retry": buttress.RetryConfig(),
        "circuit_breaker": buttress.CircuitBreakerConfig(),
        "rate_limit": buttress.RateLimitConfig(max_requests=GENEROUS_RATE, time_window=1.0),
    }
    return {name: every[name] for name in names}


def _bare() -> httpx.Client:
    return httpx.Client(transport=_network())


def _hand_built() -> httpx.Client:
    from httpx_retries import RetryTransport

    return httpx.Client(transport=RetryTransport(_GuardedTransport(_network()), retry=_retry()))


def _stacked() -> httpx.Client:
    from buttress.transports import stack

    layers = _layers("retry", "circuit_breaker", "rate_limit")
    return httpx.Client(transport=stack(_network(), **layers))


def _facade(*names: str, observed: bool = False) -> Callable[[], httpx.Client]:
    def make() -> httpx.Client:
        import buttress

        kwargs = _layers(*names)
        kwargs.setdefault("retry", False)
        if not observed:
            kwargs.update(logging=False, tracing=False)
        return buttress.Client(transport=_network(), **kwargs)

    return make


CASES: dict[str, Callable[[], httpx.Client]] = {
    "bare `httpx.Client`": _bare,
    f"{HAND_BUILT} (httpx-retries, purgatory, pyrate-limiter)": _hand_built,
    "`stack()` on `httpx.Client`: retry, breaker, rate limit": _stacked,
    "`buttress.Client`, no layers (logging, tracing, retry off)": _facade(),
    "+ retry": _facade("retry"),
    "+ circuit breaker": _facade("retry", "circuit_breaker"),
    "+ rate limit (never binding)": _facade("retry", "circuit_breaker", "rate_limit"),
    "+ logging at INFO and tracing (the defaults), as in the hand-built comparison": _facade(
        "retry", "circuit_breaker", "rate_limit", observed=True
    ),
}
"""Each row's client, in the table's order."""


def _send(client: httpx.Client, count: int, url: str = URL) -> None:
    for _ in range(count):
        client.get(url).read()


def _cache_hit_cases() -> tuple[dict[str, Callable[[], httpx.Client]], str]:
    """The cache-hit clients of the hand-built comparison, and the URL their caches answer."""
    from functools import partial

    from .handbuilt import CACHE_CASES, CACHE_URL, cache_client

    return {case: partial(cache_client, case) for case in CACHE_CASES}, CACHE_URL


def _cases(cache_hits: bool, only: str = "") -> tuple[dict[str, Callable[[], httpx.Client]], str]:
    cases, url = _cache_hit_cases() if cache_hits else (CASES, URL)
    bases = 1 if cache_hits else 2  # the rows the ratios divide by always run
    kept = {name: make for i, (name, make) in enumerate(cases.items()) if i < bases or only in name}
    return kept, url


def _cpu_per_request(
    rounds: int, requests: int, cache_hits: bool, only: str
) -> dict[str, list[float]]:
    quiet_logging()
    cases, url = _cases(cache_hits, only)
    clients = {name: make() for name, make in cases.items()}
    figures: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for client in clients.values():
            _send(client, requests // 10, url)  # warm up: imports, caches, first-use work
        for _ in range(rounds):
            for name, client in clients.items():
                started = time.process_time()
                _send(client, requests, url)
                figures[name].append((time.process_time() - started) / requests * 1e6)
    finally:
        for client in clients.values():
            client.close()
    return figures


_CHILD = """
import functools, gc, sys
from benchmarks.cases import quiet_logging
from benchmarks.profile_layers import _cases, _send
quiet_logging()
requests, cases, url = int(sys.argv[1]), *_cases(sys.argv[2] == "cache-hits", sys.argv[3])
for make in cases.values():
    client = make()
    _send(client, max(requests // 10, 20), url)
    gc.collect()
    gc.disable()  # a collection would land in whichever case happens to run
    # callgrind counts only inside functools.reduce, and writes one part per call
    functools.reduce(lambda _, __: client.get(url).read(), range(requests), None)
    gc.enable()
    client.close()
"""


def _instructions_per_request(requests: int, cache_hits: bool, only: str) -> dict[str, float]:
    """Each case's requests counted by callgrind in one interpreter, start-up left out."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=functools_reduce",
                "--dump-after=functools_reduce",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                _CHILD,
                str(requests),
                "cache-hits" if cache_hits else "layers",
                only,
            ],
            check=True,
            capture_output=True,
            cwd=Path(__file__).parent.parent,
        )
        parts = sorted(Path(folder).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        counts = []
        for part in parts:
            found = re.search(rb"^summary: (\d+)", part.read_bytes(), re.MULTILINE)
            assert found is not None, f"callgrind wrote no summary in {part.name}"
            counts.append(int(found.group(1)) / requests)
    cases = _cases(cache_hits, only)[0]
    assert len(counts) == len(cases), f"{len(counts)} callgrind parts for {len(cases)} cases"
    return dict(zip(cases, counts, strict=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    parser.add_argument("--cache-hits", action="store_true", help="cache hits, against hishel")
    parser.add_argument("--only", default="", help="only the cases whose name contains this")
    args = parser.parse_args(argv)
    names = list(_cases(args.cache_hits, args.only)[0])
    # the rows each figure is divided by, and their short names for the headings
    bases = {"hishel": names[0]} if args.cache_hits else {"bare": names[0], "hand-built": names[1]}
    against = "".join(f" vs {label} |" for label in bases)
    if args.instructions:
        counts = _instructions_per_request(args.requests, args.cache_hits, args.only)
        print(f"| client | instructions per request |{against}")
        print("|---|---:|" + "---:|" * len(bases))
        for name, count in counts.items():
            ratios = "".join(f" {count / counts[base]:.2f} |" for base in bases.values())
            print(f"| {name} | {count:,.0f} |{ratios}")
        return
    figures = _cpu_per_request(args.rounds, args.requests, args.cache_hits, args.only)
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print(
        f"CPU microseconds per request, median (min-max) of {args.rounds} repetitions "
        f"of {args.requests:,} GETs, cases taking turns"
    )
    print(f"| client | us per request |{against}")
    print("|---|---:|" + "---:|" * len(bases))
    for name, values in figures.items():
        median = medians[name]
        ratios = "".join(f" {median / medians[base]:.2f} |" for base in bases.values())
        print(f"| {name} | {median:.1f} ({min(values):.1f}-{max(values):.1f}) |{ratios}")


if __name__ == "__main__":
    main()
