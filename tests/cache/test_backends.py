"""The backends alone: hishel's storage contract, bounds, persistence, the async adapter."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hishel import Headers, Request, Response
from hishel.httpx import AsyncCacheTransport

from buttress.cache import AsyncStorage, CacheBackend, CacheConfig, DiskCache, MemoryCache
from buttress.transports import CacheTransport

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "disk"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> CacheBackend:
    if request.param == "memory":
        return MemoryCache(max_size=100)
    return DiskCache(directory=tmp_path, max_size_mb=1)


def put(backend: CacheBackend, key: str, url: str, body: bytes = b"body") -> Response:
    entry = backend.create_entry(
        Request("GET", url, Headers({})),
        Response(200, Headers({"etag": '"1"'}), iter((body,))),
        key,
    )
    assert entry.response.stream is not None
    return Response(200, entry.response.headers, iter((b"".join(entry.response.stream),)))  # type: ignore[arg-type]


def test_an_async_body_is_refused_by_the_sync_interface(backend: CacheBackend) -> None:
    async def body() -> Any:
        yield b"a"

    response = Response(200, Headers({}), body())
    with pytest.raises(TypeError, match="AsyncStorage"):
        backend.create_entry(Request("GET", "https://a/x", Headers({})), response, "k")
    assert backend.get_entries("k") == []


def test_entry_is_visible_only_once_its_stream_is_read(backend: CacheBackend) -> None:
    entry = backend.create_entry(
        Request("GET", "https://a/x", Headers({})),
        Response(200, Headers({}), iter((b"a", b"b"))),
        "k",
    )
    assert backend.get_entries("k") == []
    assert entry.response.stream is not None
    assert b"".join(entry.response.stream) == b"ab"  # type: ignore[arg-type]
    [stored] = backend.get_entries("k")
    assert b"".join(stored.response.stream) == b"ab"  # type: ignore[arg-type]


def test_update_remove_and_remove_where(backend: CacheBackend) -> None:
    put(backend, "k", "https://a/users/1")
    put(backend, "k2", "https://a/users/2")
    [entry] = backend.get_entries("k")
    backend.update_headers(entry.id, Headers({"etag": '"2"'}))
    assert backend.get_entries("k")[0].response.headers["etag"] == '"2"'
    assert backend.remove_where(lambda request: request.url.endswith("/2")) == 1
    backend.remove_entry(entry.id)
    backend.remove_entry(entry.id)  # gone already: no error
    assert backend.size == 0


def test_remove_keys_drops_every_key_with_the_prefix(backend: CacheBackend) -> None:
    put(backend, "url1cred1", "https://a/1")
    put(backend, "url1cred2", "https://a/1")
    put(backend, "url2cred1", "https://a/2")
    assert backend.remove_keys("url1") == 2
    assert (backend.get_entries("url1cred2"), backend.size) == ([], 1)


def test_disk_cache_keeps_odd_keys_inside_its_directory(tmp_path: Path) -> None:
    backend = DiskCache(directory=tmp_path / "cache")
    put(backend, "../../escape", "https://a/x")
    assert backend.get_entries("../../escape")
    assert not list(tmp_path.glob("escape*"))


def test_memory_cache_evicts_least_recently_used() -> None:
    backend = MemoryCache(max_size=2)
    put(backend, "a", "https://a/a")
    put(backend, "b", "https://a/b")
    backend.get_entries("a")  # a is now the most recently used
    put(backend, "c", "https://a/c")
    assert (backend.get_entries("b"), backend.size, backend.stats().evictions) == ([], 2, 1)
    assert backend.get_entries("a")


def test_disk_cache_is_bounded_in_bytes(tmp_path: Path) -> None:
    backend = DiskCache(directory=tmp_path, max_size_mb=0.01)  # about 10 KB
    for number in range(10):
        put(backend, f"k{number}", f"https://a/{number}", body=b"x" * 3000)
    files = sum(path.stat().st_size for path in tmp_path.glob("*/*.entry"))
    assert files <= 0.01 * 1024 * 1024
    assert backend.stats().evictions >= 6
    assert backend.get_entries("k9")


def test_disk_cache_does_not_store_what_can_never_fit(tmp_path: Path) -> None:
    backend = DiskCache(directory=tmp_path, max_size_mb=0.001)
    put(backend, "big", "https://a/big", body=b"x" * 5000)
    assert backend.size == 0


def test_disk_cache_survives_a_new_process(tmp_path: Path) -> None:
    script = f"""
import httpx
from buttress.cache import CacheConfig, DiskCache
from buttress.transports import CacheTransport
headers = {{"cache-control": "max-age=600"}}
origin = httpx.MockTransport(lambda r: httpx.Response(200, headers=headers, text="first"))
config = CacheConfig(backend=DiskCache({str(tmp_path)!r}))
with httpx.Client(transport=CacheTransport(origin, config)) as c:
    c.get("https://api.test/doc", headers={{"authorization": "Bearer t"}})
