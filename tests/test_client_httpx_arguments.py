"""Every ``httpx.Client`` argument, given to a buttress client, does what it does in httpx.

Each test builds a bare httpx client and a buttress client of the same kind
(sync or async) with the same argument, sends the same request to a real server
on 127.0.0.1, and compares what can be observed: the status, the protocol, the
body, or the exception (buttress's must be an instance of the class httpx
raised, so ``except httpx.ConnectError`` keeps working). Buttress clients get
``retry=False`` so a failure is seen once, as httpx sees it.
"""

from __future__ import annotations

import inspect
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

import buttress
from buttress.testing import DemoServer
from tests.servers import Certificates, PProxy, TLSServer, free_port

pytestmark = pytest.mark.anyio

Read = Callable[[httpx.Response], Any]


def _status(response: httpx.Response) -> Any:
    return response.status_code


def _client(library: str, mode: str, **kwargs: Any) -> Any:
    classes: dict[tuple[str, str], Any] = {
        ("httpx", "sync"): httpx.Client,
        ("httpx", "async"): httpx.AsyncClient,
        ("buttress", "sync"): buttress.Client,
        ("buttress", "async"): buttress.AsyncClient,
    }
    if library == "buttress":
        kwargs.setdefault("retry", False)
    return classes[library, mode](**kwargs)


async def _close(client: Any) -> None:
    if isinstance(client, httpx.AsyncClient):
        await client.aclose()
    else:
        client.close()


async def _outcome(
    library: str, mode: str, url: str, read: Read, kwargs: dict[str, Any]
) -> Any | BaseException:
    client = _client(library, mode, **kwargs)
    try:
        result = client.get(url)
        response = await result if inspect.isawaitable(result) else result
        return read(response)
    except httpx.HTTPError as exc:  # every buttress error is an httpx error too
        return exc
    finally:
        await _close(client)


async def same(
    mode: str,
    url: str,
    read: Read = _status,
    *,
    each: Callable[[], dict[str, Any]] = dict,
    **kwargs: Any,
) -> Any:
    """What httpx and buttress both observe for ``GET url`` with ``kwargs`` (asserted equal).

    ``each()`` gives arguments each client must have its own of (a transport,
    which the client closes with itself). Returns httpx's observation (a value,
    or the type of the exception it raised) so the test can also say what that
    observation means.
    """
    expected = await _outcome("httpx", mode, url, read, {**kwargs, **each()})
    got = await _outcome("buttress", mode, url, read, {**kwargs, **each()})
    if isinstance(expected, BaseException):
        assert isinstance(got, type(expected)), f"httpx raised {expected!r}, buttress {got!r}"
        return type(expected)
    assert got == expected
    return expected


def _version(response: httpx.Response) -> str:
    return response.http_version


# -- TLS -------------------------------------------------------------------------------------


def _trusting(certs: Certificates) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca))


# httpx 0.28 deprecates paths for verify= and cert= (it still honours them); buttress does not.
@pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")
async def test_verify(mode: str, h2_server: TLSServer, certs: Certificates) -> None:
    url = f"{h2_server.url}/users/1"
    assert await same(mode, url, verify=_trusting(certs)) == 200
    assert await same(mode, url, verify=str(certs.ca)) == 200
    assert await same(mode, url, verify=False) == 200
    assert await same(mode, url, verify=True, trust_env=False) is httpx.ConnectError


@pytest.mark.filterwarnings("ignore:`cert=...` is deprecated:DeprecationWarning")
async def test_cert(mode: str, mtls_server: TLSServer, certs: Certificates) -> None:
    url = f"{mtls_server.url}/users/1"
    assert await same(mode, url, verify=_trusting(certs), cert=str(certs.client)) == 200


