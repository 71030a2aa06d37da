"""Keeping secrets out of messages, reprs and logs.

One place decides what a secret looks like, so the exception messages, the
logging layer and the cassettes all hide the same things.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import httpx

__all__ = ["REDACTED", "SENSITIVE_HEADERS", "SENSITIVE_PARAMS", "redact_headers", "redact_url"]

REDACTED = "[REDACTED]"

SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-amz-security-token",
    }
)

SENSITIVE_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "key",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "secret",
        "password",
        "passwd",
        "signature",
        "sig",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "auth",
        "session",
    }
)

_SENSITIVE_PARAM_RE = re.compile(r"(token|secret|password|passwd|api[-_]?key|signature)", re.I)


def is_sensitive_param(name: str, extra: Iterable[str] = ()) -> bool:
    """True when a query parameter called ``name`` probably holds a secret."""
    lowered = name.lower()
    return (
        lowered in SENSITIVE_PARAMS
        or lowered in {e.lower() for e in extra}
        or bool(_SENSITIVE_PARAM_RE.search(lowered))
    )


def redact_url(url: httpx.URL | str, extra_params: Iterable[str] = ()) -> str:
    """Return ``url`` as text with its password and secret query values hidden.

    Example:
        >>> redact_url("https://u:pw@api.example.com/x?api_key=abc&page=2")
        'https://u:[REDACTED]@api.example.com/x?api_key=[REDACTED]&page=2'
    """
    url = httpx.URL(url)
    password = url.password
    if password:
        url = url.copy_with(userinfo=url.userinfo.partition(b":")[0] + b":" + _PASSWORD_MARK)
    text = _redact_query(url, extra_params)
    return text.replace(_PASSWORD_MARK.decode(), REDACTED) if password else text


_PASSWORD_MARK = b"__buttress_redacted__"


def _redact_query(url: httpx.URL, extra_params: Iterable[str]) -> str:
    if url.query:
        extra = tuple(extra_params)
        params = [
            (k, REDACTED if is_sensitive_param(k, extra) else v)
            for k, v in url.params.multi_items()
        ]
        if any(v == REDACTED for _, v in params):
            # Build the query by hand so the marker stays readable (not %5B...%5D).
            query = "&".join(
                f"{k}={v}" if v == REDACTED else str(httpx.QueryParams({k: v})) for k, v in params
            )
            text = str(url.copy_with(query=None))
            return f"{text}?{query}"
    return str(url)


def redact_headers(
    headers: httpx.Headers | Iterable[tuple[str, str]], extra: Iterable[str] = ()
) -> dict[str, str]:
    """Return ``headers`` as a dict with credential values replaced by ``[REDACTED]``.

    Example:
        >>> redact_headers([("Authorization", "Bearer s3cret"), ("Accept", "*/*")])
        {'Authorization': '[REDACTED]', 'Accept': '*/*'}
    """
    names = SENSITIVE_HEADERS | {e.lower() for e in extra}
    items = headers.items() if isinstance(headers, httpx.Headers) else headers
    return {k: (REDACTED if k.lower() in names else v) for k, v in items}
