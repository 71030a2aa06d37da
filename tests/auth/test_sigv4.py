"""AWS Signature V4: published vectors, botocore as an oracle, re-signing on retries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buttress import ConfigurationError, ForbiddenError, RetryConfig
from buttress._extensions import RESIGN_KEY
from buttress.auth import AWSSigV4
from buttress.testing import DemoAPI, DemoServer, FakeClock
from buttress.transports import RetryTransport
from tests.conftest import Either

pytestmark = pytest.mark.anyio
MakeClient = Callable[..., Either]

# The credentials, time and scope of AWS's Signature Version 4 test suite
# ("aws-sig-v4-test-suite", published by AWS with the SigV4 documentation and
# mirrored in aws-c-auth/tests/aws-sig-v4-test-suite): 2015-08-30T12:36:00Z.
SUITE_KEY, SUITE_SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_TIME = 1440938160.0
SUITE_TOKEN = (
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxf"
    "pSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KP"
    "kyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbq"
    "BAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
)

# (name, method, url, headers, body, session token, signed headers, signature) from the suite.
VECTORS = [
    (
        "get-vanilla",
        "GET",
        "/",
        {},
        b"",
        None,
        "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    (
        "get-vanilla-query-order-key-case",
        "GET",
        "/?Param2=value2&Param1=value1",
        {},
        b"",
        None,
        "host;x-amz-date",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    (
        "get-header-value-trim",
        "GET",
        "/",
        {"My-Header1": " value1", "My-Header2": '"a   b   c"'},
        b"",
        None,
        "host;my-header1;my-header2;x-amz-date",
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    ),
    (
        "post-vanilla",
        "POST",
        "/",
        {},
        b"",
        None,
        "host;x-amz-date",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    ),
    (
        "post-header-key-sort",
        "POST",
        "/",
        {"My-Header1": "value1"},
        b"",
        None,
        "host;my-header1;x-amz-date",
        "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    ),
    (
        "post-x-www-form-urlencoded",
        "POST",
        "/",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"Param1=value1",
        None,
        "content-type;host;x-amz-date",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    ),
    (
        "post-sts-header-before",
        "POST",
        "/",
        {},
        b"",
        SUITE_TOKEN,
        "host;x-amz-date;x-amz-security-token",
        "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
    ),
]


def suite_request(method: str, path: str, headers: dict[str, str], body: bytes) -> httpx.Request:
    request = httpx.Request(
        method, f"https://example.amazonaws.com{path}", headers=headers, content=body
    )
    request.headers.pop("Content-Length", None)  # the suite's requests carry none
    return request


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "token", "signed", "signature"),
    [pytest.param(*vector[1:], id=vector[0]) for vector in VECTORS],
)
def test_published_vectors(
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    token: str | None,
    signed: str,
    signature: str,
) -> None:
    auth = AWSSigV4(
        SUITE_KEY, SUITE_SECRET, "us-east-1", "service", token, clock=FakeClock(epoch=SUITE_TIME)
    )
    request = next(auth.auth_flow(suite_request(method, path, headers, body)))
    assert request.headers["X-Amz-Date"] == "20150830T123600Z"
    assert request.headers["Authorization"] == (
        f"AWS4-HMAC-SHA256 Credential={SUITE_KEY}/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders={signed}, Signature={signature}"
    )


# --- botocore as the oracle ------------------------------------------------------------------


def botocore_signature(request: httpx.Request, auth: AWSSigV4) -> tuple[str, str]:
    """botocore's canonical request and signature for ``request`` as we signed it.

    botocore is handed the headers our signer listed (it signs every header it
    is given) and the timestamp we signed at.
    """
    signed = request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    headers = {name: request.headers[name] for name in signed.split(";")}
    token = request.headers.get("X-Amz-Security-Token")
    credentials = botocore.credentials.Credentials(
        auth.access_key, auth.secret_key.get_secret_value(), token
    )
    signer_class = botocore.auth.S3SigV4Auth if auth.service == "s3" else botocore.auth.SigV4Auth
    signer = signer_class(credentials, auth.service, auth.region)
    url = request.url
    wire = f"{url.scheme}://{url.netloc.decode()}{url.raw_path.decode()}"  # as sent, with its "/"
    aws = botocore.awsrequest.AWSRequest(
        method=request.method, url=wire, headers=headers, data=request.content
    )
    aws.context["timestamp"] = request.headers["X-Amz-Date"]
    canonical = signer.canonical_request(aws)
    return canonical, signer.signature(signer.string_to_sign(aws, canonical), aws)


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"
HEADER_VALUE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20
).filter(str.strip)


@st.composite
def requests(draw: st.DrawFn) -> httpx.Request:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
    segments = draw(st.lists(TEXT.filter(lambda s: s not in (".", "..")), max_size=4))
    path = "/" + "/".join(quote(s, safe="") for s in segments)
    params: list[tuple[str, str | int | float | bool | None]] = draw(
        st.lists(st.tuples(TEXT, TEXT), max_size=4)
    )
    names = draw(st.lists(st.text(TOKEN_CHARS, min_size=1, max_size=10), max_size=3, unique=True))
    headers = {f"x-test-{name}": draw(HEADER_VALUE) for name in names}
    body = draw(st.binary(max_size=64)) if method != "GET" else b""
    return httpx.Request(
        method,
        f"https://api.example.com{path}",
        params=params,
        headers=headers,
        content=body,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    request=requests(),
    service=st.sampled_from(["execute-api", "service"]),
    token=st.none() | st.just("session-token/with+odd=chars"),
)
def test_same_signature_as_botocore(
    request: httpx.Request, service: str, token: str | None
) -> None:
    auth = AWSSigV4("AKIDTEST", "secret/key+1", "eu-west-1", service, token, clock=FakeClock())
    signed = next(auth.auth_flow(request))
    canonical, signature = botocore_signature(signed, auth)
    assert signed.headers["Authorization"].endswith(f"Signature={signature}"), canonical


@settings(max_examples=60, deadline=None)
@given(
    key=st.lists(
        st.text("abcdefghij0123456789-_.~", min_size=1, max_size=8), min_size=1, max_size=3
    ),
    body=st.binary(max_size=64),
)
def test_same_signature_as_botocore_for_s3(key: list[str], body: bytes) -> None:
    auth = AWSSigV4("AKIDTEST", "secret/key+1", "eu-west-1", "s3", clock=FakeClock())
    request = httpx.Request("PUT", "https://bucket.s3.amazonaws.com/" + "/".join(key), content=body)
    signed = next(auth.auth_flow(request))
    assert signed.headers["X-Amz-Content-SHA256"] == hashlib.sha256(body).hexdigest()
    _, signature = botocore_signature(signed, auth)
    assert signed.headers["Authorization"].endswith(f"Signature={signature}")


def test_streamed_body_is_signed_as_unsigned_payload_and_never_read() -> None:
    chunks = iter([b"one", b"two"])
    auth = AWSSigV4("AKIDTEST", "secret-key", "eu-west-1", "s3", clock=FakeClock())
    request = httpx.Request("PUT", "https://bucket.s3.amazonaws.com/big", content=chunks)
    signed = next(auth.auth_flow(request))
    assert signed.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert "x-amz-content-sha256" in signed.headers["Authorization"]
    assert list(chunks) == [b"one", b"two"]  # the body is still the caller's to send
    _, signature = botocore_signature_unread(signed, auth)
    assert signed.headers["Authorization"].endswith(f"Signature={signature}")


def botocore_signature_unread(request: httpx.Request, auth: AWSSigV4) -> tuple[str, str]:
    """As :func:`botocore_signature`, for a request whose body must not be read."""
    request._content = b""  # botocore reads X-Amz-Content-SHA256, not the body
    try:
        return botocore_signature(request, auth)
    finally:
        del request._content


def test_query_goes_on_the_wire_as_signed() -> None:
    """httpx writes a space in a parameter as ``+``; AWS reads the strict encoding."""
    auth = AWSSigV4("AKIDTEST", "secret-key", "eu-west-1", "execute-api", clock=FakeClock())
    request = httpx.Request("GET", "https://api.example.com/x", params={"q": "a b+c", "z": "~"})
    signed = next(auth.auth_flow(request))
    assert signed.url.query == b"q=a%20b%2Bc&z=~"
    assert signed.url.params["q"] == "a b+c"


def test_reprs_and_messages_keep_the_secrets() -> None:
    auth = AWSSigV4("AKIDTEST", "s3cret-key", "eu-west-1", "s3", session_token="t0ken-value")
    assert "s3cret" not in repr(auth)
    assert "t0ken" not in repr(auth)
    hidden = auth.redactor().text("key s3cret-key token t0ken-value")
    assert hidden == "key [REDACTED] token [REDACTED]"


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({}, "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION"),
        ({"AWS_ACCESS_KEY_ID": "AKID", "AWS_REGION": "us-east-1"}, "AWS_SECRET_ACCESS_KEY"),
    ],
)
def test_from_env_names_what_is_missing(environ: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigurationError, match=f"set {missing}"):
        AWSSigV4.from_env(service="s3", environ=environ)


def test_from_env_reads_the_standard_variables() -> None:
    environ = {
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "s3cret-key",
        "AWS_SESSION_TOKEN": "t0ken-value",
        "AWS_DEFAULT_REGION": "ap-south-1",
    }
    auth = AWSSigV4.from_env(service="execute-api", environ=environ)
    assert (auth.access_key, auth.region, auth.service) == ("AKID", "ap-south-1", "execute-api")
    assert auth.session_token is not None
    assert auth.session_token.get_secret_value() == "t0ken-value"
    assert (
        AWSSigV4.from_env(service="s3", region="us-west-2", environ=environ).region == "us-west-2"
    )


@pytest.mark.parametrize("bad", [{"secret_key": ""}, {"region": ""}, {"service": ""}])
def test_empty_settings_are_refused(bad: dict[str, str]) -> None:
    arguments = {"access_key": "AKID", "secret_key": "s", "region": "r", "service": "s3", **bad}
    with pytest.raises(ConfigurationError, match="AWSSigV4 needs a non-empty"):
        AWSSigV4(
            arguments["access_key"],
            arguments["secret_key"],
            arguments["region"],
            arguments["service"],
        )


# --- re-signing every attempt, against a server that verifies signatures -------------------

FRESH_FOR = 5.0  # seconds a signature stays acceptable here (AWS allows minutes)
BACKOFF = 60.0  # so a retry without a new signature would arrive stale


class SigV4Gate:
    """ASGI: 403 unless the request is signed (checked with botocore) and fresh; else the demo."""

    def __init__(self, clock: FakeClock, secret: str) -> None:
        self.clock, self.secret = clock, secret
        self.dates: list[str] = []
        self.app = DemoAPI()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if not self._verified(scope, body):
            await send({"type": "http.response.start", "status": 403, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # nothing more until the app answers
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _verified(self, scope: dict[str, Any], body: bytes) -> bool:
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        authorization = headers.get("authorization", "")
        if "Signature=" not in authorization:
            return False
        date = headers["x-amz-date"]
        self.dates.append(date)
        age = self.clock.time() - _epoch(date)
        if not 0 <= age <= FRESH_FOR:
            return False
        signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
        query = scope["query_string"].decode()
        url = f"http://{headers['host']}{scope['raw_path'].decode()}" + (
            f"?{query}" if query else ""
        )
        aws = botocore.awsrequest.AWSRequest(
            method=scope["method"], url=url, headers={n: headers[n] for n in signed}, data=body
        )
        aws.context["timestamp"] = date
        credentials = botocore.credentials.Credentials("AKIDTEST", self.secret)
        signer = botocore.auth.SigV4Auth(credentials, "execute-api", "us-east-1")
        expected = signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)
        given = authorization.rsplit("Signature=", 1)[1]
        return hmac.compare_digest(expected, given)


def _epoch(stamp: str) -> float:
    import datetime

    parsed = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
    return parsed.replace(tzinfo=datetime.timezone.utc).timestamp()


@pytest.fixture
def gate() -> Iterator[tuple[SigV4Gate, DemoServer, FakeClock]]:
    clock = FakeClock(epoch=SUITE_TIME)
    app = SigV4Gate(clock, "s3cret-key")
    with DemoServer(app) as server:
        yield app, server, clock


def signer(clock: FakeClock) -> AWSSigV4:
    return AWSSigV4("AKIDTEST", "s3cret-key", "us-east-1", "execute-api", clock=clock)


RETRY = RetryConfig(max_attempts=3, backoff_factor=BACKOFF, jitter="none", budget=None)


async def test_every_retry_attempt_is_signed_again(
    make_client: MakeClient, gate: tuple[SigV4Gate, DemoServer, FakeClock]
) -> None:
    app, server, clock = gate
    client = make_client(base_url=server.url, auth=signer(clock), clock=clock, retry=RETRY)
    response = await client.put("/flaky?key=resign&failures=2", json={"a": 1})
    assert response.json() == {"ok": True, "attempts": 3}
    assert len(app.dates) == 3
    assert len(set(app.dates)) == 3  # a new date each attempt, after each backoff


class SignOnce(httpx.Auth):
    """AWSSigV4 without its re-signer: what a signer above the transports would do alone."""

    def __init__(self, auth: AWSSigV4) -> None:
        self.auth = auth

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        for signed in self.auth.auth_flow(request):
            del signed.extensions[RESIGN_KEY]
            yield signed


async def test_a_retry_with_the_first_signature_is_refused(
    make_client: MakeClient, gate: tuple[SigV4Gate, DemoServer, FakeClock]
) -> None:
    """The counterfactual: without re-signing, the retry after a backoff arrives stale."""
    app, server, clock = gate
    client = make_client(
        base_url=server.url, auth=SignOnce(signer(clock)), clock=clock, retry=RETRY
    )
    with pytest.raises(ForbiddenError):
        await client.put("/flaky?key=stale&failures=1", json={"a": 1})
    assert len(app.dates) == 2
    assert len(set(app.dates)) == 1


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_plain_httpx_client_with_the_retry_transport(
    kind: str, gate: tuple[SigV4Gate, DemoServer, FakeClock]
) -> None:
    app, server, clock = gate
    params: dict[str, str | int] = {"key": f"plain-{kind}", "failures": 1, "a b": "c+d"}
    if kind == "sync":
        transport = RetryTransport(httpx.HTTPTransport(), RETRY, clock=clock)
        with httpx.Client(transport=transport, auth=signer(clock)) as client:
            response = client.get(f"{server.url}/flaky", params=params)
    else:
        transport = RetryTransport(httpx.AsyncHTTPTransport(), RETRY, clock=clock)
        async with httpx.AsyncClient(transport=transport, auth=signer(clock)) as aclient:
            response = await aclient.get(f"{server.url}/flaky", params=params)
    assert response.status_code == 200
    assert len(set(app.dates)) == 2


async def test_a_streamed_upload_is_sent_unsigned_payload_and_whole(
    make_client: MakeClient, gate: tuple[SigV4Gate, DemoServer, FakeClock]
) -> None:
    _, server, clock = gate
    client = make_client(base_url=server.url, auth=signer(clock), clock=clock)
    chunks = [b"a" * 1000, b"b" * 1000]

    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    body: Any = stream() if client.is_async else iter(chunks)
    response = await client.put("/upload", content=body)
    assert response.json()["sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert response.request.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"


@pytest.mark.parametrize("retry", [RETRY, False], ids=["retry", "no retry"])
@pytest.mark.parametrize("status", [302, 307])
async def test_a_redirect_on_the_same_origin_is_signed_for_its_own_url(
    make_client: MakeClient,
    gate: tuple[SigV4Gate, DemoServer, FakeClock],
    retry: RetryConfig | bool,
    status: int,
) -> None:
    # httpx follows redirects beneath auth: the hop went out with the first URL's signature.
    app, server, clock = gate
    client = make_client(
        base_url=server.url, auth=signer(clock), clock=clock, retry=retry, follow_redirects=True
    )
    response = await client.get("/redirect", params={"to": "/users/2?x=a b", "status": status})
    assert response.json()["name"] == "Grace Hopper"
    assert len(app.dates) == 2  # both hops verified by botocore's signer


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_redirect_through_the_retry_transport_on_plain_httpx_is_signed(
    kind: str, gate: tuple[SigV4Gate, DemoServer, FakeClock]
) -> None:
    _, server, clock = gate
    url = f"{server.url}/redirect?to=/users/2"
    if kind == "sync":
        transport = RetryTransport(httpx.HTTPTransport(), RETRY, clock=clock)
        with httpx.Client(transport=transport, auth=signer(clock), follow_redirects=True) as c:
            response = c.get(url)
    else:
        atransport = RetryTransport(httpx.AsyncHTTPTransport(), RETRY, clock=clock)
        async with httpx.AsyncClient(
            transport=atransport, auth=signer(clock), follow_redirects=True
        ) as ac:
            response = await ac.get(url)
    assert response.status_code == 200


async def test_a_hop_back_from_another_origin_gets_no_credentials(
    make_client: MakeClient, demo: DemoServer, other_origin: DemoServer
) -> None:
    # A -> B -> A: B chose the last URL; the credentials B never got stay off it too.
    auth = AWSSigV4("AKIDTEST", "s3cret-key", "us-east-1", "execute-api", session_token="T0KEN")
    client = make_client(auth=auth, follow_redirects=True, retry=RETRY)
    back = f"{demo.url}/echo?path=chosen-by-b"
    via_b = f"{other_origin.url}/redirect?" + urlencode({"to": back, "status": 307})
    response = await client.post(
        f"{demo.url}/redirect", params={"to": via_b, "status": 307}, json={"x": 1}
    )
    assert str(response.url) == back
    echoed = {name.lower() for name in response.json()["headers"]}
    assert not echoed & {"authorization", "x-amz-security-token"}


async def test_a_redirected_body_in_memory_is_signed_with_its_hash(
    make_client: MakeClient, gate: tuple[SigV4Gate, DemoServer, FakeClock]
) -> None:
    app, server, clock = gate
    client = make_client(
        base_url=server.url, auth=signer(clock), clock=clock, follow_redirects=True
    )
    response = await client.post("/redirect", params={"to": "/echo", "status": 307}, json={"a": 1})
    assert response.json()["json"] == {"a": 1}
    assert "X-Amz-Content-SHA256" not in response.request.headers  # hashed, not unsigned
    assert len(app.dates) == 2  # both hops verified


def test_a_redirect_hop_to_another_origin_is_not_signed(
    gate: tuple[SigV4Gate, DemoServer, FakeClock],
) -> None:
    """The credentials are the first origin's: a hop elsewhere goes without them."""
    _, server, clock = gate
    auth = signer(clock)
    first = next(auth.auth_flow(httpx.Request("GET", f"{server.url}/a")))
    hop = httpx.Request("GET", "https://elsewhere.test/b", extensions=first.extensions)
    first.extensions[RESIGN_KEY](hop)
    assert "Authorization" not in hop.headers