async def test_http1_and_http2(
    mode: str, h2_server: TLSServer, h11_server: TLSServer, certs: Certificates
) -> None:
    ca = _trusting(certs)
    both = f"{h2_server.url}/users/1"
    assert await same(mode, both, _version, verify=ca) == "HTTP/1.1"
    assert await same(mode, both, _version, verify=ca, http2=True) == "HTTP/2"
    assert await same(mode, both, _version, verify=ca, http1=False, http2=True) == "HTTP/2"
    assert await same(mode, both, _version, verify=ca, http1=True, http2=False) == "HTTP/1.1"
    h11 = f"{h11_server.url}/users/1"
    assert await same(mode, h11, _version, verify=ca, http2=True) == "HTTP/1.1"
    # HTTP/2 only: spoken even when the server's TLS does not offer h2 (hypercorn takes it).
    assert await same(mode, h11, _version, verify=ca, http1=False, http2=True) == "HTTP/2"


# -- connections -----------------------------------------------------------------------------


@asynccontextmanager
async def _held(client: Any, url: str) -> AsyncIterator[None]:
    """Keep one response open (its connection taken) for the block's duration."""
    if isinstance(client, httpx.AsyncClient):
        async with client.stream("GET", url):
            yield
    else:
        with client.stream("GET", url):
            yield


async def _second_while_first_open(library: str, mode: str, url: str, **kwargs: Any) -> Any:
    client = _client(library, mode, **kwargs)
    try:
        held: AbstractAsyncContextManager[None] = _held(client, url)
        async with held:
            result = client.get(url)
            response = await result if inspect.isawaitable(result) else result
            return response.status_code
    except httpx.HTTPError as exc:
        return exc
    finally:
        await _close(client)


@pytest.mark.parametrize(("connections", "second"), [(1, httpx.PoolTimeout), (2, 200)])
async def test_limits(mode: str, demo: DemoServer, connections: int, second: Any) -> None:
    # One connection held by an open response: with max_connections=1 the second
    # request waits for the pool and gives up after its pool timeout (0.3 s; the
    # held response never closes inside the block, so the outcome does not
    # depend on the machine's speed). With two connections it goes through.
    kwargs = {
        "limits": httpx.Limits(max_connections=connections),
        "timeout": httpx.Timeout(10, pool=0.3),
    }
    url = f"{demo.url}/users/1"
    expected = await _second_while_first_open("httpx", mode, url, **kwargs)
    got = await _second_while_first_open("buttress", mode, url, **kwargs)
    if isinstance(second, type):
        assert isinstance(expected, second)
        assert isinstance(got, second)
        assert isinstance(got, buttress.PoolTimeoutError)
    else:
        assert expected == got == second


async def test_proxy(mode: str, demo: DemoServer, http_proxy: PProxy) -> None:
    url = f"{demo.url}/users/1"
    assert await same(mode, url, proxy=http_proxy.url, trust_env=False) == 200
    assert http_proxy.username is not None  # this fixture's proxy asks for a login
    credentials = (http_proxy.username, http_proxy.password)
    bare = f"http://127.0.0.1:{http_proxy.port}"
    # The proxy answers 407 without credentials: a 200 shows auth= was sent.
    given = httpx.Proxy(bare, auth=credentials)
    assert await same(mode, url, proxy=given, trust_env=False) == 200
    with pytest.raises(buttress.ConfigurationError, match=r"httpx\.Proxy\(headers=\.\.\.\)"):
        _client("buttress", mode, proxy=httpx.Proxy(bare, headers={"X-Via": "test"}))
    nowhere = f"http://127.0.0.1:{free_port()}"
    failed = await same(mode, url, proxy=nowhere, trust_env=False)
    assert failed is httpx.ConnectError  # nothing listens where the proxy should be


def _network(mode: str, **kwargs: Any) -> Any:
    return httpx.AsyncHTTPTransport(**kwargs) if mode == "async" else httpx.HTTPTransport(**kwargs)


async def test_mounts(mode: str, h2_server: TLSServer, certs: Certificates) -> None:
    url = f"{h2_server.url}/users/1"

    # The client's own transport does not trust the test CA; the mounted one does.
    def mounted(pattern: str) -> Callable[[], dict[str, Any]]:
        return lambda: {"mounts": {pattern: _network(mode, verify=_trusting(certs))}}

    assert await same(mode, url, each=mounted("https://127.0.0.1"), trust_env=False) == 200
    failed = await same(mode, url, each=mounted("https://example.test"), trust_env=False)
    assert failed is httpx.ConnectError


