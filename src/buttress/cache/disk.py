"""The disk backend: one file per entry, shared by processes, bounded in bytes."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import hmac
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from hishel import Entry, Headers, Request, Response

from .._exceptions import ConfigurationError
from .base import _SALT_SIZES, CacheBackend, _Recent

__all__ = ["DiskCache"]

logger = logging.getLogger("buttress.cache")

_SUFFIX = ".entry"
_SAFE_KEY = re.compile(r"[0-9A-Za-z_-]{1,128}")

# An entry file: this head, a checksum, the metadata (JSON), the body. The checksum covers
# the rest and the name of the key's folder, so an entry answers only under its own key.
_HEAD = struct.Struct(">8sBIQ")  # magic, format version, metadata length, body length
_MAGIC, _VERSION = b"buttress", 2
_CHECKSUM_SIZE = 32
_START = _HEAD.size + _CHECKSUM_SIZE

# Eviction goes down to this share of the limit. Each process rescans the directory once
# per tenth of the limit it writes (other processes write to it too), not on every store
# once full: a scan costs every file.
_EVICT_TO = 0.9
_RESCAN_EVERY = 1 - _EVICT_TO
_RECENT = 1024  # where the entries last read live, so updating one finds it without a scan


class _Damaged(Exception):
    """An entry file that cannot be trusted: it is removed, and the origin asked instead."""


def _checksum(salt: bytes, *parts: bytes) -> bytes:
    digest = hashlib.blake2b(key=salt, digest_size=_CHECKSUM_SIZE)
    for part in parts:
        digest.update(part)
    return digest.digest()


def _seal(salt: bytes, folder: str, meta: bytes, body: bytes) -> bytes:
    """An entry file's bytes: lengths and a checksum keyed with the cache's salt, then the data."""
    head = _HEAD.pack(_MAGIC, _VERSION, len(meta), len(body))
    return head + _checksum(salt, folder.encode(), head, meta, body) + meta + body


def _open(salt: bytes, folder: str, data: bytes) -> tuple[bytes, bytes]:
    """The metadata and the body of an entry file, once its lengths and checksum agree."""
    if len(data) < _START:
        raise _Damaged(f"{len(data)} bytes, shorter than any entry")
    magic, version, meta_length, body_length = _HEAD.unpack_from(data)
    if (magic, version) != (_MAGIC, _VERSION):
        raise _Damaged("not an entry of this format")
    expected = _START + meta_length + body_length
    if len(data) != expected:
        raise _Damaged(f"{len(data)} bytes where the entry declares {expected}")
    meta, body = data[_START : _START + meta_length], data[_START + meta_length :]
    checksum = _checksum(salt, folder.encode(), data[: _HEAD.size], meta, body)
    if not hmac.compare_digest(data[_HEAD.size : _START], checksum):
        raise _Damaged("checksum mismatch")
    return meta, body


def _field_lines(headers: Headers) -> dict[str, list[str]]:
    """Each header's field lines, as ``Headers`` takes them back (through its public API)."""
    return {name: headers.get_list(name) or [] for name in headers}


def _pack(
    salt: bytes, folder: str, request: Request, status_code: int, headers: Headers, body: bytes
) -> bytes:
    meta = json.dumps(
        {
            "method": request.method,
            "url": request.url,
            "request_headers": _field_lines(request.headers),
            "status_code": status_code,
            "headers": _field_lines(headers),
        },
        separators=(",", ":"),
    ).encode()
    return _seal(salt, folder, meta, body)


def _unpack(salt: bytes, folder: str, data: bytes) -> tuple[Request, int, Headers, bytes]:
    raw, body = _open(salt, folder, data)
    try:
        meta = json.loads(raw)
    except ValueError as error:  # not UTF-8, or not JSON
        raise _Damaged("metadata is not JSON") from error
    if not isinstance(meta, dict):
        raise _Damaged("metadata of the wrong shape")
    method, url, status_code = meta.get("method"), meta.get("url"), meta.get("status_code")
    if not (
        isinstance(method, str)
        and isinstance(url, str)
        and type(status_code) is int
        and 100 <= status_code <= 599
    ):
        raise _Damaged("metadata of the wrong shape")
    request = Request(method, url, _headers(meta.get("request_headers")))
    return request, status_code, _headers(meta.get("headers")), body


def _headers(value: object) -> Headers:
    if not isinstance(value, dict) or not all(
        isinstance(values, list) and all(isinstance(item, str) for item in values)
        for values in value.values()
    ):
        raise _Damaged("metadata of the wrong shape")
    return Headers(value)


