"""pytest fixtures for code that uses buttress; registered under the ``pytest11`` entry point.

Installing buttress is enough: pytest loads this plugin by itself, no
``conftest.py`` or configuration needed.

Fixtures:
    buttress_demo_server: the demo API on a free 127.0.0.1 port, served once for the
        session; its state (hits, failures, rate windows, tokens) is new for each test.
    buttress_fake_clock: a fresh :class:`~buttress.testing.FakeClock`.
    buttress_mock_api: a fresh :class:`~buttress.testing.MockAPI`; pass its
        ``transport`` to a client (or use it as a context manager to intercept all).
    buttress_scripted_transport: a factory, ``buttress_scripted_transport(*steps)``,
        for a :class:`~buttress.testing.ScriptedTransport` on ``buttress_fake_clock``.
    buttress_cassette: a :class:`~buttress.testing.Cassette` for this test, in
        ``cassettes/<test module>/<class>.<test name>.json`` beside the test file.

Cassettes replay by default (a request not in the cassette fails). Record with
``pytest --buttress-record-mode=once`` (or ``record``, ``append``), or per test
with ``@pytest.mark.buttress_cassette("name.json", mode="once", match_body=True)``;
the command line wins over the marker.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .cassette import Cassette, RecordMode
from .clock import FakeClock
from .demo import DemoAPI
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


_DEMO_SERVER = pytest.StashKey[DemoServer]()


@pytest.fixture(scope="session")
def buttress_demo_server(pytestconfig: pytest.Config) -> Iterator[DemoServer]:
    """The buttress demo API, served once for the session, its state new for each test."""
    with DemoServer() as server:
        pytestconfig.stash[_DEMO_SERVER] = server
        yield server
        del pytestconfig.stash[_DEMO_SERVER]


@pytest.fixture(autouse=True)
def _buttress_demo_state_per_test(pytestconfig: pytest.Config) -> None:
    # The server is the session's; what earlier tests did to it (failures counted,
    # rate windows, tokens) is not this test's.
    server = pytestconfig.stash.get(_DEMO_SERVER, None)
    if server is not None and isinstance(server.app, DemoAPI):
        server.app.reset()


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
        path = test_file.parent / "cassettes" / test_file.stem / _file_name(request.node.nodeid)
    option = request.config.getoption("--buttress-record-mode", default=None)
    mode: RecordMode = option or kwargs.pop("mode", None) or "replay"
    kwargs.pop("mode", None)
    return Cassette(path, mode=mode, **kwargs)


def _file_name(nodeid: str) -> str:
    """A test's cassette file name, one per test: ``TestUsers.test_get[admin].json``.

    The class is part of it (two classes may name a method alike); characters a file
    name cannot hold become ``_``, and then a short digest of the test's id keeps
    ``[a b]`` and ``[a/b]`` apart.
    """
    test = nodeid.split("::", 1)[-1].replace("::", ".")
    name = re.sub(r"[^\w.\[\]-]+", "_", test).strip("_.")
    if name != test:
        name += "-" + hashlib.sha256(test.encode()).hexdigest()[:8]
    return f"{name}.json"
