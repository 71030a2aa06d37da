"""The command line, run as users run it (``python -m buttress``) against the demo API."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest

from buttress import CacheConfig, Client, DiskCache
from buttress._cli import main
from buttress.testing import DemoServer, FakeClock
from tests.servers import free_port

ENVIRONMENT = {
    name: value for name, value in os.environ.items() if not name.startswith("BUTTRESS_")
}


def buttress(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m buttress ARGS`` in ``cwd`` (no stray ``.env``), with no BUTTRESS_* settings."""
    return subprocess.run(
        [sys.executable, "-m", "buttress", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env=ENVIRONMENT,
    )


def unique(name: str) -> str:
    """A key of its own for the session's demo API, whose counters every test shares."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


# --- requests ---------------------------------------------------------------------------------


def test_get_prints_status_headers_and_indented_json(demo: DemoServer, tmp_path: Path) -> None:
    result = buttress("get", f"{demo.url}/users/1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition("\n\n")
    status, *headers = head.splitlines()
    assert status == "HTTP/1.1 200 OK"
    assert "content-type: application/json" in headers
    assert body.startswith('{\n  "id": 1,\n  "name": "Ada Lovelace",')
    assert json.loads(body)["email"] == "ada.lovelace@example.com"
    assert result.stderr == ""  # nothing happened worth telling


def test_post_sends_headers_and_a_json_body(demo: DemoServer, tmp_path: Path) -> None:
    result = buttress(
        "post", f"{demo.url}/echo", "--json", '{"name": "Ada"}', "-H", "X-Trace: t-1", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    echoed = json.loads(result.stdout.partition("\n\n")[2])
    assert echoed["method"] == "POST"
    assert echoed["json"] == {"name": "Ada"}
    assert echoed["headers"]["x-trace"] == "t-1"


def test_head_prints_no_body_and_binary_is_not_dumped(demo: DemoServer, tmp_path: Path) -> None:
    head = buttress("head", f"{demo.url}/users/1", cwd=tmp_path)
    assert head.returncode == 0, head.stderr
    assert "\n\n" not in head.stdout
    download = buttress("get", f"{demo.url}/download?size=1000", cwd=tmp_path)
    assert download.stdout.endswith("\n\n[1,000 bytes of binary data not shown]\n")


async def _bodies(scope: dict, receive: object, send: Any) -> None:  # type: ignore[type-arg]
    """An ASGI app answering ``/<content type>`` with bytes a terminal must not receive raw."""
    if scope["type"] != "http":
        return
    kind = scope["path"].strip("/").replace("_", "/")
    body = {
        "text/plain": b"title\x1b]0;pwned\x07 clear\x1b[2J\r\nnext line\tend",
        "text/plain; charset=latin-1": b"csi \x9b2J and caf\xe9",
        "text/lines": b"line\n" * 400_000,
    }.get(kind, b"\x1b[2J\x89PNG" + bytes(range(1, 256)))
    headers = [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def bodies() -> Iterator[DemoServer]:
    with DemoServer(_bodies) as server:
        yield server


@pytest.mark.parametrize("kind", ["application/octet-stream", "image/png", "font/woff2"])
def test_a_body_that_is_not_text_is_replaced_by_its_size(
    bodies: DemoServer, tmp_path: Path, kind: str
) -> None:
    result = buttress("get", f"{bodies.url}/{kind.replace('/', '_')}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n\n[263 bytes of binary data not shown]\n")


def test_control_characters_a_server_sends_reach_the_terminal_escaped(
    bodies: DemoServer, tmp_path: Path
) -> None:
    result = buttress("get", f"{bodies.url}/text_plain", cwd=tmp_path)
    body = result.stdout.partition("\n\n")[2]
    assert body == "title\\x1b]0;pwned\\x07 clear\\x1b[2J\nnext line\tend\n"
    latin = buttress("get", f"{bodies.url}/text_plain; charset=latin-1", cwd=tmp_path)
    assert latin.stdout.partition("\n\n")[2] == "csi \\x9b2J and café\n"


def test_a_character_the_terminal_cannot_show_is_escaped_not_fatal(
    bodies: DemoServer, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "buttress", "get", f"{bodies.url}/text_plain; charset=latin-1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**ENVIRONMENT, "PYTHONIOENCODING": "ascii"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("csi \\x9b2J and caf\\xe9\n")


def test_a_reader_that_leaves_early_ends_the_command_quietly(
    bodies: DemoServer, tmp_path: Path
) -> None:
    # `buttress get URL | head -1`: the pipe closes while 2 MB are still to be written.
    command = [sys.executable, "-m", "buttress", "get", f"{bodies.url}/text_lines"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=ENVIRONMENT
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline() == b"HTTP/1.1 200 OK\n"
        process.stdout.close()
        errors = process.stderr.read()
        assert process.wait(timeout=60) == 141
    assert errors == b""


def test_a_header_that_is_not_ascii_is_a_usage_error(demo: DemoServer, tmp_path: Path) -> None:
    result = buttress("get", f"{demo.url}/users/1", "-H", "X-Name: café-s3cret", cwd=tmp_path)
    assert result.returncode == 2
    assert "must be ASCII" in result.stderr
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize(
    ("path", "status", "reason", "message"),
    [
        ("/users/999", 4, "404 Not Found", "user 999 not found"),
        ("/status/503", 5, "503 Service Unavailable", "demo error 503"),
    ],
)
def test_an_error_status_prints_the_response_then_one_line(
    demo: DemoServer, tmp_path: Path, path: str, status: int, reason: str, message: str
) -> None:
    result = buttress("get", f"{demo.url}{path}", "--retry", "0", cwd=tmp_path)
    assert result.returncode == status
    assert result.stdout.startswith(f"HTTP/1.1 {reason}\n")
    assert message in result.stdout  # the body, as the server sent it
    assert result.stderr == f"buttress: error: {reason} for GET {demo.url}{path}: {message}\n"


def test_a_failure_is_one_line_with_credentials_hidden(tmp_path: Path) -> None:
    port = free_port()
    result = buttress(
        "get",
        f"http://ada:url-password-42@127.0.0.1:{port}/users?api_key=query-key-42",
        "-H",
        "Authorization: Bearer header-token-42",
        "--retry",
        "0",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("buttress: error: could not connect for GET http://ada:[REDACTED]@")
    assert "-42" not in line


@pytest.mark.parametrize(
    ("args", "error", "secret"),
    [
        (
            ["-H", "Authorization Bearer tok-42"],
            "argument -H/--header: expected 'Name: value'",
            "42",
        ),
        (["--json", '{"password": pw-42}'], "argument --json: not valid JSON: Expecting", "42"),
        (["--rate-limit", "5"], "argument --rate-limit: expected N/S", None),
        (["--retry", "-1"], "argument --retry: expected a whole number", None),
    ],
)
def test_usage_errors_exit_2_without_repeating_secrets(
    capsys: pytest.CaptureFixture[str], args: list[str], error: str, secret: str | None
) -> None:
    assert main(["post", "http://127.0.0.1/", *args]) == 2
    err = capsys.readouterr().err
    assert error in err
    assert secret is None or secret not in err


# --- what the layers did, on stderr ----------------------------------------------------------


def test_retry_0_sends_once(demo: DemoServer, tmp_path: Path) -> None:
    url = f"{demo.url}/flaky?key={unique('once')}&failures=1"
    result = buttress("get", url, "--retry", "0", cwd=tmp_path)
    assert result.returncode == 5
    assert "retry" not in result.stderr


def test_retries_and_rate_limit_waits_are_told_on_stderr(
    demo: DemoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # One request a minute: the retry waits for the limiter's next slot, on a fake clock.
    url = f"{demo.url}/flaky?key={unique('told')}&failures=1"
    clock = FakeClock()
    status = main(["get", url, "--retry", "1", "--rate-limit", "1/60"], clock=clock)
    out, err = capsys.readouterr()
    assert status == 0
    assert json.loads(out.partition("\n\n")[2]) == {"ok": True, "attempts": 2}
    retry, wait = err.splitlines()  # the request's own log records are not repeated
    assert re.fullmatch(
        r"retry: retrying GET http://\S+/flaky\?key=\[REDACTED\]&failures=1 in 0\.\d\ds "
        r"\(attempt 1 failed: 503 Service Unavailable\)",
        retry,
    )
    waited = re.fullmatch(
        r"ratelimit: waited (\d+\.\d\d)s for a slot to send to 127\.0\.0\.1", wait
    )
    assert waited is not None
    # The first attempt took the only slot; the second went a minute later, less the backoff.
    assert 59.49 <= float(waited[1]) <= 60.0
    assert sum(clock.sleeps) == pytest.approx(60.0)


def test_a_wait_past_the_queue_timeout_prints_no_made_up_answer(
    demo: DemoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The retry would wait two minutes for a slot, past the limiter's 60 s queue timeout.
    url = f"{demo.url}/flaky?key={unique('refused')}&failures=1"
    status = main(["get", url, "--retry", "1", "--rate-limit", "1/120"], clock=FakeClock())
    out, err = capsys.readouterr()
    assert status == 1  # not 4: the 429 the limiter raises with was never sent by the server
    assert out == ""
    assert err.splitlines()[-1].startswith(
        "buttress: error: client-side rate limit reached: a wait of"
    )


# --- the disk cache ---------------------------------------------------------------------------


def test_cache_second_call_is_a_hit_shown_on_stderr(tmp_path: Path) -> None:
    with DemoServer() as server:  # its own, so /stats counts only this test's requests
        url = f"{server.url}/cacheable?key=hit"
        first = buttress("get", url, "--cache", str(tmp_path / "cache"), cwd=tmp_path)
        second = buttress("get", url, "--cache", str(tmp_path / "cache"), cwd=tmp_path)
        sent = httpx.get(f"{server.url}/stats").json()["/cacheable"]
    assert (first.returncode, second.returncode) == (0, 0)
    assert first.stderr == "cache: miss, stored\n"
    assert re.fullmatch(r"cache: hit, \d+s old: nothing sent\n", second.stderr)
    assert first.stdout.partition("\n\n")[2] == second.stdout.partition("\n\n")[2]
    assert sent == 1


def fill(folder: Path, *urls: str) -> None:
    """Store ``urls`` in the disk cache at ``folder``, as an earlier ``buttress get`` would."""
    with Client(cache=CacheConfig(backend=DiskCache(folder))) as client:
        for url in urls:
            client.get(url)


def test_cache_stats_invalidate_and_clear(demo: DemoServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fill(cache, *(f"{demo.url}/cacheable?key={unique(key)}" for key in "ab"))

    stats = buttress("cache", "stats", "--dir", str(cache), cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert re.fullmatch(
        rf"directory: {re.escape(str(cache))}\nentries: 2\non disk: [\d,]+ bytes\n", stats.stdout
    )

    other = buttress("cache", "invalidate", "/users/*", "--dir", str(cache), cwd=tmp_path)
    assert other.stdout == "removed 0 entries\n"
    matching = buttress("cache", "invalidate", "/cache*", "--dir", str(cache), cwd=tmp_path)
    assert matching.stdout == "removed 2 entries\n"

    fill(cache, f"{demo.url}/cacheable?key={unique('c')}")
    cleared = buttress("cache", "clear", "--dir", str(cache), cwd=tmp_path)
    assert cleared.stdout == "removed 1 entries\n"
    assert DiskCache(cache).size == 0


def test_cache_commands_leave_a_directory_that_is_no_cache_alone(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    result = buttress("cache", "clear", "--dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == f"buttress: error: {str(tmp_path)!r} is not a buttress disk cache\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cat.jpg", "photos"]


# --- the demo API and the console script ------------------------------------------------------


def test_demo_serves_until_interrupted(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "buttress", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=ENVIRONMENT,
    )
    watchdog = threading.Timer(60, process.kill)  # a hung start fails the test, not the run
    watchdog.start()
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        found = re.fullmatch(r"demo API on (http://127\.0\.0\.1:\d+) \(Ctrl-C to stop\)\n", banner)
        assert found, banner
        assert httpx.get(f"{found[1]}/users/2").json()["name"] == "Grace Hopper"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
    assert process.returncode == 0
    assert err == "stopped\n"


def test_the_buttress_console_script_runs_main() -> None:
    [script] = entry_points(group="console_scripts", name="buttress")
    assert script.load() is main
