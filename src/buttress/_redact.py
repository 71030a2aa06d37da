"""Keeping secrets out of messages, reprs and logs.

One place decides what a secret looks like, so the exception messages, the
logging layer and the cassettes all hide the same things.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

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

    Everything else (user name, host, path, other parameters, fragment) is kept
    exactly as the URL spells it.

    Example:
        >>> redact_url("https://u:pw@api.example.com/x?api_key=abc&page=2")
        'https://u:[REDACTED]@api.example.com/x?api_key=[REDACTED]&page=2'
    """
    parsed = httpx.URL(url)
    # Work on the normalised text: '#' then '?' delimit the fragment and the query in it.
    text, hash_sign, fragment = str(parsed).partition("#")
    text, question_mark, query = text.partition("?")
    if parsed.password:
        scheme_end = text.index("://") + 3
        authority_end = text.find("/", scheme_end)
        authority_end = len(text) if authority_end < 0 else authority_end
        userinfo, _, host = text[scheme_end:authority_end].rpartition("@")
        user = userinfo.partition(":")[0]
        text = f"{text[:scheme_end]}{user}:{REDACTED}@{host}{text[authority_end:]}"
    if query:
        extra = tuple(extra_params)
        pairs = []
        for pair in query.split("&"):
            name = pair.partition("=")[0]
            if is_sensitive_param(unquote_plus(name), extra):
                pair = f"{name}={REDACTED}"
            pairs.append(pair)
        query = "&".join(pairs)
    return f"{text}{question_mark}{query}{hash_sign}{fragment}"


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
