"""A DiskCache directory shared by processes stays within its limit, whoever writes to it.

Each process counts only what it writes; the bound holds because each one also
rescans the directory once per tenth of the limit it writes and evicts by what
the scan finds.
"""

from __future__ import annotations

import multiprocessing
import uuid
from pathlib import Path
from typing import Any

from hishel import Headers, Request

from buttress.cache import DiskCache

LIMIT_MB = 1.0
LIMIT = int(LIMIT_MB * 1024 * 1024)
BODY = 20_000  # an entry file is a little larger: its header and metadata


def store(cache: DiskCache, name: str) -> None:
    request = Request("GET", f"https://api.test/{name}", Headers({}))
    headers = Headers({"cache-control": ["max-age=60"]})
    cache.store(f"k{name}", uuid.uuid4(), request, 200, headers, b"x" * BODY)


def held(directory: Path) -> int:
    """The bytes of every entry file in ``directory``, as ``du`` would count them."""
    return sum(path.stat().st_size for path in directory.glob("*/*.entry"))


def test_two_caches_on_one_directory_keep_it_within_the_limit(tmp_path: Path) -> None:
    # Two instances in one process count their writes apart, exactly as two processes do.
    first, second = DiskCache(tmp_path, LIMIT_MB), DiskCache(tmp_path, LIMIT_MB)
    entry = None
    peak = 0
    for number in range(200):  # about four times the limit in all
        store(first if number % 2 else second, f"{number:04}")
        entry = entry or next(tmp_path.glob("*/*.entry")).stat().st_size
        peak = max(peak, held(tmp_path))
    assert entry is not None
    # Between two scans each writer adds at most a tenth of the limit (and one entry).
    assert peak <= LIMIT * (0.9 + 2 * 0.1) + 2 * entry
    assert first.stats().evictions + second.stats().evictions > 100


def _worker(directory: str, start: Any, number: int, entries: int) -> None:
    cache = DiskCache(directory, LIMIT_MB)
    start.wait(60)  # every process writes at the same time
    for entry in range(entries):
        store(cache, f"{number:02}-{entry:04}")


def test_processes_sharing_a_directory_keep_it_within_the_limit(tmp_path: Path) -> None:
    processes, entries = 4, 40  # about three times the limit in all
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    workers = [
        context.Process(target=_worker, args=(str(tmp_path), start, number, entries))
        for number in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0] * processes
    # Processes that scan at the same moment may each have written up to a tenth of
    # the limit (and one entry) since: the tolerance. Without rescans each process
    # fills the directory up to the limit by its own count, about 3 MiB here.
    entry = BODY + 1000
    assert held(tmp_path) <= LIMIT * (0.9 + processes * 0.1) + processes * entry
    late = DiskCache(tmp_path, LIMIT_MB)  # the next process to store trims it to the limit
    store(late, "late")
    assert held(tmp_path) <= LIMIT
