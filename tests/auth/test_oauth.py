"""OAuth 2.0 and OpenID Connect against the demo API's authorization server on 127.0.0.1.

Every grant runs on both clients; token lifetimes and device polling run on a
fake clock shared by the client and the server, so nothing waits for real time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import stat
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from pydantic import SecretStr

import buttress
from buttress.auth import (
    AuthorizationCode,
    ClientCredentials,
    DeviceCode,
    DeviceCodePrompt,
    FileTokenStore,
    MemoryTokenStore,
    OAuth2,
    OAuth2Error,
    RefreshToken,
)
from buttress.testing import DemoAPI, DemoServer, FakeClock, OAuthProvider
from buttress.testing.oauth import DEVICE_GRANT
from tests.conftest import Either

pytestmark = pytest.mark.anyio

MakeClient = Callable[..., Either]
SERVICE_SECRET = "demo-service-secret"
LIFETIME = 3600


class Authority:
    """The demo API with its authorization server, on a clock the test controls."""

    def __init__(self, server: DemoServer, provider: OAuthProvider, clock: FakeClock) -> None:
        self.server, self.provider, self.clock = server, provider, clock
        self.url = server.url
        self.app: DemoAPI = server.app

    def service(self, **kwargs: Any) -> OAuth2:
        """A confidential client using the client credentials grant."""
        kwargs.setdefault("token_url", f"{self.url}/oauth/token")
        kwargs.setdefault("client_secret", SERVICE_SECRET)
        return OAuth2(ClientCredentials(), client_id="demo-service", clock=self.clock, **kwargs)


@pytest.fixture
def authority() -> Iterator[Authority]:
    clock = FakeClock()
    provider = OAuthProvider(clock=clock, token_lifetime=LIFETIME)
    with DemoServer(DemoAPI(oauth=provider)) as server:
        yield Authority(server, provider, clock)


class Browser:
    """Follows the login URL as the user's browser would: consent, then the redirect home."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self._visits: list[threading.Thread] = []

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        visit = threading.Thread(target=httpx.get, args=(url,), kwargs={"follow_redirects": True})
        visit.start()  # the listener answers the redirect only once the auth waits for it
        self._visits.append(visit)
        return True

    def close(self) -> None:
        for visit in self._visits:
            visit.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Browser]:
    opened = Browser()
    yield opened
    opened.close()


# --- client credentials ---------------------------------------------------------------------


@pytest.mark.parametrize("client_auth", ["basic", "body"])
async def test_client_credentials_with_scope_and_audience(
    make_client: MakeClient, authority: Authority, client_auth: Any
) -> None:
    auth = authority.service(client_auth=client_auth, scope=["users:read"], audience="demo-api")
    client = make_client(base_url=authority.url, auth=auth)
    me = (await client.get("/me")).json()
    assert me == {"client_id": "demo-service", "scope": "users:read", "audience": "demo-api"}
    await client.get("/me")
    assert authority.provider.token_requests == {"client_credentials": 1}  # the token is kept


async def test_plain_httpx_clients_use_it_too(authority: Authority) -> None:
    auth = authority.service()
    with httpx.Client(base_url=authority.url, auth=auth) as client:
        assert client.get("/me").json()["client_id"] == "demo-service"
    async with httpx.AsyncClient(base_url=authority.url, auth=auth) as aclient:
        assert (await aclient.get("/me")).status_code == 200
    assert authority.provider.token_requests["client_credentials"] == 1


async def test_renewed_before_expiry_by_the_skew(
    make_client: MakeClient, authority: Authority
) -> None:
    client = make_client(base_url=authority.url, auth=authority.service(skew=60))
    await client.get("/me")
    authority.clock.advance(LIFETIME - 61)  # 61 s left: more than the skew
    await client.get("/me")
    assert authority.provider.token_requests["client_credentials"] == 1
    authority.clock.advance(2)  # 59 s left: renewed before it is sent
    response = await client.get("/me")
    assert response.status_code == 200
    assert response.history == []  # the server never saw the old token refused
    assert authority.provider.token_requests["client_credentials"] == 2