def _id_of(path: Path) -> uuid.UUID:
    try:
        return uuid.UUID(path.name[: -len(_SUFFIX)])
    except ValueError:
        raise _Damaged("not an entry's name") from None


def _drop_if_empty(folder: Path) -> None:
    """Remove a key's folder once its last entry is gone, so scans do not grow with old keys.

    A store racing with this finds its folder gone and is skipped, like any failed write.
    """
    with contextlib.suppress(OSError):  # not empty, or already gone
        folder.rmdir()


class DiskCache(CacheBackend):
    """Entries as files under ``directory``, kept below ``max_size_mb`` megabytes.

    Survives restarts and can be shared by processes on one machine: each
    entry is written to a temporary file and renamed into place, so readers
    never see half an entry. The bound is the directory's, whoever wrote the
    files: each process rescans the directory once per tenth of the limit it
    writes (and whenever its own count passes the limit), and a scan that
    finds more than 90% of the limit removes the least recently used files
    down to 90%. So a full cache rescans only once per tenth of the limit
    written, and processes writing at the same moment can take the directory
    past the limit by at most a tenth of it each, until their next scan. The
    directory is created with owner-only permissions; stored keys and requests
    hold keyed digests of credentials, query strings and request headers, never
    the values themselves.

    Every entry records its lengths and a checksum keyed with the directory's
    salt. An entry that does not match them (cut short, altered, or not an
    entry at all) is removed with one WARNING on the ``buttress.cache``
    logger, and the request goes to the origin. A directory that cannot be
    created or written, or a salt file this cache did not write, raises
    :class:`~buttress.ConfigurationError` here, not on a later request.

    Examples:
        >>> import tempfile
        >>> from buttress import CacheConfig, DiskCache
        >>> config = CacheConfig(backend=DiskCache(directory=tempfile.mkdtemp(), max_size_mb=50))
        >>> config.backend.max_bytes
        52428800
    """

    def __init__(self, directory: str | os.PathLike[str], max_size_mb: float = 100.0) -> None:
        if max_size_mb <= 0:
            raise ConfigurationError(f"DiskCache max_size_mb must be positive, got {max_size_mb}")
        self.directory = Path(directory)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            salt = self._load_salt()
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise ConfigurationError(
                f"DiskCache cannot use the directory {str(self.directory)!r}: {reason}"
            ) from error
        super().__init__(salt=salt)
        self.max_bytes = int(max_size_mb * 1024 * 1024)
        self._lock = threading.Lock()
        self._recent: _Recent[Path] = _Recent(_RECENT)
        self._bytes = sum(size for _, size, _ in self._scan())  # as of the last scan, plus ours
        self._written = 0  # bytes this process stored since its last scan

    def __repr__(self) -> str:
        size = self.max_bytes / 1048576
        return f"DiskCache(directory={str(self.directory)!r}, max_size_mb={size:g})"

    def _load_salt(self) -> bytes:
        """One secret per directory, so every process derives the same keys.

        A new salt is written first, which also proves the directory writable,
        and linked into place only if none exists, so processes starting
        together all end up reading the same one.
        """
        path = self.directory / "salt"
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(os.urandom(_SALT_SIZES[0]))
            with contextlib.suppress(FileExistsError):  # another process's salt is used
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
        with path.open("rb") as file:
            salt = file.read(_SALT_SIZES[-1] + 1)
        if len(salt) not in _SALT_SIZES:
            longest = _SALT_SIZES[-1]
            size = f"{len(salt)} bytes" if len(salt) <= longest else f"more than {longest} bytes"
            raise ConfigurationError(
                f"DiskCache salt file {str(path)!r} holds {size}, not {_SALT_SIZES[0]} to "
                f"{longest}: this cache did not write it. Empty the directory to start afresh."
            )
        return salt

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _files(self) -> Iterator[Path]:
        return self.directory.glob(f"*/*{_SUFFIX}")

    def _scan(self) -> list[tuple[int, int, Path]]:
        """Every entry file's last use, size and path (other processes add and remove files)."""
        found = []
        with os.scandir(self.directory) as folders:
            for folder in folders:
                if not folder.is_dir(follow_symlinks=False):
                    continue
                with contextlib.suppress(FileNotFoundError), os.scandir(folder.path) as files:
                    for file in files:
                        if not file.name.endswith(_SUFFIX):
                            continue
                        try:
                            info = file.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue  # removed meanwhile, by another process
                        found.append((info.st_mtime_ns, info.st_size, Path(file.path)))
        return found

    def _folder(self, key: str) -> Path:
        """Where ``key``'s entries live; keys that are not plain names are hashed first."""
        if not _SAFE_KEY.fullmatch(key):
            key = "k" + hashlib.sha256(key.encode()).hexdigest()
        return self.directory / key

    def _path(self, key: str, id: uuid.UUID) -> Path:
        return self._folder(key) / f"{id}{_SUFFIX}"

    def _find(self, id: uuid.UUID) -> Path | None:
        path = self._recent.get(id)
        if path is not None:
            return path
        return next(self.directory.glob(f"*/{id}{_SUFFIX}"), None)  # read by another process

    def store(
        self, key: str, id: uuid.UUID, request: Request, status: int, headers: Headers, body: bytes
    ) -> None:
        path = self._path(key, id)
        data = _pack(self.salt, path.parent.name, request, status, headers, body)
        if len(data) > self.max_bytes:
            return  # never fits: serve it, do not store it
        try:
            self._write(path, data)
        except OSError:
            return  # a full or read-only disk stops caching, not the request
        with self._lock:
            self._bytes += len(data)
            self._written += len(data)
            due = self._bytes > self.max_bytes or self._written >= self.max_bytes * _RESCAN_EVERY
            if due:
                self._written = 0  # one thread rescans; the others carry on storing
        if due:
            self._rescan()

    def _rescan(self) -> None:
        """Rescan the directory; past 90% of the limit, remove least recently used files to 90%.

        Other processes write to the directory too: what it holds is the scan's
        figure, not this process's count.
        """
        files = sorted(self._scan())
        total = sum(size for _, size, _ in files)
        evicted = 0
        for _, size, path in files:
            if total <= self.max_bytes * _EVICT_TO:
                break
            path.unlink(missing_ok=True)
            _drop_if_empty(path.parent)
            total -= size
            evicted += 1
        with self._lock:
            self._bytes = total
        if evicted:
            self.recorder.eviction(evicted)

    def get_entries(self, key: str) -> list[Entry]:
        folder = self._folder(key)
        entries = []
        try:
            paths = list(folder.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        for path in paths:
            if not path.name.endswith(_SUFFIX):
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue  # removed meanwhile: a miss
            try:
                id = _id_of(path)
                request, status_code, headers, body = _unpack(self.salt, path.parent.name, data)
            except _Damaged as damage:
                self._discard(path, damage)
                continue
            with contextlib.suppress(OSError):  # a read-only cache still serves
                os.utime(path)  # recently used: evicted last
            self._recent.remember(id, path)
            entries.append(Entry(id, request, Response(status_code, headers, iter((body,)))))
        return entries

    def _discard(self, path: Path, damage: _Damaged) -> None:
        logger.warning("Removed a damaged cache entry %s: %s", path, damage)
        with contextlib.suppress(OSError):  # a read-only cache: skipped, still not served
            self._unlink(path)

    def update_headers(self, id: uuid.UUID, headers: Headers) -> None:
        path = self._find(id)
        if path is None:
            return
        try:
            request, status_code, _, body = _unpack(self.salt, path.parent.name, path.read_bytes())
            data = _pack(self.salt, path.parent.name, request, status_code, headers, body)
            self._write(path, data)
        except _Damaged as damage:
            self._discard(path, damage)
        except OSError:
            return  # removed meanwhile, or a read-only disk

    def remove_entry(self, id: uuid.UUID) -> None:
        path = self._find(id)
        if path is not None:
            self._unlink(path)

    def _unlink(self, path: Path) -> None:
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return
        _drop_if_empty(path.parent)
        with self._lock:
            self._bytes = max(0, self._bytes - size)

    def remove_where(self, predicate: Callable[[Request], bool]) -> int:
        removed = 0
        for path in list(self._files()):
            try:
                request = _unpack(self.salt, path.parent.name, path.read_bytes())[0]
            except _Damaged as damage:
                self._discard(path, damage)
                continue
            except OSError:
                continue
            if predicate(request):
                self._unlink(path)
                removed += 1
        return removed

    def remove_keys(self, prefix: str) -> int:
        removed = 0
        for folder in self.directory.glob(f"{glob.escape(prefix)}*/"):
            for path in folder.glob(f"*{_SUFFIX}"):
                self._unlink(path)
                removed += 1
        return removed

    def clear(self) -> None:
        for folder in self.directory.iterdir():
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
        with self._lock:
            self._bytes = self._written = 0

    @property
    def size(self) -> int:
        return sum(1 for _ in self._files())
