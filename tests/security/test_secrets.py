"""No credential ever shows up in a log record, a formatted line, an exception or a repr.

Every kind of credential (bearer, basic, API key in a header and in the query,
cookies, a URL password, proxy credentials) goes through every log level, with
bodies logged, through the logging layer and LoggingMiddleware, the standard and
the JSON formatters, the exceptions raised, and the reprs of the objects.
"""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import buttress
from buttress import AuthMiddleware, JSONFormatter, LoggingConfig, LoggingMiddleware
from buttress.testing import DemoServer
from buttress.transports import LoggingTransport
from tests.conftest import Either

pytestmark = pytest.mark.anyio

BEARER = "bearer-SECRET-1a"
BASIC = "basic-SECRET-2b"
API_KEY_HEADER = "apikey-SECRET-3c"
API_KEY_QUERY = "query-SECRET-4d"
COOKIE = "cookie-SECRET-5e"
PROXY = "proxy-SECRET-6f"
URL_PASSWORD = "urlpw-SECRET-7g"
SET_COOKIE = "setcookie-SECRET-8h"
SECRETS = [
    BEARER,
    BASIC,
    base64.b64encode(f"alice:{BASIC}".encode()).decode(),
    API_KEY_HEADER,
    API_KEY_QUERY,
    COOKIE,
    PROXY,
    URL_PASSWORD,
    SET_COOKIE,
]

PLAIN = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s %(__dict__)s")


def _texts(records: list[logging.LogRecord]) -> list[str]:
    texts = []
    for record in records:
        record.__dict__["__dict__"] = dict(record.__dict__)  # every attribute, formatted
        texts += [PLAIN.format(record), JSONFormatter().format(record), repr(record.__dict__)]
    return texts


def _exception_texts(error: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(type(error), error, error.__traceback__))]
    exc: BaseException | None = error
    while exc is not None:
        texts += [str(exc), repr(exc), repr(exc.args)]
        exc = exc.__cause__ or exc.__context__
    return texts


def _assert_clean(texts: list[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked in: {text[:300]}"


async def test_no_credential_anywhere(
    make_client: Callable[..., Either], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")
    texts: list[str] = []
    config = LoggingConfig(log_bodies=True, body_limit=100_000, slow_threshold=1e-9)
    host = demo.url.removeprefix("http://")
    calls: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
        ({"auth": ("bearer", BEARER)}, "/echo", {}),
        ({"auth": ("alice", BASIC)}, "/echo", {}),
        ({"auth": ("api_key", API_KEY_HEADER)}, "/echo", {}),
        ({"auth": buttress.APIKeyAuth(API_KEY_QUERY, param="api_key")}, "/echo", {}),
        ({"cookies": {"session": COOKIE}}, "/echo", {}),
        ({}, "/echo", {"params": {"access_token": API_KEY_QUERY}}),
        ({}, f"http://alice:{URL_PASSWORD}@{host}/echo", {}),
        ({"auth": ("bearer", BEARER)}, "/status/401", {"params": {"api_key": API_KEY_QUERY}}),
        ({"auth": ("bearer", BEARER)}, "/status/503", {"params": {"token": API_KEY_QUERY}}),
    ]
    quiet = config.model_copy(update={"slow_threshold": None})
    for i, (client_kwargs, url, call_kwargs) in enumerate(calls):
        client = make_client(
            base_url=demo.url,
            logging=config if i % 2 else quiet,  # slow (WARNING) and normal (INFO) records
            # The middleware writes the record of the requests it sees, in place of the layer's.
            middleware=[LoggingMiddleware(level="DEBUG")] if i % 3 == 0 else [],
            **client_kwargs,
        )
        texts.append(repr(client.client))
        try:
            response = await client.get(url, **call_kwargs)
            assert response.status_code == 200
        except buttress.HTTPError as exc:
            texts += _exception_texts(exc)

    # Credentials in a proxy URL: the connection fails, the error is logged and raised.
    for cls, transport_cls in (
        (buttress.Client, httpx.HTTPTransport),
        (buttress.AsyncClient, httpx.AsyncHTTPTransport),
    ):
        transport: Any = transport_cls(proxy=f"http://puser:{PROXY}@127.0.0.1:1")
        client = Either(cls(base_url="http://api.invalid", logging=config, transport=transport))
        texts.append(repr(client.client))
        with pytest.raises(buttress.ConnectionError) as caught:
            await client.get("/users", headers={"Proxy-Authorization": f"Basic {PROXY}"})
        texts += _exception_texts(caught.value)
        await client.aclose()

    texts += [repr(AuthMiddleware(("bearer", BEARER))), repr(buttress.BearerAuth(BEARER))]
    texts += [repr(buttress.APIKeyAuth(API_KEY_HEADER)), repr(config)]

    levels = {r.levelno for r in caplog.records}
    assert {logging.DEBUG, logging.INFO, logging.WARNING} <= levels
    assert {r.name for r in caplog.records} >= {"buttress.request", "buttress.middleware"}
    assert any(getattr(r, "response_body", "").count("[REDACTED]") for r in caplog.records)
    texts += _texts(caplog.records)
    _assert_clean(texts)


def test_set_cookie_and_bodies_on_a_plain_httpx_client(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"Set-Cookie": f"session={SET_COOKIE}; HttpOnly"},
            json={"echo": request.headers["Authorization"]},
        )

    transport = LoggingTransport(httpx.MockTransport(handler), LoggingConfig(log_bodies=True))
    with httpx.Client(transport=transport) as client:
        client.get("https://api.example.com/me", headers={"Authorization": f"Bearer {BEARER}"})
    _assert_clean(_texts(caplog.records))