async def test_invalid_token_brings_one_refresh_and_one_resend(
    make_client: MakeClient, authority: Authority
) -> None:
    client = make_client(base_url=authority.url, auth=authority.service())
    await client.get("/me")
    authority.provider.revoke_access_tokens()
    response = await client.get("/me")
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert authority.provider.token_requests["client_credentials"] == 2


async def test_a_streamed_body_is_sent_again_after_a_refresh(
    make_client: MakeClient, authority: Authority
) -> None:
    # The auth reads the body first (as httpx does for auths that may resend): before,
    # the resend after the 401 failed with "content has already been streamed".
    client = make_client(base_url=authority.url, auth=authority.service())
    await client.get("/me")
    authority.provider.revoke_access_tokens()

    def chunks() -> Iterator[bytes]:
        yield from (b"part-1;", b"part-2;")

    async def achunks() -> AsyncIterator[bytes]:
        for chunk in chunks():
            yield chunk

    body = achunks() if client.is_async else chunks()
    response = await client.request("GET", "/me", content=body)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert response.request.content == b"part-1;part-2;"


async def test_a_token_shorter_lived_than_the_skew_is_used_for_half_its_life(
    make_client: MakeClient, authority: Authority
) -> None:
    # A 20 s token with the default 30 s skew: before, every call fetched a new one.
    authority.provider.token_lifetime = 20
    client = make_client(base_url=authority.url, auth=authority.service())
    for _ in range(3):
        await client.get("/me")
    assert authority.provider.token_requests["client_credentials"] == 1
    authority.clock.advance(11)  # past half its life
    await client.get("/me")
    assert authority.provider.token_requests["client_credentials"] == 2


async def test_a_refused_fresh_token_is_returned_not_looped(
    make_client: MakeClient, authority: Authority
) -> None:
    authority.provider.token_lifetime = 0  # every token is dead on arrival
    client = make_client(base_url=authority.url, auth=authority.service(skew=0))
    with pytest.raises(buttress.AuthenticationError) as refused:
        await client.get("/me")
    assert 'error="invalid_token"' in refused.value.headers["www-authenticate"]
    assert authority.app.hits["/me"] == 2  # sent, refreshed, resent once
    assert authority.provider.token_requests["client_credentials"] == 2


