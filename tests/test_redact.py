"""The vocabulary of secrets: names, known values, what requests carry and auth declares."""

from __future__ import annotations

import base64
import inspect
import logging
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

import buttress
from buttress._extensions import CREDENTIAL_HEADERS_KEY
from buttress._network import shown as shown_proxy
from buttress._redact import (
    REDACTED,
    Redactor,
    declare,
    declared_by,
    is_sensitive_header,
    redact_headers,
    redact_url,
    userinfo_secrets,
)
from buttress.policies.logging import (
    THIRD_PARTY_LOGGERS,
    RedactingFilter,
    done,
    redact_third_party_records,
    sending,
)
from tests.servers import free_port

pytestmark = pytest.mark.anyio


def test_redact_url_hides_password_and_secret_params() -> None:
    text = redact_url("https://u:pw@api.test/p?access_token=abc&page=2&my_client_secret=x")
    assert "pw" not in text.replace("api", "")
    assert "abc" not in text
    assert "=x" not in text
    assert "page=2" in text
    assert text.count(REDACTED) == 3


def test_redact_url_leaves_plain_urls_alone() -> None:
    assert redact_url(httpx.URL("https://api.test/p?page=2")) == "https://api.test/p?page=2"


def test_extra_params_and_headers() -> None:
    assert "zzz" not in redact_url("https://api.test/?custom=zzz", extra_params=["custom"])
    headers = redact_headers(httpx.Headers({"X-Custom": "1", "Cookie": "c"}), extra=["x-custom"])
    assert headers == {"x-custom": REDACTED, "cookie": REDACTED}


def test_redactor_url_hides_what_redact_url_hides() -> None:
    redactor = Redactor(params=["custom"])
    plain = httpx.URL("https://api.test/users/1#top")
    assert redactor.url(plain) == "https://api.test/users/1#top"
    secret = httpx.URL("https://u:pw@api.test/p?custom=zzz&page=2")
    assert redactor.url(secret) == f"https://u:{REDACTED}@api.test/p?custom={REDACTED}&page=2"
    patterned = Redactor(patterns=[r"users/\d+"])
    assert patterned.url(plain) == f"https://api.test/{REDACTED}#top"


def test_known_values_are_hidden_wherever_they_appear() -> None:
    redactor = Redactor(values=["s3cret-value", SecretStr("key/with+symbols")])
    text = redactor.text("got s3cret-value and key%2Fwith%2Bsymbols in /x/s3cret-value")
    assert text == f"got {REDACTED} and {REDACTED} in /x/{REDACTED}"
    assert redactor.url(httpx.URL("https://api.test/keys/s3cret-value")) == (
        f"https://api.test/keys/{REDACTED}"
    )
    assert "s3cret" not in repr(redactor)
    assert "values=" in repr(redactor)


def test_values_shorter_than_four_characters_are_not_searched() -> None:
    assert Redactor(values=["pw"]).text("pwd: pw") == "pwd: pw"


def test_body_fields_are_hidden_in_json_and_forms() -> None:
    text = '{"user": "ada", "password": "hunter22", "client_secret": 42} token=abc&page=2'
    assert Redactor().text(text) == (
        f'{{"user": "ada", "password": "{REDACTED}", "client_secret": {REDACTED}}} '
        f"token={REDACTED}&page=2"
    )
    assert Redactor(params=["pin"]).text("pin=1234&x=1") == f"pin={REDACTED}&x=1"


@pytest.mark.parametrize(
    "field",
    [
        "accessToken",
        "AccessToken",
        "access-token",
        "secretKey",
        "SecretAccessKey",
        "authorization",
        "x_api_key",
        "code_verifier",
        "client_assertion",
    ],
)
def test_a_body_field_is_known_whatever_its_case_and_separators(field: str) -> None:
    assert Redactor().text(f'{{"{field}": "v4lue-1", "page": 2}}') == (
        f'{{"{field}": "{REDACTED}", "page": 2}}'
    )
    assert Redactor(params=["pin_code"]).text("pinCode=1234") == f"pinCode={REDACTED}"


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("Location", "/dl?X-Amz-Signature=abc123&v=2", f"/dl?X-Amz-Signature={REDACTED}&v=2"),
        (
            "Location",
            "https://s3.test/r.csv?X-Amz-Security-Token=tok-1&X-Amz-Credential=AKIA1",
            f"https://s3.test/r.csv?X-Amz-Security-Token={REDACTED}&X-Amz-Credential={REDACTED}",
        ),
        (
            "Link",
            '</items?page=2&token=t-1>; rel="next"',
            f'</items?page=2&token={REDACTED}>; rel="next"',
        ),
        ("Content-Location", "/a?b=1", "/a?b=1"),
        ("Ocp-Apim-Subscription-Key", "azure-key-1", REDACTED),
        ("X-Functions-Key", "fn-key-1", REDACTED),
        ("Idempotency-Key", "op-42", "op-42"),
        ("Keep-Alive", "timeout=5", "timeout=5"),
        ("X-Hub-Signature-256", "sha256=abcd", REDACTED),
        ("WWW-Authenticate", 'Bearer realm="api"', 'Bearer realm="api"'),
    ],
)
def test_a_header_value_is_shown_without_its_secrets(name: str, value: str, shown: str) -> None:
    assert Redactor().header_value(name, value) == shown
    assert Redactor().headers([(name, value)]) == {name: shown}


