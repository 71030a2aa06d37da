"""A damaged disk cache is a miss, never a wrong body or an exception; a bad setup fails at once.

Entries are stored through a real client against the demo API on 127.0.0.1,
then damaged on disk: cut short, bytes flipped, bytes added, replaced by
garbage, or well sealed around metadata of the wrong shape.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hishel import Headers, Request, Response
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import buttress
from buttress import CacheConfig, ConfigurationError, DiskCache
from buttress.cache import CacheBackend, MemoryCache, disk
from buttress.testing import DemoServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio

FIELDS = ("method", "url", "request_headers", "status_code", "headers")

# Values of every JSON type but the one a field must have.
NOT_TEXT_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
ANY_JSON = st.recursive(
    NOT_TEXT_SCALARS | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
LISTS = st.lists(ANY_JSON, max_size=3)
OBJECTS = st.dictionaries(st.text(max_size=3), ANY_JSON, max_size=3)
NOT_TEXT = NOT_TEXT_SCALARS | LISTS | OBJECTS
NOT_OBJECT = NOT_TEXT_SCALARS | st.text(max_size=5) | LISTS
NOT_LIST = NOT_TEXT_SCALARS | st.text(max_size=5) | OBJECTS
NOT_STATUS = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | LISTS
    | OBJECTS
    | st.sampled_from([-1, 0, 99, 600, 10**12])
)
NOT_HEADERS = NOT_OBJECT | st.dictionaries(
    st.text(max_size=5),
    NOT_LIST | st.lists(NOT_TEXT, min_size=1, max_size=2),
    min_size=1,
    max_size=2,
)
WRONG = {
    "method": NOT_TEXT,
    "url": NOT_TEXT,
    "status_code": NOT_STATUS,
    "request_headers": NOT_HEADERS,
    "headers": NOT_HEADERS,
}


class Stored:
    """The one entry a test stored, and how to write damaged versions of it."""

    def __init__(self, directory: Path) -> None:
        [self.path] = directory.glob("*/*.entry")
        self.data = self.path.read_bytes()
        self.salt = (directory / "salt").read_bytes()
        meta_length, _ = disk._HEAD.unpack_from(self.data)[2:]
        self.meta = json.loads(self.data[disk._START : disk._START + meta_length])
        self.body = self.data[disk._START + meta_length :]

    def sealed(self, meta: Any) -> bytes:
        """An entry whose lengths and checksum are right around ``meta``."""
        raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
        return disk._seal(self.salt, self.path.parent.name, raw, self.body)

    def replace(self, data: bytes) -> None:
        for path in self.path.parent.iterdir():
            path.unlink()
        self.path.write_bytes(data)


@dataclass(frozen=True)
class Damage:
    """One way to damage an entry file, drawn before the entry exists (its size varies)."""

    how: str
    detail: str
    apply: Callable[[Stored], bytes] = field(repr=False)


@st.composite
def damages(draw: st.DrawFn) -> Damage:
    shapes = [f"shape: {name}" for name in (*FIELDS, "whole", "missing")]
    how = draw(st.sampled_from(["cut", "flip", "append", "garbage", "not json", *shapes]))
    if how == "cut":  # down to nothing: an empty file
        at = draw(st.integers(min_value=0))
        return Damage(
            how,
            f"cut at {at} (modulo the size)",
            lambda stored: stored.data[: at % len(stored.data)],
        )
    if how == "flip":
        masks = draw(
            st.lists(
                st.tuples(st.integers(min_value=0), st.integers(1, 255)), min_size=1, max_size=4
            )
        )

        def flip(stored: Stored) -> bytes:
            flips = {position % len(stored.data): mask for position, mask in masks}
            damaged = bytearray(stored.data)
            for position, mask in flips.items():
                damaged[position] ^= mask
            return bytes(damaged)

        return Damage(how, f"flip {masks} (modulo the size)", flip)
    if how == "append":
        tail = draw(st.binary(min_size=1, max_size=64))
        return Damage(how, f"append {tail!r}", lambda stored: stored.data + tail)
    if how == "garbage":
        garbage = draw(st.binary(max_size=300))
        return Damage(how, f"replace by {garbage!r}", lambda stored: garbage)
    if how == "not json":
        raw = b"\xff" + draw(st.binary(max_size=40))
        return Damage(how, f"seal {raw!r}", lambda stored: stored.sealed(raw))
    field_name = how.removeprefix("shape: ")
    if field_name == "whole":
        whole = draw(NOT_OBJECT)
        return Damage(how, f"seal {whole!r}", lambda stored: stored.sealed(whole))
    if field_name == "missing":
        missing = draw(st.sampled_from(FIELDS))
        return Damage(
            how,
            f"seal without {missing}",
            lambda stored: stored.sealed({k: v for k, v in stored.meta.items() if k != missing}),
        )
    wrong = draw(WRONG[field_name])
    return Damage(
        how,
        f"seal with {field_name}={wrong!r}",
        lambda stored: stored.sealed({**stored.meta, field_name: wrong}),
    )


def put(backend: DiskCache, key: str, url: str) -> uuid.UUID:
    """Store one small entry straight into ``backend``."""
    response = Response(200, Headers({"content-length": "2"}), iter((b"ok",)))
    entry = backend.create_entry(Request("GET", url, Headers({})), response, key)
    b"".join(entry.response.stream)  # type: ignore[arg-type]
    return entry.id


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "buttress.cache" and record.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(damage=damages())
async def test_a_damaged_entry_is_removed_and_the_origin_answers(
    is_async: bool,
    demo: DemoServer,
    tmp_path_factory: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
    damage: Damage,
) -> None:
    directory = tmp_path_factory.mktemp("cache")
    params = {"key": uuid.uuid4().hex}
    expected = {"key": params["key"], "version": "1"}
    cls = buttress.AsyncClient if is_async else buttress.Client
    client = Either(cls(base_url=demo.url, cache=CacheConfig(backend=DiskCache(directory))))
    try:
        await client.get("/cacheable", params=params)
        stored = Stored(directory)
        event(damage.how)
        stored.replace(damage.apply(stored))
        caplog.clear()
        before = demo.app.hits["/cacheable"]

        with caplog.at_level(logging.WARNING, logger="buttress.cache"):
            response = await client.get("/cacheable", params=params)
        assert not response.from_cache
        assert response.json() == expected
        assert demo.app.hits["/cacheable"] == before + 1
        [warning] = warnings_of(caplog)
        assert "damaged cache entry" in warning.getMessage()
        assert not stored.path.exists()

        again = await client.get("/cacheable", params=params)  # stored afresh
        assert again.from_cache
        assert again.json() == expected
    finally:
        await client.aclose()


def test_a_fresh_entry_reads_back_exactly(demo: DemoServer, tmp_path: Path) -> None:
    """The forged entries above differ from a good one only where the test damages them."""
    with buttress.Client(base_url=demo.url, cache=CacheConfig(backend=DiskCache(tmp_path))) as c:
        c.get("/cacheable", params={"key": "exact"})
        stored = Stored(tmp_path)
        stored.replace(stored.sealed(stored.meta))
        assert c.get("/cacheable", params={"key": "exact"}).from_cache


def test_damaged_entries_met_by_invalidation_and_updates_are_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = DiskCache(tmp_path)
    put(backend, "key0", "https://api.test/0")
    put(backend, "key1", "https://api.test/1")
    first, second = sorted(tmp_path.glob("*/*.entry"))
    first.write_bytes(first.read_bytes()[:-1])
    second.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="buttress.cache"):
        assert buttress.Cache(backend).invalidate("https://api.test/0") == 0
        assert backend.size == 0
    assert len(warnings_of(caplog)) == 2

    id = put(backend, "key", "https://api.test/x")
    [path] = tmp_path.glob("*/*.entry")
    path.write_bytes(b"garbage")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="buttress.cache"):
        backend.update_headers(id, Headers({"etag": '"2"'}))
    assert (len(warnings_of(caplog)), backend.size) == (1, 0)


def test_an_entry_moved_under_another_key_is_not_served(tmp_path: Path) -> None:
    backend = DiskCache(tmp_path)
    put(backend, "alice", "https://api.test/me")
    [path] = tmp_path.glob("alice/*.entry")
    (tmp_path / "bob").mkdir()
    path.rename(tmp_path / "bob" / path.name)
    assert backend.get_entries("bob") == []


# -- configuration problems surface when the cache is built ----------------------------------


def file_in_the_way(root: Path) -> Path:
    (root / "file").write_text("x")
    return root / "file" / "cache"


def salt_of(content: bytes) -> Any:
    def setup(root: Path) -> Path:
        (root / "salt").write_bytes(content)
        return root

    return setup


def salt_directory(root: Path) -> Path:
    (root / "salt").mkdir()
    return root


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (file_in_the_way, "cannot use the directory .*: Not a directory"),
        (salt_of(b"s" * 65), "holds more than 64 bytes, not 16 to 64"),
        (salt_of(b""), "holds 0 bytes"),
        (salt_of(b"s" * 8), "holds 8 bytes"),
        (salt_directory, "Is a directory"),
    ],
    ids=["under a file", "oversized salt", "empty salt", "short salt", "salt is a directory"],
)
def test_a_bad_directory_or_salt_fails_when_the_cache_is_built(
    tmp_path: Path, setup: Any, message: str
) -> None:
    directory = setup(tmp_path)
    with pytest.raises(ConfigurationError, match=message):
        DiskCache(directory)


def test_a_salt_of_the_wrong_size_is_refused_by_any_backend() -> None:
    class Salted(MemoryCache):
        def __init__(self, salt: bytes) -> None:
            super().__init__()
            CacheBackend.__init__(self, salt=salt)

    with pytest.raises(ConfigurationError, match="16 to 64 bytes, got 65"):
        Salted(b"s" * 65)
    assert len(Salted(b"s" * 64).salt) == 64
