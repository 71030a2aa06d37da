"""The facade against every fault the fault server can stage, sync and async.

Each call must end in a response or in an exception from buttress's tree (and,
where the failure is known, in the exact class); a failed POST must have reached
the server once. Timeouts are short and only the timeout cases depend on them:
the server holds those answers until it is released, so no test guesses how
slow is slow enough.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

import buttress
from buttress import TimeoutConfig
from buttress.testing import Fault, FaultServer
from tests.conftest import Either

from .conftest import assert_buttress_outcome

pytestmark = pytest.mark.anyio

QUICK = TimeoutConfig(connect=0.2, read=0.2, write=1, pool=1)
PATIENT = TimeoutConfig(connect=5, read=5, write=5, pool=5)


@dataclass(frozen=True)
class Case:
    name: str
    fault: Fault
    expected: type[BaseException] | int  # an exception class, or the status of a success
    timeout: TimeoutConfig = PATIENT


CASES = [
    Case("ok", Fault.ok({"id": 1}), 200),
    Case("service-unavailable", Fault.service_unavailable(retry_after=2), buttress.ServerError),
    Case("rate-limited", Fault.rate_limited(retry_after=3), buttress.RateLimitError),
    Case("close-without-answer", Fault.close(), buttress.ConnectionError),
    Case("reset-before-headers", Fault.reset_before_headers(), buttress.ConnectionError),
    Case("reset-mid-body", Fault.reset_mid_body(), buttress.ConnectionError),
    Case("delay-first-byte", Fault.delay_first_byte(), buttress.ReadTimeoutError, QUICK),
    Case("short-delay", Fault.delay_first_byte(0.01), 200),
    Case("drip-alive", Fault.drip(16, chunk=4, interval=0.01), 200),
    Case("drip-stalled", Fault.drip(16, interval=5), buttress.ReadTimeoutError, QUICK),
    Case("truncated", Fault.truncated(declared=100, sent=10), buttress.ConnectionError),
    Case("broken-chunked", Fault.broken_chunked(), buttress.ConnectionError),
    Case("garbage-status", Fault.garbage_status(), buttress.ConnectionError),
    Case("oversized-headers", Fault.oversized_headers(), buttress.ConnectionError),
    Case("huge-body", Fault.huge_body(4 << 20), 200),
    Case("bad-gzip", Fault.bad_encoding(), buttress.DecodingError),
]


async def _outcome(call: Callable[[], object]) -> object:
    try:
        return await call()  # type: ignore[misc]
    except BaseException as exc:
        return exc


def _check(case: Case, outcome: object) -> None:
    assert_buttress_outcome(outcome)
    if isinstance(case.expected, int):
        assert isinstance(outcome, buttress.Response), outcome
        assert outcome.status_code == case.expected
    else:
        assert isinstance(outcome, case.expected), repr(outcome)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_get_ends_in_success_or_a_buttress_error(
    case: Case, make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    fault_server.route("/fault", case.fault)
    client = make_client(base_url=fault_server.url, timeout=case.timeout)
    outcome = await _outcome(lambda: client.get("/fault"))
    _check(case, outcome)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_streamed_body_ends_in_success_or_a_buttress_error(
    case: Case, make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    fault_server.route("/fault", case.fault)
    client = make_client(base_url=fault_server.url, timeout=case.timeout)
    outcome = await _outcome(lambda: client.stream_bytes("GET", "/fault"))
    if isinstance(case.expected, int):
        assert isinstance(outcome, bytes), repr(outcome)
    else:
        assert isinstance(outcome, case.expected), repr(outcome)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_a_failed_post_reached_the_server_once(
    case: Case, make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    fault_server.route("/orders", case.fault)
    client = make_client(base_url=fault_server.url, timeout=case.timeout)
    outcome = await _outcome(lambda: client.post("/orders", json={"item": "tea", "qty": 2}))
    _check(case, outcome)
    received = [r for r in fault_server.requests if r.path == "/orders"]
    assert len(received) == 1
    assert received[0].method == "POST"
    assert received[0].body == b'{"item":"tea","qty":2}'


async def test_status_faults_carry_retry_after(
    make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    fault_server.enqueue(Fault.service_unavailable(retry_after=2), Fault.rate_limited(7))
    client = make_client(base_url=fault_server.url, retry=False)
    with pytest.raises(buttress.ServerError) as unavailable:
        await client.get("/x")
    with pytest.raises(buttress.RateLimitError) as limited:
        await client.get("/x")
    assert unavailable.value.retry_after == 2.0
    assert limited.value.retry_after == 7.0
    assert limited.value.headers["x-ratelimit-remaining"] == "0"


async def test_refused_connection_is_a_connection_error(
    make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    client = make_client(base_url=fault_server.refused_url)
    with pytest.raises(buttress.ConnectionError) as caught:
        await client.get("/x")
    assert isinstance(caught.value, httpx.ConnectError)


async def test_stopped_listener_refuses_new_connections(
    make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    client = make_client(base_url=fault_server.url)
    with fault_server.refusing(), pytest.raises(buttress.ConnectionError):
        await client.get("/x")
    assert (await client.get("/x")).status_code == 200


async def test_handshake_that_never_completes_is_a_connect_timeout(
    make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    client = make_client(base_url=fault_server.blackhole_url, timeout=QUICK)
    with pytest.raises(buttress.ConnectTimeoutError):
        await client.get("/x")


# Servers that keep sending, each byte in time for the read timeout, but too slowly for
# the total deadline (0.5 s). The timing bound is half of what the server's answer takes:
# a busy 2-core machine delays the cut by far less than seconds.
DRIPPED = 10.0  # seconds the whole answer takes


async def test_a_body_dripped_past_the_total_deadline_is_cut_off(
    make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    fault_server.route("/drip", Fault.drip(200, interval=DRIPPED / 200))
    client = make_client(base_url=fault_server.url, timeout=TimeoutConfig(total=0.5))
    started = time.monotonic()
    with pytest.raises(buttress.TimeoutError, match=r"0\.5s ran out during attempt 1") as caught:
        await client.get("/drip")
    assert time.monotonic() - started < DRIPPED / 2
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)
    assert fault_server.wait_idle()  # the cut-off connection was closed, not pooled


async def test_headers_dripped_past_the_total_deadline_are_refused(
    make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    # The attempt is not cut short (the layers beneath must see how it ended): the
    # response is refused once its headers are in, here after about 0.7 s.
    fault_server.route("/drip", Fault.drip_headers(interval=0.01))
    client = make_client(
        base_url=fault_server.url, timeout=TimeoutConfig(total=0.3), max_connections=1
    )
    with pytest.raises(buttress.TimeoutError, match=r"0\.3s ran out during attempt 1"):
        await client.get("/drip")
    # the refused response gave its connection back: the pool's only one serves again
    assert (await client.get("/ok", timeout=TimeoutConfig(pool=2))).status_code == 200


async def test_invalid_gzip_body_is_a_buttress_decoding_error(
    make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    # Regression: httpx.DecodingError from the content decoders escaped the facade raw,
    # both from client.get() and from iterating a streamed body.
    fault_server.route("/gz", Fault.bad_encoding())
    client = make_client(base_url=fault_server.url)
    with pytest.raises(buttress.DecodingError) as caught:
        await client.get("/gz")
    assert isinstance(caught.value, httpx.DecodingError)
    with pytest.raises(buttress.DecodingError):
        await client.stream_bytes("GET", "/gz")


class _Exploding(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __iter__(self):  # type: ignore[no-untyped-def]
        yield b"{"
        raise RuntimeError("a bug in a user's stream")

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield b"{"
        raise RuntimeError("a bug in a user's stream")


async def test_stream_error_that_is_not_a_transport_error_is_not_its_own_cause(
    make_client: Callable[..., Either],
) -> None:
    # Regression: the stream wrappers did `raise map_exception(exc) from exc`, which for an
    # exception map_exception leaves alone made the exception its own __cause__.
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=_Exploding()))
    client = make_client(base_url="http://api.test", transport=transport)
    with pytest.raises(RuntimeError) as caught:
        await client.get("/x")
    assert caught.value.__cause__ is not caught.value