def test_a_whole_text_keeps_words_an_excerpt_would_hide() -> None:
    # An excerpt's end may be a secret cut in two; a whole body's is an ordinary word.
    redactor = Redactor(values=["2024-abcdef"])
    assert redactor.scrub("build 2024") == f"build {REDACTED}"
    assert redactor.scrub("build 2024", excerpt=False) == "build 2024"
    assert redactor.scrub("key 2024-abcdef", excerpt=False) == f"key {REDACTED}"


def test_a_secret_cut_by_an_excerpt_is_hidden_at_either_end() -> None:
    redactor = Redactor(values=["0123456789-secret"])
    assert redactor.scrub("invalid key 0123456789-se") == f"invalid key {REDACTED}"
    assert redactor.scrub("789-secret was refused") == f"{REDACTED} was refused"
    assert redactor.scrub('{"password": "hunter2 and mo') == f'{{"password": "{REDACTED}"'


def test_scrub_hides_every_value_a_request_carries() -> None:
    basic = base64.b64encode(b"alice:basic-pw-1").decode()
    request = httpx.Request(
        "GET",
        "https://bob:url-pw-22@api.test/x?api_key=query-key-3&page=2",
        headers={"Authorization": f"Basic {basic}", "Cookie": "a=cookie-44; b=cookie-55"},
    )
    echoed = f"basic-pw-1 {basic} url-pw-22 query-key-3 cookie-44 cookie-55 page"
    assert Redactor().scrub(echoed, request) == " ".join([REDACTED] * 6 + ["page"])


def test_scrub_redacts_urls_and_python_header_pairs_in_free_text() -> None:
    text = "GET https://a.test/x?sig=abc&page=2 [(b'set-cookie', b'sid=1'), (b'etag', b'v1')]"
    assert Redactor(params=["sig"]).scrub(text) == (
        f"GET https://a.test/x?sig={REDACTED}&page=2 "
        f"[(b'set-cookie', b'{REDACTED}'), (b'etag', b'v1')]"
    )


def test_challenges_are_not_credentials() -> None:
    assert not is_sensitive_header("WWW-Authenticate")
    assert not is_sensitive_header("Proxy-Authenticate")
    assert is_sensitive_header("Proxy-Authorization")
    assert is_sensitive_header("WWW-Authenticate", {"www-authenticate"})  # the user decides


def test_merged_hides_what_both_hide_and_reuses_what_it_can() -> None:
    a, b = Redactor(headers=["X-A"], values=["value-aaaa"]), Redactor(params=["sig"])
    merged = a.merged(b)
    assert merged.is_sensitive_header("x-a")
    assert merged.is_sensitive_param("sig")
    assert merged.text("value-aaaa sig=1") == f"{REDACTED} sig={REDACTED}"
    assert a.merged(b) is merged  # long-lived vocabularies meet many times: built once
    assert merged.merged(a) is merged
    assert a.merged(None) is a
    assert Redactor().merged(b) is b


def test_for_request_reads_the_declared_vocabulary_and_the_marked_headers() -> None:
    request = httpx.Request("GET", "https://a.test/?q=k3y-value", headers={"X-Shop": "shop-k3y"})
    assert Redactor.for_request(request).url(request.url).endswith("q=k3y-value")
    declare(request, Redactor(params=["q"]))
    request.extensions[CREDENTIAL_HEADERS_KEY] = ("x-shop",)
    vocabulary = Redactor.for_request(request, Redactor(headers=["X-Base"]))
    assert vocabulary.url(request.url) == f"https://a.test/?q={REDACTED}"
    assert vocabulary.headers(request.headers)["x-shop"] == REDACTED
    assert vocabulary.is_sensitive_header("x-base")
    assert vocabulary.secrets_of(request) == ["k3y-value", "shop-k3y"]


