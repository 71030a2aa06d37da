"""What the package declares it needs, and that no request retries a failing import.

A failed import is not remembered: every ``import x`` of a missing module searches
the whole path again. httpcore imports ``sniffio`` on each pool operation and
carries on without it, so in an environment without it every async request paid
several such searches; buttress declares it (see ``pyproject.toml``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from importlib.machinery import ModuleSpec
from types import ModuleType

import pytest
from packaging.requirements import Requirement

from tests.conftest import Either

pytestmark = pytest.mark.anyio


def test_sniffio_is_a_core_dependency() -> None:
    declared = [Requirement(line) for line in metadata.requires("buttress") or ()]
    unconditional = {requirement.name.lower() for requirement in declared if not requirement.marker}
    assert "sniffio" in unconditional


class _FailedImports:
    """A last resort on ``sys.meta_path``: it sees only the names no other finder found."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.names: list[str] = []

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if threading.get_ident() == self.thread:  # the client's, not the demo server's
            self.names.append(name)
        return None


@contextmanager
def failed_imports() -> Iterator[list[str]]:
    """The modules this thread failed to import meanwhile, once per attempt."""
    finder = _FailedImports()
    sys.meta_path.append(finder)
    try:
        yield finder.names
    finally:
        sys.meta_path.remove(finder)


async def test_requests_retry_no_failing_import(client: Either) -> None:
    await client.get("/users/1")  # what a first request imports, it imports now
    with failed_imports() as names:
        for _ in range(5):
            response = await client.get("/users/1")
            assert response.status_code == 200
    assert names == []
