"""The pytest plugin works in a project that only installed buttress: no conftest, no config.

Each test writes a throwaway project (a test file, an empty ``pytest.ini``) and
runs pytest on it in a subprocess with this interpreter. The project's own
settings (``-p no:buttress`` in pyproject's addopts) are not inherited: the
subprocess has its own rootdir and ini file, so the fixtures can only come
from the ``pytest11`` entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from buttress.testing import Delay, FakeClock, MockAPI, Reply, ScriptedTransport

GENERATED_TEST = """
import httpx
import pytest

import buttress
from buttress.testing import Delay, Fail, Reply


def test_the_plugin_came_from_the_entry_point(request):
    plugin = request.config.pluginmanager.get_plugin("buttress")
    assert plugin is not None and plugin.__name__ == "buttress.testing.pytest_plugin"


def test_demo_server(buttress_demo_server):
    with buttress.Client(base_url=buttress_demo_server.url) as client:
        assert client.get("/users/1").json()["name"] == "Ada Lovelace"


def test_fake_clock_and_scripted_transport(buttress_scripted_transport, buttress_fake_clock):
    transport = buttress_scripted_transport(
        Fail(httpx.ConnectError, times=2), Delay(3.0, then=Reply(json={"ok": True}))
    )
    with buttress.Client(
        base_url="https://api.example.test", transport=transport, retry=False
    ) as client:
        for _ in range(2):
            with pytest.raises(buttress.ConnectionError):
                client.get("/ping")
        assert client.get("/ping").json() == {"ok": True}
    assert buttress_fake_clock.sleeps == [3.0]
    assert len(transport.requests) == 3


def test_mock_api(buttress_mock_api):
    buttress_mock_api.rate_limited("GET", "/search", retry_after=2, then={"hits": 0})
    transport = buttress_mock_api.transport
    with httpx.Client(base_url=buttress_mock_api.base_url, transport=transport) as client:
        assert client.get("/search").status_code == 429
        assert client.get("/search").json() == {"hits": 0}


@pytest.mark.buttress_cassette("tapes/users.json", match_body=True)
def test_cassette(buttress_cassette, buttress_mock_api):
    buttress_mock_api.json("POST", "/users", {"id": 101})
    transport = buttress_cassette.transport(buttress_mock_api.transport)
    with buttress.Client(
        base_url=buttress_mock_api.base_url,
        transport=transport,
        auth=("bearer", "s3cret"),
    ) as client:
        assert client.post("/users", json={"name": "Jane"}).json() == {"id": 101}
    sent = 1 if buttress_cassette.mode == "record" else 0
    assert len(buttress_mock_api.calls) == sent


def test_default_cassette_path(buttress_cassette):
    assert buttress_cassette.path.parts[-3:] == (
        "cassettes", "test_generated", "test_default_cassette_path.json"
    )
"""


def _run_pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_CORE"))}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(project / "pytest.ini"),
            "--rootdir",
            str(project),
            "-p",
            "no:cacheprovider",
            "-q",
            *args,
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_generated.py").write_text(GENERATED_TEST)
    return tmp_path


def test_fixtures_work_in_a_fresh_project_without_configuration(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert not (project / "conftest.py").exists()

    recorded = _run_pytest(project, "--buttress-record-mode=once", "-k", "not default")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert "5 passed" in recorded.stdout

    tape = project / "tapes" / "users.json"
    assert "s3cret" not in tape.read_text()
    assert json.loads(tape.read_text())["interactions"][0]["request"]["method"] == "POST"

    replayed = _run_pytest(project, "-k", "cassette and not default")  # replay is the default
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "1 passed" in replayed.stdout


def test_replay_fails_without_a_cassette_and_says_how_to_record(tmp_path: Path) -> None:
    project = _project(tmp_path)
    result = _run_pytest(project, "-k", "default_cassette_path")
    assert result.returncode == 1
    assert "--buttress-record-mode=once" in result.stdout

    result = _run_pytest(project, "-k", "default_cassette_path", "--buttress-record-mode=record")
    assert result.returncode == 0, result.stdout + result.stderr


ALIKE_NAMES = """
import httpx
import pytest


def _get(cassette, path):
    api = httpx.MockTransport(lambda request: httpx.Response(200, json={"path": request.url.path}))
    with httpx.Client(transport=cassette.transport(api)) as client:
        return client.get(f"https://api.example.test{path}").json()


class TestUsers:
    def test_get(self, buttress_cassette):
        assert _get(buttress_cassette, "/users") == {"path": "/users"}


class TestOrders:
    def test_get(self, buttress_cassette):
        assert _get(buttress_cassette, "/orders") == {"path": "/orders"}


@pytest.mark.parametrize("name", ["a b", "a/b"])
def test_param(buttress_cassette, name):
    assert _get(buttress_cassette, f"/{name}") == {"path": f"/{name}"}


def test_sends_nothing(buttress_cassette):
    pass


@pytest.mark.parametrize("run", [1, 2])
def test_demo_state_is_new_for_each_test(buttress_demo_server, run):
    url = f"{buttress_demo_server.url}/flaky?key=shared&failures=1"
    assert httpx.get(url).status_code == 503  # every test sees the first failure
"""


def test_every_test_has_its_own_cassette_and_its_own_demo_state(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_alike.py").write_text(ALIKE_NAMES)
    recorded = _run_pytest(tmp_path, "--buttress-record-mode=record")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert "7 passed" in recorded.stdout
    names = sorted(path.name for path in (tmp_path / "cassettes" / "test_alike").iterdir())
    assert len(names) == 5, names  # two classes, two ids alike once cleaned, one empty
    assert "TestUsers.test_get.json" in names
    assert "TestOrders.test_get.json" in names
    replayed = _run_pytest(tmp_path, "-k", "not demo")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "5 passed" in replayed.stdout


def test_the_record_mode_option_is_documented(tmp_path: Path) -> None:
    result = _run_pytest(_project(tmp_path), "--help")
    assert "--buttress-record-mode" in result.stdout
    markers = _run_pytest(tmp_path, "--markers")
    assert "buttress_cassette" in markers.stdout


# The same fixtures in this project's own run (the plugin is loaded by tests/conftest.py here).


def test_scripted_transport_fixture_sleeps_on_the_fake_clock(
    buttress_scripted_transport: Callable[..., ScriptedTransport], buttress_fake_clock: FakeClock
) -> None:
    transport = buttress_scripted_transport(Delay(4.0, then=Reply(204)))
    with httpx.Client(transport=transport) as client:
        assert client.get("https://api.example.test/").status_code == 204
    assert buttress_fake_clock.monotonic() == 4.0


def test_mock_api_fixture(buttress_mock_api: MockAPI) -> None:
    buttress_mock_api.json("GET", "/x", [1])
    with httpx.Client(transport=buttress_mock_api.transport) as client:
        assert client.get(f"{buttress_mock_api.base_url}/x").json() == [1]
