"""Keeping secrets out of messages, reprs and logs.

One place decides what a secret looks like, so the exception messages, the
logging layer and the cassettes all hide the same things.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import cast
from urllib.parse import unquote_plus

import httpx

__all__ = [
    "REDACTED",
    "SENSITIVE_HEADERS",
    "SENSITIVE_PARAMS",
    "Redactor",
    "redact_headers",
    "redact_url",
]

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
_USERINFO_RE = re.compile(r"(?<=://)([^/\s:@]*):[^/\s@]+@")
_SENSITIVE_HEADER_RE = re.compile(r"(auth|token|secret|password|api[-_]?key|cookie|session)", re.I)


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

    Examples:
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
    headers: httpx.Headers | Mapping[str, str] | Iterable[tuple[str, str]],
    extra: Iterable[str] = (),
) -> dict[str, str]:
    """Return ``headers`` as a dict with credential values replaced by ``[REDACTED]``.

    Examples:
        >>> redact_headers([("Authorization", "Bearer s3cret"), ("Accept", "*/*")])
        {'Authorization': '[REDACTED]', 'Accept': '*/*'}
    """
    extra_names = {e.lower() for e in extra}
    items: Iterable[tuple[str, str]] = (
        cast(Iterable[tuple[str, str]], headers.items())
        if isinstance(headers, httpx.Headers | Mapping)
        else headers
    )
    return {k: (REDACTED if is_sensitive_header(k, extra_names) else v) for k, v in items}


def is_sensitive_header(name: str, extra: Iterable[str] = ()) -> bool:
    """True when a header called ``name`` probably holds a credential.

    Examples:
        >>> is_sensitive_header("X-Upstream-Token"), is_sensitive_header("Accept")
        (True, False)
    """
    lowered = name.lower()
    return (
        lowered in SENSITIVE_HEADERS
        or lowered in extra
        or bool(_SENSITIVE_HEADER_RE.search(lowered))
    )


class Redactor:
    """Redaction with a caller's additions: header names, query parameters, regex patterns.

    Besides names, it learns the secret *values* a request carries (credential
    headers, cookie values, secret query values, the URL's password) so that
    they are scrubbed from any other text too: bodies, exception messages.

    Examples:
        >>> r = Redactor(headers=["X-Tenant-Key"], patterns=[r"sk_live_\\w+"])
        >>> r.headers({"X-Tenant-Key": "abc", "Accept": "*/*"})
        {'X-Tenant-Key': '[REDACTED]', 'Accept': '*/*'}
        >>> r.text("charge with sk_live_123 failed")
        'charge with [REDACTED] failed'
    """

    __slots__ = ("_headers", "_params", "_patterns")

    def __init__(
        self,
        headers: Iterable[str] = (),
        params: Iterable[str] = (),
        patterns: Iterable[str | re.Pattern[str]] = (),
    ) -> None:
        self._headers = frozenset(h.lower() for h in headers)
        self._params = tuple(params)
        self._patterns = tuple(re.compile(p) if isinstance(p, str) else p for p in patterns)

    def url(self, url: httpx.URL | str) -> str:
        """``url`` as text, secrets hidden (see :func:`redact_url`)."""
        if isinstance(url, httpx.URL) and not self._patterns:
            text = str(url)
            if "?" not in text and "@" not in text:  # no query, no user info: nothing to hide
                return text
        return self.text(redact_url(url, self._params))

    def headers(
        self, headers: httpx.Headers | Mapping[str, str] | Iterable[tuple[str, str]]
    ) -> dict[str, str]:
        """``headers`` as a dict, credential values hidden (see :func:`redact_headers`)."""
        found = redact_headers(headers, self._headers)
        return {k: self.text(v) for k, v in found.items()}

    def text(self, text: str, secrets: Iterable[str] = ()) -> str:
        """``text`` with URL passwords, the given secret values and the patterns replaced."""
        text = _USERINFO_RE.sub(rf"\1:{REDACTED}@", text)
        for secret in secrets:
            if secret:
                text = text.replace(secret, REDACTED)
        for pattern in self._patterns:
            text = pattern.sub(REDACTED, text)
        return text

    def secrets_of(self, request: httpx.Request) -> list[str]:
        """The secret values ``request`` carries, longest first, for :meth:`text`."""
        found: list[str] = []
        for name, value in request.headers.items():
            if is_sensitive_header(name, self._headers):
                found.append(value)
                scheme, _, credential = value.partition(" ")
                if credential and scheme.isalpha():
                    found.append(credential)
                if name.lower() == "cookie":
                    found += [c.partition("=")[2] for c in value.split(";")]
        url = request.url
        if url.password:
            found.append(url.password)
        found += [v for k, v in url.params.multi_items() if is_sensitive_param(k, self._params)]
        return sorted({s.strip() for s in found if len(s.strip()) >= 4}, key=len, reverse=True)

    def __repr__(self) -> str:
        return (
            f"Redactor(headers={sorted(self._headers)!r}, params={list(self._params)!r}, "
            f"patterns={[p.pattern for p in self._patterns]!r})"
        )
