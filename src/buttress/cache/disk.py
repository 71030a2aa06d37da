"""The disk backend: one file per entry, shared by processes, bounded in bytes."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import struct
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hishel import Entry, Headers, Request, Response

from .._exceptions import ConfigurationError
from .base import CacheBackend

__all__ = ["DiskCache"]

_SUFFIX = ".entry"
_LENGTH = struct.Struct(">I")
_SAFE_KEY = re.compile(r"[0-9A-Za-z_-]{1,128}")


def _pack(request: Request, status_code: int, headers: Headers, body: bytes) -> bytes:
    meta = json.dumps(
        {
            "method": request.method,
            "url": request.url,
            "request_headers": request.headers._headers,
            "status_code": status_code,
            "headers": headers._headers,
        },
        separators=(",", ":"),
    ).encode()
    return _LENGTH.pack(len(meta)) + meta + body


def _unpack(data: bytes) -> tuple[Request, int, Headers, bytes]:
    (length,) = _LENGTH.unpack_from(data)
    meta: dict[str, Any] = json.loads(data[_LENGTH.size : _LENGTH.size + length])
    request = Request(meta["method"], meta["url"], Headers(meta["request_headers"]))
    body = data[_LENGTH.size + length :]
    return request, meta["status_code"], Headers(meta["headers"]), body


class DiskCache(CacheBackend):
    """Entries as files under ``directory``, kept below ``max_size_mb`` megabytes.

    Survives restarts and can be shared by processes on one machine: each
    entry is written to a temporary file and renamed into place, so readers
    never see half an entry. When the total grows past the limit the least
    recently used files are removed. The directory is created with owner-only
    permissions; stored keys and requests hold hashes of credentials, never
    the credentials themselves.

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
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        super().__init__(salt=self._load_salt())
        self.max_bytes = int(max_size_mb * 1024 * 1024)
        self._lock = threading.Lock()
        self._bytes = sum(path.stat().st_size for path in self._files())

    def __repr__(self) -> str:
        size = self.max_bytes / 1048576
        return f"DiskCache(directory={str(self.directory)!r}, max_size_mb={size:g})"

    def _load_salt(self) -> bytes:
        """One secret per directory, so every process derives the same keys.

        A new salt is linked into place only if none exists, so processes
        starting together all end up reading the same one.
        """
        path = self.directory / "salt"
        if not path.exists():
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(os.urandom(16))
                os.link(temporary, path)
            except FileExistsError:
                pass  # another process won the race: use its salt
            finally:
                os.unlink(temporary)
        return path.read_bytes()

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

    def _folder(self, key: str) -> Path:
        """Where ``key``'s entries live; keys that are not plain names are hashed first."""
        if not _SAFE_KEY.fullmatch(key):
            key = "k" + hashlib.sha256(key.encode()).hexdigest()
        return self.directory / key

    def _path(self, key: str, id: uuid.UUID) -> Path:
        return self._folder(key) / f"{id}{_SUFFIX}"

    def _find(self, id: uuid.UUID) -> Path | None:
        return next(self.directory.glob(f"*/{id}{_SUFFIX}"), None)

    def store(
        self, key: str, id: uuid.UUID, request: Request, status: int, headers: Headers, body: bytes
    ) -> None:
        data = _pack(request, status, headers, body)
        if len(data) > self.max_bytes:
            return  # never fits: serve it, do not store it
        try:
            self._write(self._path(key, id), data)
        except OSError:
            return  # a full or read-only disk stops caching, not the request
        with self._lock:
            self._bytes += len(data)
            over = self._bytes > self.max_bytes
        if over:
            self._evict()

    def _evict(self) -> None:
        """Remove least recently used files until the total fits.

        The directory is rescanned: other processes write to it too.
        """
        files = []
        for path in self._files():
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            files.append((info.st_mtime_ns, info.st_size, path))
        files.sort()
        total = sum(size for _, size, _ in files)
        evicted = 0
        for _, size, path in files:
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
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
                os.utime(path)  # recently used: evicted last
                request, status_code, headers, body = _unpack(data)
            except (OSError, ValueError, KeyError, struct.error):
                continue  # removed meanwhile, or damaged: a miss, not an error
            response = Response(status_code, headers, iter((body,)))
            entries.append(Entry(uuid.UUID(path.name[: -len(_SUFFIX)]), request, response))
        return entries

    def update_headers(self, id: uuid.UUID, headers: Headers) -> None:
        path = self._find(id)
        if path is None:
            return
        try:
            request, status_code, _, body = _unpack(path.read_bytes())
            self._write(path, _pack(request, status_code, headers, body))
        except (OSError, ValueError, KeyError, struct.error):
            return

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
        with self._lock:
            self._bytes = max(0, self._bytes - size)

    def remove_where(self, predicate: Callable[[Request], bool]) -> int:
        removed = 0
        for path in list(self._files()):
            try:
                request = _unpack(path.read_bytes())[0]
            except (OSError, ValueError, KeyError, struct.error):
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
            self._bytes = 0

    @property
    def size(self) -> int:
        return sum(1 for _ in self._files())
