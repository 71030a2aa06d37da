"""The fault server itself: scripting, recording, refusing, releasing delays."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

import buttress
from buttress.testing import Fault, FaultServer
from tests.conftest import Either


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


def _raw_exchange(server: FaultServer, request: bytes) -> bytes:
    """Everything the server writes back to ``request`` until it closes or goes quiet."""
    import socket

    with socket.create_connection((server.host, server.port), timeout=5) as raw:
        raw.sendall(request)
        received = b""
        try:
            while data := raw.recv(65536):
                received += data
        except ConnectionResetError:
            pass
    return received


def test_reset_mid_body_sends_half_the_body_then_resets(server: FaultServer) -> None:
    size = 1 << 20  # more than the 64 KiB pattern the body is cut from
    server.route("/big", Fault.reset_mid_body(size=size))
    answer = _raw_exchange(server, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert f"Content-Length: {size}".encode() in head
    assert len(body) == size // 2


async def _read_raw(either: Either, path: str, into: bytearray) -> None:
    """Stream ``path``'s body as it arrives into ``into``, with either kind of client."""
    if isinstance(either.client, httpx.AsyncClient):
        async with either.client.stream("GET", path) as response:
            async for chunk in response.aiter_raw():
                into += chunk
    else:
        with either.client.stream("GET", path) as response:
            for chunk in response.iter_raw():
                into += chunk


@pytest.mark.anyio
async def test_a_client_reads_half_the_body_before_the_reset(
    server: FaultServer, make_client: Callable[..., Either]
) -> None:
    server.route("/big", Fault.reset_mid_body(size=1 << 20))
    either = make_client(base_url=server.url, retry=False)
    received = bytearray()
    with pytest.raises(buttress.ConnectionError):
        await _read_raw(either, "/big", received)
    assert len(received) == (1 << 20) // 2


def test_no_content_length_with_a_204(server: FaultServer) -> None:
    server.route("/gone", Fault.respond(204))
    server.route("/same", Fault.respond(304, headers={"ETag": '"v1"'}))
    for path in ("/gone", "/same"):
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        assert b"content-length" not in _raw_exchange(server, request).lower()
    with httpx.Client(base_url=server.url) as client:
        gone = client.delete("/gone")
        assert (gone.status_code, gone.content, "content-length" in gone.headers) == (
            204,
            b"",
            False,
        )
        assert client.get("/x").status_code == 200  # the connection serves on


def test_a_content_length_given_is_the_only_one_sent(server: FaultServer) -> None:
    server.route("/framed", Fault.respond(200, headers={"Content-Length": "3"}, content=b"abc"))
    server.route("/short", Fault.respond(200, headers={"content-length": "3"}, content=b"abcdef"))
    request = b"GET /short HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    head = _raw_exchange(server, request).partition(b"\r\n\r\n")[0].lower()
    assert head.count(b"content-length") == 1
    assert b"content-length: 3" in head
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/framed").content == b"abc"
        assert client.get("/short", headers={"Connection": "close"}).content == b"abc"


def test_head_gets_no_body_from_a_huge_body_or_a_drip(server: FaultServer) -> None:
    server.route("/huge", Fault.huge_body(1 << 20))
    server.route("/drip", Fault.drip(4, interval=0.001))
    request = b"HEAD /huge HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert _raw_exchange(server, request).endswith(b"Content-Length: 1048576\r\n\r\n")
    with httpx.Client(base_url=server.url) as client:
        for path in ("/huge", "/drip"):
            # A body after a HEAD answer would be read as the next answer on the connection.
            assert client.head(path).content == b""
            assert client.get("/x").json()["path"] == "/x"
        assert server.connections == 2  # the raw exchange's, and the client's only one


@pytest.mark.anyio
async def test_endless_redirects_keep_the_rest_of_the_query(
    server: FaultServer, make_client: Callable[..., Either]
) -> None:
    server.route("/loop", Fault.endless_redirects())
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/loop?hop=1&x=2").headers["location"] == "/loop?hop=2&x=2"
        assert client.get("/loop?x=a%20b").headers["location"] == "/loop?x=a%20b&hop=1"
        assert client.get("/loop?hop=many").headers["location"] == "/loop?hop=1"
    server.clear()
    either = make_client(base_url=server.url, retry=False)
    with pytest.raises(buttress.TooManyRedirectsError):
        await either.get("/loop?hop=7&x=2")
    queries = [r.query for r in server.requests]
    assert queries == [f"hop={hop}&x=2" for hop in range(7, 7 + len(queries))]
