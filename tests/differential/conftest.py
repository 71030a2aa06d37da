"""The app of the differential suite on 127.0.0.1 (two origins), and a port nobody listens on."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from buttress.testing import DemoServer
from tests.servers import free_port

from .app import App
from .run import Env


@pytest.fixture(scope="session")
def app_server() -> Iterator[DemoServer]:
    with DemoServer(App()) as server:
        yield server


@pytest.fixture
def env(app_server: DemoServer) -> Env:
    port = httpx.URL(app_server.url).port
    return Env(
        server_url=app_server.url,
        other_url=f"http://localhost:{port}",
        refused_url=f"http://127.0.0.1:{free_port()}",
    )