@pytest.mark.parametrize(
    ("challenge", "refreshes"),
    [
        ('Bearer error="invalid_token", error_description="expired"', True),
        ('Bearer realm="api"', True),  # no error named: the token may simply have expired
        (None, True),
        ('Bearer error="invalid_request"', False),  # a new token would not fix the request
        ('Bearer error="insufficient_scope", scope="admin"', False),
        # several challenges in one header (RFC 9110 11.6.1): the Bearer one's error counts
        ('Basic realm="x", Bearer error="insufficient_scope"', False),
        ('Basic realm="x", Bearer error="invalid_token"', True),
        # an error= inside a quoted value is not the challenge's error
        ('Bearer realm="error=invalid_token", error="insufficient_scope"', False),
    ],
)
def test_which_401_challenges_bring_a_refresh(
    authority: Authority, challenge: str | None, refreshes: bool
) -> None:
    seen: list[str] = []

    def resource(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        headers = {"www-authenticate": challenge} if challenge else {}
        return httpx.Response(401 if len(seen) == 1 else 200, headers=headers)

    auth = authority.service()
    with httpx.Client(transport=httpx.MockTransport(resource), auth=auth) as client:
        status = client.get("https://api.example.com/").status_code
    assert status == (200 if refreshes else 401)
    assert len(seen) == (2 if refreshes else 1)
    assert authority.provider.token_requests["client_credentials"] == (2 if refreshes else 1)
    assert len(set(seen)) == len(seen)  # a resend carries the new token


CONCURRENT = 50


def test_fifty_threads_share_one_token_request(authority: Authority) -> None:
    auth = authority.service()
    with (
        buttress.Client(base_url=authority.url, auth=auth) as client,
        ThreadPoolExecutor(CONCURRENT) as pool,
    ):
        statuses = list(pool.map(lambda _: client.get("/me").status_code, range(CONCURRENT)))
    assert statuses == [200] * CONCURRENT
    assert authority.provider.token_requests == {"client_credentials": 1}
    assert auth.refreshes == 1


async def test_fifty_tasks_share_one_token_request(authority: Authority) -> None:
    auth = authority.service()
    async with buttress.AsyncClient(base_url=authority.url, auth=auth) as client:
        responses = await asyncio.gather(*(client.get("/me") for _ in range(CONCURRENT)))
        assert [r.status_code for r in responses] == [200] * CONCURRENT
        assert authority.provider.token_requests == {"client_credentials": 1}
        authority.provider.revoke_access_tokens()  # all fifty meet invalid_token together
        responses = await asyncio.gather(*(client.get("/me") for _ in range(CONCURRENT)))
    assert [r.status_code for r in responses] == [200] * CONCURRENT
    assert authority.provider.token_requests == {"client_credentials": 2}


async def test_fifty_tasks_share_one_failed_token_request(authority: Authority) -> None:
    # Before, each waiting task tried again in turn once the refresh failed: fifty token
    # requests, the last caller waiting for all the others.
    auth = authority.service(client_secret="wrong-secret-value")
    async with buttress.AsyncClient(base_url=authority.url, auth=auth) as client:
        outcomes = await asyncio.gather(
            *(client.get("/me") for _ in range(CONCURRENT)), return_exceptions=True
        )
        assert {type(outcome) for outcome in outcomes} == {OAuth2Error}
        assert authority.provider.token_requests == {"client_credentials": 1}
        with pytest.raises(OAuth2Error):  # a later call tries again
            await client.get("/me")
    assert authority.provider.token_requests == {"client_credentials": 2}
    assert authority.app.hits["/me"] == 0


def test_fifty_threads_share_failed_token_requests(authority: Authority) -> None:
    auth = authority.service(client_secret="wrong-secret-value")
    together = threading.Barrier(CONCURRENT)

    def call(_: int) -> type[BaseException] | None:
        together.wait()
        try:
            client.get("/me")
        except OAuth2Error as exc:
            return type(exc)
        return None

    with (
        buttress.Client(base_url=authority.url, auth=auth) as client,
        ThreadPoolExecutor(CONCURRENT) as pool,
    ):
        assert set(pool.map(call, range(CONCURRENT))) == {OAuth2Error}
    # Tolerance: a thread that reaches the auth after a failed refresh has ended starts
    # another (on a busy machine a few may); before, every thread made its own: 50.
    assert authority.provider.token_requests["client_credentials"] < CONCURRENT // 5


# --- token endpoint errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "code", "status"),
    [
        ({"client_secret": "wrong-secret-value"}, "invalid_client", 401),
        ({"client_secret": "wrong-secret-value", "client_auth": "body"}, "invalid_client", 401),
        ({"scope": "users:admin"}, "invalid_scope", 400),
    ],
)
async def test_token_endpoint_errors_carry_the_oauth_code(
    make_client: MakeClient, authority: Authority, options: dict[str, Any], code: str, status: int
) -> None:
    # The token URL carries a secret of its own (a gateway's key).
    token_url = f"{authority.url}/oauth/token?api_key=url-key-2"
    client = make_client(
        base_url=authority.url, auth=authority.service(token_url=token_url, **options)
    )
    with pytest.raises(OAuth2Error) as refused:
        await client.get("/me")
    assert isinstance(refused.value, buttress.AuthenticationError)
    assert (refused.value.error, refused.value.status_code) == (code, status)
    assert code in str(refused.value)
    shown = str(refused.value) + repr(refused.value)
    for secret in ("wrong-secret-value", "url-key-2"):
        assert secret not in shown
    assert authority.app.hits["/me"] == 0  # nothing was sent without a token


@pytest.mark.parametrize("client_auth", ["basic", "body"])
def test_an_error_description_echoing_secrets_is_redacted(client_auth: Any) -> None:
    def careless(request: httpx.Request) -> httpx.Response:
        said = f"{request.headers.get('authorization')} {request.content.decode()}"
        return httpx.Response(400, json={"error": "invalid_grant", "error_description": said})

    auth = OAuth2(
        RefreshToken("refresh-token-value-1"),
        client_id="cli",
        client_secret="client-secret-value-2",
        client_auth=client_auth,
        token_url="https://id.example.com/token",
        http_options={"transport": httpx.MockTransport(careless)},
    )
    with pytest.raises(OAuth2Error) as refused:
        auth.fetch_token()
    shown = str(refused.value) + repr(refused.value) + str(refused.value.description)
    assert "[REDACTED]" in shown
    assert "refresh-token-value-1" not in shown
    assert "client-secret-value-2" not in shown
    assert base64.b64encode(b"cli:client-secret-value-2").decode() not in shown


