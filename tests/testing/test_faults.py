"""The fault server itself: scripting, recording, refusing, releasing delays."""

from __future__ import annotations

import json
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
    assert json.loads(first.body) == {"a": 1}  # httpx's spacing differs between releases
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


def _raw_answer(server: FaultServer, path: str, size: int = 1 << 20) -> bytes:
    import socket

    with socket.create_connection((server.host, server.port), timeout=5) as raw:
        raw.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while len(received) < size and (data := raw.recv(65536)):
            received += data
    return received


def test_hostile_answers_on_the_wire(server: FaultServer) -> None:
    server.route("/headers", Fault.many_headers(3))
    server.route("/chunked", Fault.broken_chunked(b"-1"))
    server.route("/longer", Fault.body_longer_than_declared(declared=2, sent=5))
    server.route("/flood", Fault.informational_flood(3))
    server.route("/deep", Fault.deeply_nested_json(4))
    server.route("/number", Fault.huge_number(5))
    assert b"X-Header-0: 0\r\nX-Header-1: 1\r\nX-Header-2: 2\r\nContent-Length: 0\r\n" in (
        _raw_answer(server, "/headers")
    )
    assert _raw_answer(server, "/chunked").endswith(b"5\r\nhello\r\n-1\r\n\r\n")
    assert _raw_answer(server, "/longer").endswith(b"Content-Length: 2\r\n\r\nxxxxx")
    flood = _raw_answer(server, "/flood")
    assert flood.count(b"HTTP/1.1 103 Early Hints\r\n") == 3
    assert flood.endswith(b'{"ok": true, "method": "GET", "path": "/flood"}')
    assert _raw_answer(server, "/deep").endswith(b"\r\n\r\n[[[[]]]]")
    assert _raw_answer(server, "/number").endswith(b'\r\n\r\n{"n": 99999}')
    with pytest.raises(ValueError, match="more bytes"):
        Fault.body_longer_than_declared(declared=5, sent=5)


def test_redirects_and_dripped_headers(server: FaultServer) -> None:
    server.route("/loop", Fault.endless_redirects())
    server.route("/away", Fault.redirect("ftp://example.test/file", status=301))
    server.route("/drip", Fault.drip_headers(0.001))
    with httpx.Client(base_url=server.url) as client:
        first = client.get("/loop")
        second = client.get(first.headers["location"])
        assert (first.status_code, first.headers["location"]) == (302, "/loop?hop=1")
        assert second.headers["location"] == "/loop?hop=2"
        away = client.get("/away")
        assert (away.status_code, away.headers["location"]) == (301, "ftp://example.test/file")
        assert client.get("/drip").json()["path"] == "/drip"


def test_a_held_answer_ends_when_the_client_hangs_up() -> None:
    import socket

    with FaultServer(max_delay=30) as server:
        server.route("/held", Fault.drip(2, interval=30))  # the head and a byte, then 30 s
        with socket.create_connection((server.host, server.port), timeout=10) as raw:
            raw.sendall(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while not received.endswith(b"\r\n\r\nx"):  # the server is in its pause now
                received += raw.recv(1024)
        # The pause would last 30 s; the server notices the hang-up at its next look.
        assert server.wait_open_connections(0, timeout=10)


def test_serves_every_fault_over_tls() -> None:
    import ssl

    import trustme

    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    with FaultServer(ssl_context=context) as server:
        server.route("/cut", Fault.truncated(declared=10, sent=3))
        assert server.url.startswith("https://127.0.0.1:")
        with httpx.Client(base_url=server.url, verify=trusting) as client:
            assert client.get("/x").json()["path"] == "/x"
            with pytest.raises(httpx.RemoteProtocolError):
                client.get("/cut")
