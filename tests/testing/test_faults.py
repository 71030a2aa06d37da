"""The fault server itself: scripting, recording, refusing, releasing delays."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from buttress.testing import Fault, FaultServer


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def test_default_answer_is_json_naming_the_request(server: FaultServer) -> None:
    response = httpx.get(server.url + "/anything")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"ok": True, "method": "GET", "path": "/anything"}


def test_records_method_path_query_headers_and_body(server: FaultServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        client.post("/orders?dry=1", json={"a": 1}, headers={"Idempotency-Key": "k1"})
        client.put("/orders/1", content=iter([b"chunk-", b"ed"]))  # a chunked request body
    first, second = server.requests
    assert (first.method, first.path, first.query) == ("POST", "/orders", "dry=1")
    assert first.headers["idempotency-key"] == "k1"
    assert first.body == b'{"a":1}'
    assert (second.method, second.body) == ("PUT", b"chunk-ed")
    assert first.connection == second.connection == 1  # keep-alive
    assert server.count("POST") == 1
    assert server.count(path="/orders/1") == 1
    server.clear()
    assert server.requests == []


def test_path_queue_then_queue_then_route_then_default(server: FaultServer) -> None:
    server.route("/a", Fault.respond(418))
    server.enqueue(Fault.respond(201))
    server.enqueue(Fault.respond(202), path="/a")
    with httpx.Client(base_url=server.url) as client:
        statuses = [client.get(path).status_code for path in ("/a", "/a", "/a", "/b")]
    assert statuses == [202, 201, 418, 200]
    assert [r.fault.status for r in server.requests if r.fault] == statuses


def test_head_and_no_content_answers_have_no_body(server: FaultServer) -> None:
    server.route("/empty", Fault.respond(204))
    with httpx.Client(base_url=server.url) as client:
        assert client.head("/x").content == b""
        assert int(client.head("/x").headers["content-length"]) > 0
        assert client.get("/empty").content == b""
        assert client.get("/x").status_code == 200  # the connection still works


def test_release_ends_a_held_answer_without_waiting(server: FaultServer) -> None:
    server.route("/held", Fault.delay_first_byte())  # held until released (or max_delay)
    answered = threading.Event()

    def call() -> None:
        httpx.get(server.url + "/held", timeout=10)
        answered.set()

    caller = threading.Thread(target=call)
    caller.start()
    server.release()
    caller.join(timeout=10)
    assert answered.is_set()


def test_refused_url_and_refusing_refuse(server: FaultServer) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.refused_url)
    with server.refusing(), pytest.raises(httpx.ConnectError):
        httpx.get(server.url)
    assert httpx.get(server.url).status_code == 200


def test_connections_are_counted_and_closed(server: FaultServer) -> None:
    server.enqueue(Fault.close())
    with httpx.Client(base_url=server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/x")
        client.get("/x")
        assert server.connections == 2
    assert server.wait_idle()
    assert server.open_connections == 0


def test_stop_releases_a_hold_and_is_idempotent() -> None:
    server = FaultServer(max_delay=30).start()
    server.route("/held", Fault.delay_first_byte())
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            httpx.get(server.url + "/held", timeout=10)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    server.stop()
    server.stop()
    caller.join(timeout=10)
    assert not caller.is_alive()
    assert repr(server).startswith("FaultServer(url='http://127.0.0.1:")


def test_invalid_faults_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Fault.ok().after(-1)
    with pytest.raises(ValueError, match="fewer bytes"):
        Fault.truncated(declared=10, sent=10)


def test_rate_limited_sends_both_header_styles() -> None:
    headers = dict(Fault.rate_limited(retry_after=2.0, limit=5, window=10).headers)
    assert headers["Retry-After"] == "2"
    assert headers["RateLimit"] == '"default";r=0;t=2'
    assert headers["RateLimit-Policy"] == '"default";q=5;w=10'


def test_a_request_the_server_cannot_read_drops_the_connection(server: FaultServer) -> None:
    import socket

    with socket.create_connection((server.host, server.port)) as raw:
        raw.sendall(b"NONSENSE\r\n\r\n")
        assert raw.recv(100) == b""
    assert server.requests == []


def test_release_waiting_ends_only_the_waits_in_progress() -> None:
    with FaultServer(max_delay=0.2) as server:
        server.release_waiting()  # nothing waits yet: later delays still wait as scripted
        server.route("/held", Fault.delay_first_byte())
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(server.url + "/held", timeout=0.05)