async def test_transport(mode: str, h2_server: TLSServer, certs: Certificates) -> None:
    url = f"{h2_server.url}/users/1"

    def own() -> dict[str, Any]:
        return {"transport": _network(mode, verify=_trusting(certs), http2=True)}

    assert await same(mode, url, _version, each=own) == "HTTP/2"


async def test_trust_env(mode: str, demo: DemoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens
    url = f"{demo.url}/users/1"
    assert await same(mode, url, trust_env=False) == 200
    failed = await same(mode, url, trust_env=True)
    assert failed is httpx.ConnectError  # nothing listens where the proxy should be


# -- requests and responses ------------------------------------------------------------------


def _text(response: httpx.Response) -> str:
    return response.text


async def test_default_encoding(mode: str, demo: DemoServer) -> None:
    url = f"{demo.url}/download?size=256"  # bytes 0-255, application/octet-stream, no charset
    latin = await same(mode, url, _text, default_encoding="latin-1")
    assert latin == bytes(range(256)).decode("latin-1")
    guessed = await same(mode, url, _text, default_encoding=lambda content: "cp437")
    assert guessed == bytes(range(256)).decode("cp437")
    assert await same(mode, url, _text) == bytes(range(256)).decode("utf-8", "replace")


async def test_event_hooks(mode: str, demo: DemoServer) -> None:
    def hooks() -> tuple[list[str], dict[str, list[Any]]]:
        seen: list[str] = []

        def on_request(request: httpx.Request) -> None:
            seen.append(f"request {request.method} {request.url.path}")

        def on_response(response: httpx.Response) -> None:
            seen.append(f"response {response.status_code}")

        if mode == "sync":
            return seen, {"request": [on_request], "response": [on_response]}

        async def on_request_async(request: httpx.Request) -> None:
            on_request(request)

        async def on_response_async(response: httpx.Response) -> None:
            on_response(response)

        return seen, {"request": [on_request_async], "response": [on_response_async]}

    url = f"{demo.url}/users/1"
    seen_by_httpx, for_httpx = hooks()
    seen_by_buttress, for_buttress = hooks()
    await _outcome("httpx", mode, url, _status, {"event_hooks": for_httpx})
    await _outcome("buttress", mode, url, _status, {"event_hooks": for_buttress})
    assert seen_by_buttress == seen_by_httpx == ["request GET /users/1", "response 200"]


async def test_cookies_params_and_headers(mode: str, demo: DemoServer) -> None:
    url = f"{demo.url}/echo"

    def cookie(response: httpx.Response) -> Any:
        return response.json()["headers"].get("cookie")

    def query(response: httpx.Response) -> Any:
        return response.json()["query"]

    def team(response: httpx.Response) -> Any:
        return response.json()["headers"].get("x-team")

    assert await same(mode, url, cookie, cookies={"flavour": "oat"}) == "flavour=oat"
    assert await same(mode, url, query, params={"page": "2"}) == {"page": "2"}
    assert await same(mode, url, team, headers={"X-Team": "web"}) == "web"


async def test_timeout(mode: str, demo: DemoServer) -> None:
    # The server answers after 3 s; a 0.5 s read timeout runs out long before, on any machine.
    url = f"{demo.url}/slow?delay=3"
    assert await same(mode, url, timeout=httpx.Timeout(10, read=0.5)) is httpx.ReadTimeout
    assert await same(mode, url, timeout=0.5) is httpx.ReadTimeout


async def test_follow_redirects_and_max_redirects(mode: str, demo: DemoServer) -> None:
    once = f"{demo.url}/redirect?to=/users/1"
    twice = f"{demo.url}/redirect?to=/redirect%3Fto%3D/users/1"

    def landed(response: httpx.Response) -> Any:
        return response.status_code, response.url.path, len(response.history)

    assert await same(mode, once, landed, follow_redirects=False) == (302, "/redirect", 0)
    assert await same(mode, once, landed, follow_redirects=True) == (200, "/users/1", 1)
    assert await same(mode, twice, landed, follow_redirects=True, max_redirects=2) == (
        200,
        "/users/1",
        2,
    )
    too_many = await same(mode, twice, landed, follow_redirects=True, max_redirects=1)
    assert too_many is httpx.TooManyRedirects


async def test_base_url(mode: str, demo: DemoServer) -> None:
    def name(response: httpx.Response) -> Any:
        return response.json()["name"]

    assert await same(mode, "/users/2", name, base_url=demo.url) == "Grace Hopper"
    assert await same(mode, "users/2", name, base_url=f"{demo.url}/") == "Grace Hopper"


# -- the SPEC's spellings and httpx's, side by side ------------------------------------------


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"verify": False, "verify_ssl": False}, "verify= and verify_ssl="),
        ({"limits": httpx.Limits(), "max_connections": 5}, "limits= and max_connections="),
        (
            {"limits": httpx.Limits(), "keepalive_expiry": 1.0},
            "limits= and keepalive_expiry=",
        ),
        (
            {"limits": httpx.Limits(), "max_keepalive_connections": None},
            "limits= and max_keepalive_connections=",
        ),
    ],
)
@pytest.mark.parametrize("cls", [buttress.Client, buttress.AsyncClient])
def test_both_spellings_of_one_setting_are_refused(
    cls: type[Any], given: dict[str, Any], named: str
) -> None:
    with pytest.raises(buttress.ConfigurationError, match=named):
        cls(**given)


