"""pytest fixtures for code that uses buttress; registered under the ``pytest11`` entry point.

Installing buttress is enough: pytest loads this plugin by itself, no
``conftest.py`` or configuration needed.

Fixtures:
    buttress_demo_server: the demo API on a free 127.0.0.1 port (session-wide).
    buttress_fake_clock: a fresh :class:`~buttress.testing.FakeClock`.
    buttress_mock_api: a fresh :class:`~buttress.testing.MockAPI`; pass its
        ``transport`` to a client (or use it as a context manager to intercept all).
    buttress_scripted_transport: a factory, ``buttress_scripted_transport(*steps)``,
        for a :class:`~buttress.testing.ScriptedTransport` on ``buttress_fake_clock``.
    buttress_cassette: a :class:`~buttress.testing.Cassette` for this test, in
        ``cassettes/<test module>/<test name>.json`` beside the test file.

Cassettes replay by default (a request not in the cassette fails). Record with
``pytest --buttress-record-mode=once`` (or ``record``, ``append``), or per test
with ``@pytest.mark.buttress_cassette("name.json", mode="once", match_body=True)``;
the command line wins over the marker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .cassette import Cassette, RecordMode
from .clock import FakeClock
from .mock import MockAPI
from .scripted import ScriptedTransport, Step
from .server import DemoServer

_MODES = ["replay", "once", "record", "append"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("buttress")
    group.addoption(
        "--buttress-record-mode",
        choices=_MODES,
        default=None,
        help="how buttress_cassette treats the network: replay (default), once, record, append",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "buttress_cassette(path=None, *, mode=None, match_body=False): "
        "the cassette file (relative to the test file) and how to use it",
    )


@pytest.fixture(scope="session")
def buttress_demo_server() -> Iterator[DemoServer]:
    """The buttress demo API, served for the whole test session."""
    with DemoServer() as server:
        yield server


@pytest.fixture
def buttress_fake_clock() -> FakeClock:
    """A fake clock starting at 0."""
    return FakeClock()


@pytest.fixture
def buttress_mock_api() -> MockAPI:
    """A mocked API at ``https://api.example.test``; give its ``transport`` to a client."""
    return MockAPI()


@pytest.fixture
def buttress_scripted_transport(
    buttress_fake_clock: FakeClock,
) -> Callable[..., ScriptedTransport]:
    """Make a :class:`ScriptedTransport` from steps; delays sleep on ``buttress_fake_clock``."""

    def make(*script: Step) -> ScriptedTransport:
        return ScriptedTransport(*script, clock=buttress_fake_clock)

    return make


@pytest.fixture
def buttress_cassette(request: pytest.FixtureRequest) -> Cassette:
    """This test's cassette (see the module docs for paths and modes)."""
    marker = request.node.get_closest_marker("buttress_cassette")
    args: tuple[Any, ...] = marker.args if marker else ()
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker else {}
    test_file = Path(str(request.path))
    if args:
        path = test_file.parent / str(args[0])
    else:
        name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
        path = test_file.parent / "cassettes" / test_file.stem / f"{name}.json"
    option = request.config.getoption("--buttress-record-mode", default=None)
    mode: RecordMode = option or kwargs.pop("mode", None) or "replay"
    kwargs.pop("mode", None)
    return Cassette(path, mode=mode, **kwargs)
