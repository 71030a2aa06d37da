"""The demo API behaves as its table says (the other tests rely on it)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from buttress.testing import DemoAPI, DemoServer, create_app


@pytest.fixture(scope="module")
def http(demo: DemoServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo.url) as client:
        yield client


def test_offset_pagination(http: httpx.Client) -> None:
    page = http.get("/users", params={"offset": 95, "limit": 10}).json()
    assert [u["id"] for u in page["data"]] == [96, 97, 98, 99, 100]
    assert page["total"] == 100


def test_page_number_pagination(http: httpx.Client) -> None:
    page = http.get("/users/pages", params={"page": 3, "per_page": 20}).json()
    assert page["results"][0]["id"] == 41
    assert page["total_pages"] == 5


def test_cursor_pagination_walks_to_the_end(http: httpx.Client) -> None:
    ids: list[int] = []
    cursor = None
    while True:
        page = http.get(
            "/users/cursor", params={"limit": 30, **({"cursor": cursor} if cursor else {})}
        )
        body = page.json()
        ids += [u["id"] for u in body["items"]]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert ids == list(range(1, 101))
    assert http.get("/users/cursor", params={"cursor": "!!"}).status_code == 400


def test_link_header_pagination(http: httpx.Client) -> None:
    response = http.get("/users/linked", params={"page": 2, "per_page": 50})
    assert 'rel="prev"' in response.headers["link"]
    assert 'rel="next"' not in response.headers["link"]
    assert response.json()[0]["id"] == 51


def test_users_crud_and_errors(http: httpx.Client) -> None:
    assert http.post("/users", content=b"{nope").status_code == 400
    assert http.post("/users", json={"email": "x"}).status_code == 422
    assert http.put("/users/1", content=b"{nope").status_code == 400
    assert http.get("/users/0").status_code == 404
    assert http.request("POST", "/users/1").status_code == 405
    not_allowed = http.request("DELETE", "/users")
    assert not_allowed.status_code == 405
    assert "GET" in not_allowed.headers["allow"]
    assert http.get("/nowhere").status_code == 404


def test_flaky_fails_then_succeeds(http: httpx.Client) -> None:
    params: dict[str, Any] = {"key": "demo-flaky", "failures": 2, "status": 502, "retry_after": "1"}
    first = http.get("/flaky", params=params)
    assert first.status_code == 502
    assert first.headers["retry-after"] == "1"
    assert http.get("/flaky", params=params).status_code == 502
    assert http.get("/flaky", params=params).json() == {"ok": True, "attempts": 3}


def test_rate_limited_sends_headers_then_429(http: httpx.Client) -> None:
    params: dict[str, Any] = {"key": "demo-rl", "limit": 2, "window": 60}
    ok = http.get("/rate-limited", params=params)
    assert ok.headers["x-ratelimit-remaining"] == "1"
    assert ok.headers["ratelimit-policy"] == '"default";q=2;w=60'
    http.get("/rate-limited", params=params)
    limited = http.get("/rate-limited", params=params)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert limited.headers["x-ratelimit-remaining"] == "0"


def test_cacheable_revalidates(http: httpx.Client) -> None:
    first = http.get("/cacheable", params={"key": "k", "max_age": 5})
    assert first.headers["cache-control"] == "max-age=5"
    etag = first.headers["etag"]
    again = http.get("/cacheable", params={"key": "k"}, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


def test_events_stream_and_resume(http: httpx.Client) -> None:
    body = http.get("/events", params={"count": 3}).text
    assert body.count("event: tick") == 3
    resumed = http.get("/events", params={"count": 3}, headers={"Last-Event-ID": "2"}).text
    assert "id: 3" in resumed
    assert "id: 2" not in resumed


def test_download_and_head(http: httpx.Client) -> None:
    assert len(http.get("/download", params={"size": 70_000}).content) == 70_000
    head = http.head("/download", params={"size": 5})
    assert head.headers["content-length"] == "5"


def test_echo_status_slow_and_stats(http: httpx.Client) -> None:
    assert http.get("/status/204").status_code == 204
    assert http.get("/status/200", params={"retry_after": "3"}).headers["retry-after"] == "3"
    assert http.get("/slow", params={"delay": 0}).json() == {"slept": 0.0}
    assert http.post("/echo", content=b"{bad").json()["json"] is None
    assert http.get("/stats").json()["/echo"] >= 1
    assert http.get("/users", params={"limit": "x"}).json()["limit"] == 10
    assert http.get("/slow", params={"delay": "x", "_": 1}, timeout=5).status_code == 200


def test_each_app_has_its_own_state() -> None:
    assert create_app().hits is not DemoAPI().hits


def test_lifespan_protocol_is_answered() -> None:
    sent: list[str] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])

    asyncio.run(DemoAPI()({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_server_runs_any_asgi_app() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})

    with DemoServer(app) as server:
        assert server.port > 0
        assert httpx.get(server.url).text == "hi"


def test_the_servers_port_is_its_own_before_its_thread_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another process's server may bind the same port (both with SO_REUSEADDR) while the
    # demo server's thread is still starting; the one that listens first keeps the port.
    import uvicorn

    run = uvicorn.Server.run
    intruders: list[OSError | None] = []

    def run_after_an_intruder(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        port = sockets[0].getsockname()[1]
        with socket.socket() as intruder:
            intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                intruder.bind(("127.0.0.1", port))
                intruder.listen()
            except OSError as exc:
                intruders.append(exc)
            else:
                intruders.append(None)
            run(server, sockets=sockets)

    monkeypatch.setattr(uvicorn.Server, "run", run_after_an_intruder)
    with DemoServer() as server:
        assert httpx.get(f"{server.url}/users/1").status_code == 200
    assert len(intruders) == 1
    assert isinstance(intruders[0], OSError)  # the port was already listening