async def test_limits_set_the_pool_gate_as_max_connections_does(
    make_client: Callable[..., Any], demo: DemoServer
) -> None:
    # The gate is where requests wait for a connection: limits= must size it.
    client = make_client(
        base_url=demo.url,
        limits=httpx.Limits(max_connections=1),
        timeout=buttress.TimeoutConfig(pool=0.3),
        retry=False,
    )
    spelled = make_client(
        base_url=demo.url,
        max_connections=1,
        timeout=buttress.TimeoutConfig(pool=0.3),
        retry=False,
    )
    for either in (client, spelled):
        async with _held(either.client, "/users/1"):
            with pytest.raises(buttress.PoolTimeoutError):
                await either.get("/users/2")
        assert (await either.get("/users/2")).status_code == 200  # the place came back


async def test_with_options_takes_either_spelling(make_client: Callable[..., Any]) -> None:
    client = make_client(max_connections=3, verify_ssl=True).client
    other = client.with_options(limits=httpx.Limits(max_connections=2), verify=True)
    back = other.with_options(max_connections=4)
    try:
        assert other._config.given["limits"].max_connections == 2
        assert "max_connections" not in other._config.given
        assert "verify_ssl" not in other._config.given
        assert back._config.given["max_connections"] == 4
        assert "limits" not in back._config.given
    finally:
        await _close(other)
        await _close(back)


def test_verify_false_warns_under_the_name_it_was_given(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="buttress"):
        buttress.Client(verify=False).close()
        buttress.Client(verify_ssl=False).close()
    warnings = [r.getMessage() for r in caplog.records if "is disabled" in r.getMessage()]
    assert len(warnings) == 2
    assert "(verify=False)" in warnings[0]
    assert "(verify_ssl=False)" in warnings[1]


def test_http1_false_needs_http2() -> None:
    with pytest.raises(buttress.ConfigurationError, match="http1=False needs http2=True"):
        buttress.Client(http1=False)


def test_the_aiohttp_backend_refuses_http2_only() -> None:
    with pytest.raises(buttress.ConfigurationError, match="drop http1=False and http2=True"):
        buttress.AsyncClient(backend="aiohttp", http1=False, http2=True)
    with pytest.raises(buttress.ConfigurationError, match="drop http1=False or"):
        buttress.AsyncClient(backend="aiohttp", http1=False)
