"""pytest fixtures for code that uses buttress; registered under the ``pytest11`` entry point.

Fixtures:
    buttress_demo_server: the demo API on a free 127.0.0.1 port (session-wide).
    buttress_fake_clock: a fresh :class:`~buttress.testing.FakeClock`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .clock import FakeClock
from .server import DemoServer


@pytest.fixture(scope="session")
def buttress_demo_server() -> Iterator[DemoServer]:
    """The buttress demo API, served for the whole test session."""
    with DemoServer() as server:
        yield server


@pytest.fixture
def buttress_fake_clock() -> FakeClock:
    """A fake clock starting at 0."""
    return FakeClock()