"""
    subprocess.run([sys.executable, "-c", script], check=True)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the origin must not be asked")

    transport = CacheTransport(
        httpx.MockTransport(refuse), CacheConfig(backend=DiskCache(tmp_path))
    )
    with httpx.Client(transport=transport) as client:
        response = client.get("https://api.test/doc", headers={"authorization": "Bearer t"})
    assert response.text == "first"


async def test_async_storage_serves_hishels_own_async_transport(backend: CacheBackend) -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, headers={"cache-control": "max-age=60"}, text="hello")

    transport = AsyncCacheTransport(
        httpx.MockTransport(handle), storage=AsyncStorage(backend), rfc={"shared": False}
    )
    async with httpx.AsyncClient(transport=transport) as client:
        first = await client.get("https://api.test/x")
        second = await client.get("https://api.test/x")
    assert (first.text, second.text, len(calls)) == ("hello", "hello", 1)
    assert second.extensions["caching"]["from_cache"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cacheable_methods", {"POST"}, "only safe methods"),
        ("cacheable_status_codes", {206}, "206"),
        ("default_ttl", -1, "default_ttl"),
    ],
)
def test_config_rejects_what_cannot_be_cached(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CacheConfig(**{field: value})


def test_backends_validate_their_bounds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_size"):
        MemoryCache(max_size=0)
    with pytest.raises(ValueError, match="max_size_mb"):
        DiskCache(tmp_path, max_size_mb=0)


def test_memory_cache_under_threads_stays_bounded_and_counts_every_lookup() -> None:
    backend = MemoryCache(max_size=20)
    origin = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"cache-control": "max-age=600"}, text="x")
    )
    transport = CacheTransport(origin, CacheConfig(backend=backend))

    def work(worker: int) -> None:
        for number in range(200):
            url = f"https://api.test/items/{(worker * 7 + number) % 40}"
            transport.handle_request(httpx.Request("GET", url)).read()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(8)))
    stats = backend.stats()
    assert stats.size <= 20
    assert stats.hits + stats.misses + stats.revalidations == 8 * 200


class CountingDiskCache(DiskCache):
    """A disk cache that counts the entry files its eviction scans look at."""

    scanned = 0

    def _scan(self) -> list[tuple[int, int, Path]]:
        found = super()._scan()
        self.scanned += len(found)
        return found


def test_a_full_disk_cache_scans_a_bounded_number_of_files_per_store(tmp_path: Path) -> None:
    probe = DiskCache(directory=tmp_path / "probe")
    put(probe, "k", "https://a/k", body=b"x" * 1000)
    entry_size = next((tmp_path / "probe").glob("*/*.entry")).stat().st_size
    backend = CountingDiskCache(directory=tmp_path / "cache", max_size_mb=100 * entry_size / 2**20)
    for number in range(1000):  # ten times what fits: all but the first hundred evict
        put(backend, f"k{number:04}", f"https://a/{number}", body=b"x" * 1000)
    # Down to 90% of the limit (a fraction of an entry short of 90 entries, for rounding).
    assert 89 <= backend.size <= 100
    # The directory is rescanned once per tenth of the limit written (about 100 files
    # once per ten stores), where scanning on every store would look at 100 per store.
    assert backend.scanned / 900 <= 12
    assert backend.get_entries("k0999")


def test_a_disk_entry_just_read_is_updated_and_removed_without_a_directory_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = DiskCache(directory=tmp_path)
    for number in range(20):
        put(backend, f"k{number}", f"https://a/{number}")
    [entry] = backend.get_entries("k7")
    globbed: list[str] = []
    glob = Path.glob

    def counting_glob(self: Path, pattern: str) -> Any:
        globbed.append(pattern)
        return glob(self, pattern)

    monkeypatch.setattr(Path, "glob", counting_glob)
    backend.update_headers(entry.id, Headers({"etag": '"2"'}))
    assert backend.get_entries("k7")[0].response.headers["etag"] == '"2"'
    backend.remove_entry(entry.id)
    assert backend.get_entries("k7") == []
    assert globbed == []


def test_a_disk_cache_keeps_no_folder_for_keys_whose_entries_are_gone(tmp_path: Path) -> None:
    backend = DiskCache(directory=tmp_path / "cache", max_size_mb=0.01)  # about 10 KB
    for number in range(50):
        put(backend, f"k{number:02}", f"https://a/{number}", body=b"x" * 1000)
    [entry] = backend.get_entries("k49")
    backend.remove_entry(entry.id)
    folders = [path for path in (tmp_path / "cache").iterdir() if path.is_dir()]
    assert len(folders) == backend.size < 10