def test_a_refused_refresh_token_forgets_only_itself() -> None:
    # A refresh beside this one (a sync and an async client sharing the auth) may store
    # the server's rotated refresh token while this one's, now stale, is refused: the
    # refused one is forgotten, not the successor (before, every later refresh failed).
    seen: list[str] = []

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        seen.append(form.get("refresh_token", form["grant_type"]))
        if form.get("refresh_token") == "rt-1":
            auth._refresh_token = SecretStr("rt-2")  # the other refresh's rotated token
            return httpx.Response(400, json={"error": "invalid_grant"})
        issued = {"access_token": f"at-{len(seen)}", "token_type": "Bearer"}
        if len(seen) == 1:
            issued["refresh_token"] = "rt-1"
        return httpx.Response(200, json=issued)

    auth = OAuth2(
        ClientCredentials(),
        client_id="svc",
        client_secret="client-secret-value",
        token_url="https://id.example.com/token",
        http_options={"transport": httpx.MockTransport(token_endpoint)},
    )
    for _ in range(3):
        auth.fetch_token()
    assert seen == ["client_credentials", "rt-1", "client_credentials", "rt-2"]


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (httpx.Response(200, text="<html>"), buttress.AuthenticationError, "without a JSON object"),
        (
            httpx.Response(200, json={"token_type": "Bearer"}),
            buttress.AuthenticationError,
            "a token",
        ),
        (
            httpx.Response(200, json={"access_token": "a", "token_type": "mac"}),
            buttress.AuthenticationError,
            "only bearer",
        ),
        (
            httpx.Response(
                200, json={"access_token": "a", "token_type": "bearer", "expires_in": "x"}
            ),
            buttress.AuthenticationError,
            "expires_in",
        ),
        (httpx.Response(503, text="down"), buttress.ServerError, "answered 503"),
    ],
)
def test_a_malformed_token_answer_is_a_clear_error(
    answer: httpx.Response, error: type[Exception], message: str
) -> None:
    auth = OAuth2(
        ClientCredentials(),
        client_id="svc",
        client_secret="client-secret-value",
        token_url="https://gw:url-password-1@id.example.com/token?api_key=url-key-2",
        http_options={"transport": httpx.MockTransport(lambda request: answer)},
    )
    with pytest.raises(error, match=message) as caught:
        auth.fetch_token()
    # The token endpoint's URL is shown as every URL in a message is: its secrets hidden.
    assert "id.example.com/token?api_key=[REDACTED]" in str(caught.value)
    assert "url-password-1" not in str(caught.value)
    assert "url-key-2" not in str(caught.value)


async def test_a_refused_refresh_token_is_an_error_not_a_retry(
    make_client: MakeClient, authority: Authority
) -> None:
    auth = OAuth2(
        RefreshToken("revoked-refresh-token"),
        client_id="demo-cli",
        token_url=f"{authority.url}/oauth/token",
    )
    client = make_client(base_url=authority.url, auth=auth)
    with pytest.raises(OAuth2Error, match="invalid_grant"):
        await client.get("/me")
    assert authority.provider.token_requests == {"refresh_token": 1}


async def test_an_unreachable_token_endpoint_is_a_connection_error(
    make_client: MakeClient, authority: Authority
) -> None:
    auth = authority.service(token_url="http://127.0.0.1:9/oauth/token")
    client = make_client(base_url=authority.url, auth=auth)
    with pytest.raises(buttress.ConnectionError):
        await client.get("/me")


