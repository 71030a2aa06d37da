"""The logging layer: levels, request ids in every record, slow responses, bodies, JSON."""

from __future__ import annotations

import json
import linecache
import logging
from collections.abc import Callable
from itertools import count

import httpx
import pytest

import buttress
import buttress.policies.logging
from buttress import JSONFormatter, LoggingConfig, LoggingMiddleware
from buttress._redact import Redactor
from buttress.testing import DemoServer, FakeClock
from buttress.transports import AttemptTransport, LoggingTransport
from tests.conftest import Either

pytestmark = pytest.mark.anyio
ALSO_ON_AIOHTTP = True  # the layer suite runs over the aiohttp backend too

_keys = count()  # the demo API's /flaky counts failures per key, for the whole session


def records(caplog: pytest.LogCaptureFixture, name: str = "buttress") -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(name)]


async def test_info_has_method_url_status_and_duration(
    client: Either, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="buttress")
    response = await client.get("/users/1", params={"token": "t0k3n-value"})
    [record] = records(caplog)
    assert record.levelno == logging.INFO
    assert record.name == "buttress.request"
    message = record.getMessage()
    assert message.startswith("GET http://127.0.0.1:")
    assert "/users/1?token=[REDACTED] -> 200 OK in " in message
    assert record.status_code == 200  # type: ignore[attr-defined]
    assert record.duration_ms >= 0  # type: ignore[attr-defined]
    assert record.request_id == response.extensions["buttress.request_id"]  # type: ignore[attr-defined]
    assert "t0k3n-value" not in message


async def test_records_name_the_code_that_made_them(
    client: Either, caplog: pytest.LogCaptureFixture
) -> None:
    # The records are made without Logger.log's search of the stack: they must still
    # say where they come from as that search would.
    caplog.set_level(logging.INFO, logger="buttress")
    await client.get("/users/1")
    with pytest.raises(buttress.ConnectionError):
        await client.get("http://127.0.0.1:9/", retry=False)
    finished, failed = records(caplog)
    for record, function in ((finished, "finished"), (failed, "failed")):
        assert record.funcName == function
        assert record.pathname == buttress.policies.logging.__file__
        assert linecache.getline(record.pathname, record.lineno).strip().endswith("log(")