def test_declared_by_knows_our_auth_and_httpx_basic_and_digest() -> None:
    shop = declared_by(buttress.APIKeyAuth("shop-key-1", header="X-Shop"))
    assert shop.headers({"X-Shop": "v"}) == {"X-Shop": REDACTED}
    assert shop.text("key shop-key-1") == f"key {REDACTED}"
    query = declared_by(buttress.APIKeyAuth("query-key-2", param="q"))
    assert query.url("https://a.test/?q=query-key-2") == f"https://a.test/?q={REDACTED}"
    assert declared_by(httpx.BasicAuth("alice", "basic-pw-3")).text("basic-pw-3") == REDACTED
    assert declared_by(httpx.DigestAuth("alice", "digest-pw-4")).text("digest-pw-4") == REDACTED
    assert declared_by(buttress.RefreshingAuth(lambda: "t", header="X-Grant")).is_sensitive_header(
        "x-grant"
    )
    assert declared_by(lambda request: request).text("anything") == "anything"


def test_userinfo_secrets_include_the_basic_credential_a_proxy_receives() -> None:
    encoded = base64.b64encode(b"bob:pr0xy-pw").decode()
    assert userinfo_secrets("http://bob:pr0xy-pw@proxy.test:3128") == ["pr0xy-pw", encoded]
    assert userinfo_secrets("http://proxy.test:3128") == []
    assert userinfo_secrets("http://[::1") == []  # not a URL: whoever uses it says so


def test_the_filter_scrubs_third_party_records_with_the_request_in_flight() -> None:
    request = httpx.Request("GET", "https://a.test/x", headers={"X-Shop": "shop-k3y-5"})
    request.extensions[CREDENTIAL_HEADERS_KEY] = ("x-shop",)
    message = "sent %s with (b'x-shop', b'shop-k3y-5') to %s"
    record = logging.LogRecord("httpcore.http11", logging.DEBUG, "", 0, message, ("it", "u"), None)
    token = sending(request)
    try:
        assert RedactingFilter().filter(record)
    finally:
        done(token)
    assert record.getMessage() == f"sent it with (b'x-shop', b'{REDACTED}') to u"
    outside = logging.LogRecord(
        "httpx", logging.INFO, "", 0, "GET %s", ("https://a.test/?x=shop-k3y-5",), None
    )
    RedactingFilter().filter(outside)  # no request in flight: default names only
    assert outside.getMessage() == "GET https://a.test/?x=shop-k3y-5"


def test_the_filter_is_attached_once_to_each_third_party_logger() -> None:
    redact_third_party_records()
    redact_third_party_records()
    for name in THIRD_PARTY_LOGGERS:
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, RedactingFilter) for f in filters) == 1, name


def test_a_field_inside_another_fields_value_is_found() -> None:
    text = '{"error": "bad password: hunter22", "detail": "see token=abc"}'
    assert Redactor().text(text) == (
        f'{{"error": "bad password: {REDACTED}", "detail": "see token={REDACTED}"}}'
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://ghp_token123@api.example.com/x", "https://[REDACTED]@api.example.com/x"),
        ("https://user%3Asecretpw@api.example.com/x", "https://[REDACTED]@api.example.com/x"),
        ("https://:secretpw@api.example.com/x", "https://[REDACTED]@api.example.com/x"),
        ("https://ada:secretpw@api.example.com/x", "https://ada:[REDACTED]@api.example.com/x"),
    ],
)
def test_userinfo_without_a_password_is_hidden_whole(url: str, shown: str) -> None:
    """A token sent as a user name, or a colon percent-encoded, must not pass as a name."""
    assert redact_url(url) == shown
    assert Redactor().text(f"GET {url} failed") == f"GET {shown} failed"
    proxy = httpx.URL(url.replace("https://", "http://").replace("/x", ""))
    assert "secretpw" not in shown_proxy(proxy)
    assert "token123" not in shown_proxy(proxy)


async def test_a_token_in_the_url_stays_out_of_the_error(mode: str) -> None:
    port = free_port()  # nothing listens: the request fails, naming its URL
    url = f"http://user%3Asecretpw@127.0.0.1:{port}/users"
    client: Any = (buttress.AsyncClient if mode == "async" else buttress.Client)(retry=False)
    try:
        with pytest.raises(buttress.ConnectionError) as caught:
            await _called(client.get(url))
    finally:
        await _called(client.aclose() if mode == "async" else client.close())
    assert "secretpw" not in str(caught.value)
    assert "secretpw" not in repr(caught.value)


async def _called(result: Any) -> Any:
    """The result of a sync call, or of an async one awaited."""
    return await result if inspect.isawaitable(result) else result