@pytest.mark.parametrize(
    ("grant", "options", "message"),
    [
        (ClientCredentials(), {"token_url": "https://x.test"}, "needs a client_secret"),
        (ClientCredentials(), {"client_secret": "s"}, "token_url or issuer"),
        (DeviceCode(), {"token_url": "https://x.test", "issuer": "https://x.test"}, "not both"),
        (DeviceCode(), {"token_url": "https://x.test", "client_auth": "jwt"}, "'basic' or 'body'"),
        ("client_credentials", {"token_url": "https://x.test"}, "unknown OAuth2 grant"),
        (RefreshToken(""), {"token_url": "https://x.test"}, "empty credential"),
    ],
)
def test_bad_configuration_is_refused(grant: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(buttress.ConfigurationError, match=message):
        OAuth2(grant, client_id="c", **options)


# --- OpenID Connect discovery -----------------------------------------------------------------


async def test_discovery_finds_the_endpoints_once(
    make_client: MakeClient, authority: Authority
) -> None:
    auth = OAuth2(
        ClientCredentials(),
        client_id="demo-service",
        client_secret=SERVICE_SECRET,
        issuer=authority.url + "/",
        clock=authority.clock,
    )
    client = make_client(base_url=authority.url, auth=auth)
    await client.get("/me")
    authority.provider.revoke_access_tokens()
    assert (await client.get("/me")).status_code == 200
    assert authority.provider.token_requests["client_credentials"] == 2
    assert authority.app.hits["/.well-known/openid-configuration"] == 1


async def test_discovery_is_cached_as_http_says_then_asked_again(
    make_client: MakeClient, authority: Authority
) -> None:
    """The OpenID configuration passes our cache: kept for its max-age (3600 s), then refetched."""
    auth = OAuth2(
        ClientCredentials(),
        client_id="demo-service",
        client_secret=SERVICE_SECRET,
        issuer=authority.url,
        clock=authority.clock,
    )
    client = make_client(base_url=authority.url, auth=auth)
    await client.get("/me")
    authority.clock.advance(3601)  # the token and the stored configuration have both expired
    assert (await client.get("/me")).status_code == 200
    assert authority.provider.token_requests["client_credentials"] == 2
    assert authority.app.hits["/.well-known/openid-configuration"] == 2


async def test_discovery_of_an_unknown_issuer_fails_clearly(
    make_client: MakeClient, authority: Authority
) -> None:
    auth = OAuth2(DeviceCode(), client_id="demo-cli", issuer=f"{authority.url}/elsewhere")
    client = make_client(base_url=authority.url, auth=auth)
    with pytest.raises(buttress.NotFoundError, match="openid-configuration"):
        await client.get("/me")


# --- authorization code with PKCE -------------------------------------------------------------


async def test_browser_login_with_pkce_then_refresh_token(
    make_client: MakeClient, authority: Authority, browser: Browser
) -> None:
    auth = OAuth2(
        AuthorizationCode(open_browser=browser),
        client_id="demo-cli",
        issuer=authority.url,
        scope="users:read",
        clock=authority.clock,
    )
    client = make_client(base_url=authority.url, auth=auth)
    me = (await client.get("/me")).json()
    assert (me["client_id"], me["scope"]) == ("demo-cli", "users:read")
    (opened,) = browser.opened
    assert "code_challenge_method=S256" in opened
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in opened
    authority.clock.advance(LIFETIME)  # expired: the refresh token renews it, no new login
    assert (await client.get("/me")).status_code == 200
    assert len(browser.opened) == 1
    assert authority.provider.token_requests == {"authorization_code": 1, "refresh_token": 1}


async def test_a_revoked_refresh_token_means_a_new_login(
    make_client: MakeClient, authority: Authority, browser: Browser
) -> None:
    login = AuthorizationCode(open_browser=browser)
    auth = OAuth2(login, client_id="demo-cli", issuer=authority.url, clock=authority.clock)
    client = make_client(base_url=authority.url, auth=auth)
    await client.get("/me")
    authority.provider.revoke_refresh_tokens()
    authority.clock.advance(LIFETIME)
    assert (await client.get("/me")).status_code == 200
    assert len(browser.opened) == 2
    assert authority.provider.token_requests == {"authorization_code": 2, "refresh_token": 1}


async def test_a_refresh_token_held_is_exchanged_and_followed_when_rotated(
    make_client: MakeClient, authority: Authority, browser: Browser
) -> None:
    store = MemoryTokenStore()
    login = OAuth2(
        AuthorizationCode(open_browser=browser),
        client_id="demo-cli",
        issuer=authority.url,
        store=store,
    )
    login.fetch_token()
    held = store.load()
    assert held is not None
    assert held.refresh_token is not None
    auth = OAuth2(
        RefreshToken(held.refresh_token),
        client_id="demo-cli",
        token_url=f"{authority.url}/oauth/token",
        clock=authority.clock,
    )
    client = make_client(base_url=authority.url, auth=auth)
    assert (await client.get("/me")).status_code == 200
    authority.clock.advance(LIFETIME)  # the server rotated the refresh token: the new one works
    assert (await client.get("/me")).status_code == 200
    assert authority.provider.token_requests == {"authorization_code": 1, "refresh_token": 2}


async def test_a_refused_login_is_an_authentication_error(
    make_client: MakeClient, authority: Authority, browser: Browser
) -> None:
    authority.provider.consent = False
    auth = OAuth2(
        AuthorizationCode(open_browser=browser), client_id="demo-cli", issuer=authority.url
    )
    client = make_client(base_url=authority.url, auth=auth)
    with pytest.raises(OAuth2Error, match="access_denied") as refused:
        await client.get("/me")
    assert refused.value.error == "access_denied"
    assert authority.provider.token_requests == {}


def test_a_login_nobody_completes_times_out(authority: Authority) -> None:
    def walk_away(url: str) -> bool:
        authority.clock.advance(301)  # the user never comes back
        return True

    login = AuthorizationCode(open_browser=walk_away, timeout=300)
    auth = OAuth2(login, client_id="demo-cli", issuer=authority.url, clock=authority.clock)
    with pytest.raises(
        buttress.AuthenticationError, match="no login redirect arrived within 300 s"
    ):
        auth.fetch_token()


def test_a_redirect_with_another_state_is_refused(authority: Authority) -> None:
    visits: list[threading.Thread] = []

    def forged(url: str) -> bool:  # a page that sends its own code to the listener
        redirect = httpx.URL(url).params["redirect_uri"]
        visits.append(threading.Thread(target=httpx.get, args=(f"{redirect}?code=evil&state=x",)))
        visits[0].start()
        return True

    auth = OAuth2(
        AuthorizationCode(open_browser=forged), client_id="demo-cli", issuer=authority.url
    )
    with pytest.raises(buttress.AuthenticationError, match="another state"):
        auth.fetch_token()
    visits[0].join(timeout=10)
    assert authority.provider.token_requests == {}


# --- device authorization ---------------------------------------------------------------------


class WaitingDevice(FakeClock):
    """The device's clock; while it waits, the user acts on their phone."""

    def __init__(self, provider: OAuthProvider, url: str, deny: bool = False) -> None:
        super().__init__()
        self.provider, self.url, self.deny = provider, url, deny
        self.prompts: list[DeviceCodePrompt] = []

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if len(self.sleeps) == 1:  # the server is busy: it asks the device to slow down
            self.provider.slow_down(self.prompts[0].user_code)
        if len(self.sleeps) == 3:  # the user opens the page, types the code, and answers
            prompt = self.prompts[0]
            answer = {"user_code": prompt.user_code, **({"deny": "1"} if self.deny else {})}
            httpx.get(prompt.verification_uri, params=answer).raise_for_status()


@pytest.mark.parametrize("deny", [False, True])
async def test_device_login_polls_at_the_interval_asked(
    make_client: MakeClient, deny: bool
) -> None:
    provider = OAuthProvider()
    with DemoServer(DemoAPI(oauth=provider)) as server:
        clock = WaitingDevice(provider, server.url, deny=deny)
        provider.clock = clock
        grant = DeviceCode(prompt=clock.prompts.append)
        auth = OAuth2(grant, client_id="demo-cli", issuer=server.url, clock=clock)
        client = make_client(base_url=server.url, auth=auth)
        if deny:
            with pytest.raises(OAuth2Error) as refused:
                await client.get("/me")
            assert refused.value.error == "access_denied"
        else:
            assert (await client.get("/me")).json()["client_id"] == "demo-cli"
    (prompt,) = clock.prompts
    assert prompt.verification_uri == f"{server.url}/oauth/device"
    assert clock.sleeps == [5, 10, 10]  # slow_down adds 5 s to every later wait
    # slow_down, authorization_pending, then the answer
    assert provider.token_requests == {DEVICE_GRANT: 3}


# --- persistence ------------------------------------------------------------------------------


def test_a_file_store_keeps_the_login_for_the_next_process(
    authority: Authority, browser: Browser, tmp_path: Path
) -> None:
    path = tmp_path / "token.json"

    def cli() -> OAuth2:
        grant = AuthorizationCode(open_browser=browser)
        store = FileTokenStore(path)
        return OAuth2(
            grant, client_id="demo-cli", issuer=authority.url, store=store, clock=authority.clock
        )

    first = cli()
    with buttress.Client(base_url=authority.url, auth=first) as client:
        assert client.get("/me").status_code == 200
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = cli()  # a new process: no login, the saved token is used
    with buttress.Client(base_url=authority.url, auth=second) as client:
        assert client.get("/me").status_code == 200
        authority.clock.advance(LIFETIME)
        assert client.get("/me").status_code == 200  # the saved refresh token renews it
    assert len(browser.opened) == 1
    assert authority.provider.token_requests == {"authorization_code": 1, "refresh_token": 1}
    shown = repr(first) + repr(FileTokenStore(path).load()) + repr(FileTokenStore(path))
    saved = FileTokenStore(path).load()
    assert saved is not None
    assert saved.refresh_token is not None
    assert saved.access_token.get_secret_value() not in shown
    assert saved.refresh_token.get_secret_value() not in shown


def test_a_foreign_token_file_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    path.write_text("[1, 2]")
    with pytest.raises(buttress.ConfigurationError, match="not one buttress wrote"):
        FileTokenStore(path).load()


# --- the demo authorization server keeps to the RFCs ------------------------------------------

SERVICE = ("demo-service", SERVICE_SECRET)


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"data": {"grant_type": "password"}, "auth": SERVICE}, 400, "unsupported_grant_type"),
        ({"json": {"grant_type": "client_credentials"}, "auth": SERVICE}, 400, "invalid_request"),
        (
            {"data": {"grant_type": "client_credentials", "client_secret": "x"}, "auth": SERVICE},
            400,
            "invalid_request",  # two ways of authenticating at once (RFC 6749 section 2.3)
        ),
        (
            {"data": {"grant_type": "client_credentials", "client_id": "nobody"}},
            401,
            "invalid_client",
        ),
        ({"data": {"grant_type": "refresh_token"}, "auth": SERVICE}, 400, "unauthorized_client"),
        (
            {"data": {"grant_type": "client_credentials", "client_id": "demo-cli"}},
            400,
            "unauthorized_client",
        ),
    ],
)
def test_the_token_endpoint_refuses_as_rfc_6749_says(
    authority: Authority, kwargs: dict[str, Any], status: int, error: str
) -> None:
    answer = httpx.post(f"{authority.url}/oauth/token", **kwargs)
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert answer.headers["cache-control"] == "no-store"


def test_an_authorization_code_needs_its_verifier_and_works_once(authority: Authority) -> None:
    def code_for(challenge: str) -> str:
        login = httpx.get(
            f"{authority.url}/oauth/authorize",
            params={
                "response_type": "code",
                "client_id": "demo-cli",
                "redirect_uri": "http://127.0.0.1:1/callback",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": "s",
            },
        )
        assert login.status_code == 302
        return httpx.URL(login.headers["location"]).params["code"]

    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    code = code_for(challenge.rstrip(b"=").decode())

    def exchange(code_verifier: str) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "client_id": "demo-cli",
            "code": code,
            "redirect_uri": "http://127.0.0.1:1/callback",
            "code_verifier": code_verifier,
        }
        return httpx.post(f"{authority.url}/oauth/token", data=form)

    assert exchange("w" * 50).json()["error"] == "invalid_grant"  # the code is spent, too
    code = code_for(challenge.rstrip(b"=").decode())
    assert exchange(verifier).status_code == 200
    assert exchange(verifier).json()["error"] == "invalid_grant"  # used once only