async def test_debug_has_redacted_details_and_the_request_id_everywhere(
    client: Either, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")
    response = await client.get("/echo", headers={"Authorization": "Bearer abc-secret"})
    ours = records(caplog)
    assert {r.name for r in ours} == {"buttress.request", "buttress.attempt"}
    request_id = response.extensions["buttress.request_id"]
    assert all(r.request_id == request_id for r in ours)  # type: ignore[attr-defined]
    sending = next(r for r in ours if r.getMessage().endswith("sending"))
    assert sending.headers["authorization"] == "[REDACTED]"  # type: ignore[attr-defined]
    done = next(r for r in ours if "->" in r.getMessage())
    assert "content-type" in done.response_headers  # type: ignore[attr-defined]
    assert not hasattr(done, "response_body")  # bodies are opt-in


async def test_request_id_of_the_caller_is_kept(client: Either) -> None:
    response = await client.get("/echo", headers={"X-Request-ID": "mine-123"})
    assert response.json()["headers"]["x-request-id"] == "mine-123"


def loud(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """(logger, level) of each buttress record at INFO and above, in order."""
    return [(r.name, r.levelname) for r in records(caplog) if r.levelno >= logging.INFO]


RETRIED = ("buttress.retry", "WARNING")


async def test_one_warning_per_retry(
    make_client: Callable[..., Either], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")
    client = make_client(base_url=demo.url)
    response = await client.get("/flaky", params={"key": f"log-{next(_keys)}", "failures": 2})
    assert response.json()["attempts"] == 3
    assert loud(caplog) == [RETRIED, RETRIED, ("buttress.request", "INFO")]
    first, second, done = [r for r in records(caplog) if r.levelno >= logging.INFO]
    request_id = response.extensions["buttress.request_id"]
    assert [r.request_id for r in (first, second, done)] == [request_id] * 3  # type: ignore[attr-defined]
    assert [first.attempt, second.attempt] == [1, 2]  # type: ignore[attr-defined]
    assert first.getMessage().startswith(f"retrying GET {demo.url}/flaky?key=")
    assert "(attempt 1 failed: 503 Service Unavailable)" in first.getMessage()
    assert done.attempts == 3  # type: ignore[attr-defined]
    attempts = [r.attempt for r in records(caplog, "buttress.attempt")]  # type: ignore[attr-defined]
    assert attempts == [1, 2, 3]  # each attempt at DEBUG


async def test_a_failure_raised_to_the_caller_is_info_not_error(
    make_client: Callable[..., Either], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller gets the exception and decides how bad it is; we log it once, at INFO."""
    caplog.set_level(logging.DEBUG, logger="buttress")
    client = make_client(base_url=demo.url)
    with pytest.raises(buttress.ServerError):
        await client.get("/status/500")
    assert loud(caplog) == [RETRIED, RETRIED, ("buttress.request", "INFO")]
    assert "/status/500 -> 500 Internal Server Error in " in records(caplog)[-1].getMessage()

    caplog.clear()
    down = make_client(base_url="http://127.0.0.1:1")
    with pytest.raises(buttress.ConnectionError):
        await down.get("/users")
    assert loud(caplog) == [RETRIED, RETRIED, ("buttress.request", "INFO")]
    record = records(caplog)[-1]
    assert "failed after" in record.getMessage()
    assert record.error.startswith("ConnectError")  # type: ignore[attr-defined]

    caplog.clear()  # a body cut off: the body guard's notes stay at DEBUG
    with pytest.raises(buttress.IncompleteResponseError):
        await client.get("/truncated", params={"size": 1000, "send": 400})
    assert loud(caplog) == [RETRIED, RETRIED, ("buttress.request", "INFO")]


async def test_logging_middleware_and_the_layer_write_one_record(
    make_client: Callable[..., Either], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="buttress")
    client = make_client(base_url=demo.url, middleware=[LoggingMiddleware()])
    response = await client.get("/users/1")
    [record] = records(caplog)
    assert record.name == "buttress.middleware"
    assert record.request_id == response.extensions["buttress.request_id"]  # type: ignore[attr-defined]
    assert record.attempts == 1  # type: ignore[attr-defined]

    caplog.clear()
    with pytest.raises(buttress.NotFoundError):
        await client.get("/status/404")
    assert loud(caplog) == [("buttress.middleware", "INFO")]

    caplog.clear()  # the same request sent by a client without the middleware: the layer logs it
    request = client.client.build_request("GET", "/users/2")
    await client.send(request)
    await make_client(base_url=demo.url).send(request)
    assert loud(caplog) == [("buttress.middleware", "INFO"), ("buttress.request", "INFO")]

    caplog.clear()  # a middleware that writes nothing leaves the record to the layer
    off = LoggingMiddleware(config=LoggingConfig(enabled=False))
    await make_client(base_url=demo.url, middleware=[off]).get("/users/3")
    assert loud(caplog) == [("buttress.request", "INFO")]


def _clock_advancing(clock: FakeClock, seconds: float) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        clock.advance(seconds)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(("seconds", "level"), [(0.5, logging.INFO), (3.0, logging.WARNING)])
def test_slow_responses_warn_past_the_threshold(
    seconds: float, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="buttress")
    clock = FakeClock()
    transport = LoggingTransport(
        _clock_advancing(clock, seconds), LoggingConfig(slow_threshold=2.0), clock=clock
    )
    with httpx.Client(transport=transport) as client:
        client.get("https://api.example.com/report")
    [record] = records(caplog)
    assert record.levelno == level
    assert record.duration_ms == seconds * 1000  # type: ignore[attr-defined]
    assert record.getMessage().startswith("slow response: ") == (level == logging.WARNING)


def test_resends_are_logged_at_debug_with_the_attempt_number(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A retry layer re-sends the same request; the attempt layer below sees each one.

    The retry layer warns about the retry; the attempt layer adds only DEBUG detail.
    """

    class SendTwice(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner = inner

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            self.inner.handle_request(request).close()
            return self.inner.handle_request(request)

    caplog.set_level(logging.DEBUG, logger="buttress")
    network = httpx.MockTransport(lambda r: httpx.Response(200))
    transport = LoggingTransport(SendTwice(AttemptTransport(network)))
    with httpx.Client(transport=transport) as client:
        response = client.get("https://api.example.com/x")
    first, second = records(caplog, "buttress.attempt")
    assert (first.levelno, second.levelno) == (logging.DEBUG, logging.DEBUG)
    assert second.getMessage() == "GET https://api.example.com/x attempt 2"
    assert second.attempt == 2  # type: ignore[attr-defined]
    [info] = loud(caplog)
    assert info == ("buttress.request", "INFO")
    assert records(caplog)[-1].attempts == 2  # type: ignore[attr-defined]
    assert "buttress.attempts" not in response.extensions  # the retry layer's to write


async def test_bodies_are_opt_in_and_cut_at_the_limit(
    make_client: Callable[..., Either], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")
    client = make_client(base_url=demo.url, logging=LoggingConfig(log_bodies=True, body_limit=10))
    await client.post("/users", json={"name": "Jane Doe", "email": "jane@example.com"})
    sending = next(r for r in records(caplog) if r.getMessage().endswith("sending"))
    assert sending.body == '{"name":"J... (46 bytes)'  # type: ignore[attr-defined]
    done = next(r for r in records(caplog) if "->" in r.getMessage())
    assert done.response_body.startswith('{"id": 101')  # type: ignore[attr-defined]
    assert done.response_body.endswith("bytes)")  # type: ignore[attr-defined]


async def test_streamed_responses_are_logged_with_what_the_caller_read(
    make_client: Callable[..., Either], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Not read for logging: the record waits for the body the caller reads (or closes).
    # tests/transports/test_streamed_bodies.py has the bodies that never end.
    caplog.set_level(logging.DEBUG, logger="buttress")
    client = make_client(base_url=demo.url, logging=LoggingConfig(log_bodies=True, body_limit=10))
    body = await client.stream_bytes("GET", "/download", params={"size": 1000})
    assert len(body) == 1000
    [done] = [r for r in records(caplog) if "->" in r.getMessage()]
    assert done.response_body == f"{body[:10].decode()}... (1000 bytes)"  # type: ignore[attr-defined]


async def test_logging_false_keeps_request_ids_but_writes_no_records(
    make_client: Callable[..., Either], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")
    client = make_client(base_url=demo.url, logging=False)
    response = await client.get("/echo")
    assert "x-request-id" in response.json()["headers"]
    assert records(caplog) == []


async def test_nothing_is_formatted_when_the_level_is_disabled(
    client: Either, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = Redactor.url

    def counting(self: Redactor, url: httpx.URL | str) -> str:
        calls.append(str(url))
        return original(self, url)

    monkeypatch.setattr(Redactor, "url", counting)
    caplog.set_level(logging.ERROR, logger="buttress")
    await client.get("/users/1")
    assert calls == []
    caplog.set_level(logging.INFO, logger="buttress")
    await client.get("/users/1")
    assert calls


def test_json_formatter_carries_extra_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="buttress")
    transport = LoggingTransport(httpx.MockTransport(lambda r: httpx.Response(201)))
    with httpx.Client(transport=transport) as client:
        client.post(
            "https://api.example.com/users?api_key=k-123456", headers={"X-Request-ID": "r1"}
        )
    [record] = records(caplog)
    line = JSONFormatter().format(record)
    data = json.loads(line)
    assert data["level"] == "INFO"
    assert data["logger"] == "buttress.request"
    assert data["request_id"] == "r1"
    assert data["status_code"] == 201
    assert data["url"] == "https://api.example.com/users?api_key=[REDACTED]"
    assert "k-123456" not in line


def test_json_formatter_includes_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("buttress", logging.ERROR, "", 0, "failed", (), sys.exc_info())
    data = json.loads(JSONFormatter().format(record))
    assert "ValueError: boom" in data["exception"]


def test_extra_redaction_names_and_patterns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")
    config = LoggingConfig(
        redact_headers=("X-Tenant",), redact_params=("tenant",), redact_patterns=(r"acct-\d+",)
    )
    transport = LoggingTransport(httpx.MockTransport(lambda r: httpx.Response(200)), config)
    with httpx.Client(transport=transport) as client:
        client.get(
            "https://api.example.com/accounts/acct-991?tenant=blue",
            headers={"X-Tenant": "blue-tenant", "X-Trace-Note": "for acct-42"},
        )
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in records(caplog))
    for secret in ("acct-991", "acct-42", "blue-tenant", "tenant=blue"):
        assert secret not in text


def test_deprecated_endpoints_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="buttress")
    deprecated = {"Deprecation": "@1688169599", "Sunset": "Sun, 30 Jun 2024 23:59:59 GMT"}
    network = httpx.MockTransport(lambda r: httpx.Response(200, headers=deprecated))
    with httpx.Client(transport=LoggingTransport(network)) as client:
        client.get("https://api.example.com/v1/users")
        client.get("https://api.example.com/v1/users")
    first, second = records(caplog)
    assert first.levelno == logging.WARNING
    assert first.getMessage().startswith(
        "deprecated endpoint (Deprecation: @1688169599; Sunset: Sun, 30 Jun 2024 23:59:59 GMT): "
    )
    assert second.levelno == logging.INFO  # once per endpoint, not on every call


def test_a_deprecation_is_not_used_up_while_nothing_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="buttress")
    deprecated = {"Deprecation": "@1688169599"}
    network = httpx.MockTransport(lambda r: httpx.Response(200, headers=deprecated))
    with httpx.Client(transport=LoggingTransport(network)) as client:
        client.get("https://api.example.com/v1/users")
        assert not records(caplog)
        caplog.set_level(logging.WARNING, logger="buttress")
        client.get("https://api.example.com/v1/users")
    (record,) = records(caplog)
    assert record.getMessage().startswith("deprecated endpoint (Deprecation: @1688169599): ")


async def test_the_layer_refuses_a_network_of_the_other_kind() -> None:
    sync_only = LoggingTransport(httpx.HTTPTransport())
    async_only = LoggingTransport(httpx.AsyncHTTPTransport())
    request = httpx.Request("GET", "https://api.example.com/x")
    with pytest.raises(buttress.ConfigurationError, match="async-only"):
        async_only.handle_request(request)
    with pytest.raises(buttress.ConfigurationError, match="sync-only"):
        await sync_only.handle_async_request(request)


async def test_a_failure_is_logged_once_with_its_request_id_in_both_clients(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="buttress")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    transport = LoggingTransport(httpx.MockTransport(refuse))
    request = httpx.Request("GET", "https://api.example.com/x?token=t0k3n")
    with pytest.raises(httpx.ConnectError):
        transport.handle_request(request)
    with pytest.raises(httpx.ConnectError):
        await transport.handle_async_request(request)
    first, second = records(caplog)
    for record in (first, second):
        assert record.levelno == logging.INFO
        message = record.getMessage()
        assert message.startswith("GET https://api.example.com/x?token=[REDACTED] failed")
        assert record.error == "ConnectError: refused"  # type: ignore[attr-defined]
    # the same request sent again keeps its trace, and its request id
    assert first.request_id == second.request_id  # type: ignore[attr-defined]
