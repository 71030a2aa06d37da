"""The one vocabulary of secrets, and keeping them out of everything buttress writes.

What a secret looks like is decided here and nowhere else, so exception
messages, log records (ours and httpx's), cassettes, reprs, span attributes and
the cache key all hide the same things. The vocabulary has four sources:

- the defaults: credential headers (:data:`SENSITIVE_HEADERS` and names that
  look like one), secret query parameters (:data:`SENSITIVE_PARAMS`) and body
  fields (:data:`SENSITIVE_FIELDS`);
- what an auth object declares it sends (:func:`declared_by`): the header or
  query parameter of ``APIKeyAuth(header="X-Token")``, its key, a basic or
  digest password. While a request is sent, auth handlers also mark the headers
  they set (:data:`CREDENTIAL_HEADERS_KEY`);
- the secret values a client knows: its credentials, its proxy's and the
  ``base_url``'s passwords. A value is hidden wherever it appears, not only
  under a known name;
- what the user adds: ``LoggingConfig(redact_headers=..., redact_params=...,
  redact_patterns=...)``.

A client carries its vocabulary on every request it sends (extension
:data:`REDACTOR_KEY`), so any code holding a request, a layer or an exception
message, can ask :meth:`Redactor.for_request` what to hide.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, cast
from urllib.parse import quote, quote_plus, unquote_plus

import httpx

from ._extensions import CREDENTIAL_HEADERS_KEY, REDACTOR_KEY

if TYPE_CHECKING:  # imported by the exception tree: pydantic's model machinery stays unloaded
    from pydantic import SecretStr

__all__ = [
    "REDACTED",
    "SENSITIVE_FIELDS",
    "SENSITIVE_HEADERS",
    "SENSITIVE_PARAMS",
    "Redactor",
    "declare",
    "declared_by",
    "is_sensitive_header",
    "is_sensitive_param",
    "mark_credential_headers",
    "redact_headers",
    "redact_url",
    "userinfo_secrets",
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

SENSITIVE_FIELDS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "x_api_key",
        "api_secret",
        "authorization",
        "auth_token",
        "client_assertion",
        "code_verifier",
        "private_key",
        "secret_key",
        "secret_access_key",
        "session_token",
    }
)
"""Body fields (JSON keys, form fields) whose values are hidden in logged bodies and messages.

A field is matched whatever its case and separators: ``accessToken``, ``Access-Token``
and ``access_token`` are one name."""

_SENSITIVE_PARAM_RE = re.compile(r"(token|secret|password|passwd|api[-_]?key|signature)", re.I)
_USERINFO_RE = re.compile(r"(?<=://)([^/\s:@]*):[^/\s@]+@")
# Userinfo with no colon is a token sent as a user name (``https://TOKEN@host``), or a
# name whose colon was percent-encoded (``user%3Apassword``): all of it is hidden.
_LONE_USERINFO_RE = re.compile(r"(?<=://)[^/\s:@]+@")


def _hide_password(found: re.Match[str]) -> str:
    """``user:[REDACTED]@``; with no user name, the whole userinfo hidden."""
    return f"{found[1]}:{REDACTED}@" if found[1] else f"{REDACTED}@"


# A name ending in "key" is a vendor's API key (Ocp-Apim-Subscription-Key, X-Functions-Key).
_SENSITIVE_HEADER_RE = re.compile(
    r"(auth|token|secret|password|api[-_]?key|signature|cookie|session)|(^|[-_])key$", re.I
)
# Challenges name a scheme and a realm, not a credential, and a client must read them back;
# an idempotency key or a WebSocket nonce grants nothing and helps whoever reads a log.
_PUBLIC_HEADERS = frozenset(
    {"www-authenticate", "proxy-authenticate", "idempotency-key", "sec-websocket-key"}
)
_URL_IN_TEXT_RE = re.compile(r"\bhttps?://[^\s\"'<>]+\?[^\s\"'<>]+", re.I)
# In a header's value a URL with a query may also be relative: ``Location: /dl?sig=...``,
# ``Link: </items?token=...>; rel="next"``.
_URL_IN_HEADER_RE = re.compile(r"[^\s\"'<>?]*\?[^\s\"'<>]+")
# A header pair as Python prints it, as in httpcore's and hpack's debug records.
_HEADER_PAIR_RE = re.compile(r"\((b?)(['\"])([^'\"]+)\2, b?(['\"])(.*?)\4\)")
_MIN_SECRET = 4  # shorter values would scrub ordinary text ("pw" in "pwd")


def is_sensitive_param(name: str, extra: Iterable[str] = ()) -> bool:
    """True when a query parameter called ``name`` probably holds a secret.

    Examples:
        >>> is_sensitive_param("access_token"), is_sensitive_param("page")
        (True, False)
    """
    lowered = name.lower()
    return (
        lowered in SENSITIVE_PARAMS
        or lowered in {e.lower() for e in extra}
        or bool(_SENSITIVE_PARAM_RE.search(lowered))
    )


def is_sensitive_header(name: str, extra: Iterable[str] = ()) -> bool:
    """True when a header called ``name`` probably holds a credential.

    ``extra`` holds more names, lower-cased.

    Examples:
        >>> is_sensitive_header("X-Upstream-Token"), is_sensitive_header("Accept")
        (True, False)
    """
    lowered = name.lower()
    return (
        lowered in SENSITIVE_HEADERS
        or lowered in extra
        or (lowered not in _PUBLIC_HEADERS and bool(_SENSITIVE_HEADER_RE.search(lowered)))
    )


def redact_url(url: httpx.URL | str, extra_params: Iterable[str] = ()) -> str:
    """Return ``url`` as text with its password and secret query values hidden.

    Everything else (user name, host, path, other parameters, fragment) is kept
    exactly as the URL spells it, except userinfo with no password: a token sent as
    a user name, or a name whose colon was percent-encoded, is hidden whole.

    Examples:
        >>> redact_url("https://u:pw@api.example.com/x?api_key=abc&page=2")
        'https://u:[REDACTED]@api.example.com/x?api_key=[REDACTED]&page=2'
        >>> redact_url("https://ghp_abc123@api.example.com/x")
        'https://[REDACTED]@api.example.com/x'
    """
    parsed = httpx.URL(url)
    # Work on the normalised text: '#' then '?' delimit the fragment and the query in it.
    text, hash_sign, fragment = str(parsed).partition("#")
    text, question_mark, query = text.partition("?")
    if parsed.userinfo:
        scheme_end = text.index("://") + 3
        authority_end = text.find("/", scheme_end)
        authority_end = len(text) if authority_end < 0 else authority_end
        userinfo, _, host = text[scheme_end:authority_end].rpartition("@")
        user, colon, _ = userinfo.partition(":")
        shown = f"{user}:{REDACTED}" if colon and user else REDACTED
        text = f"{text[:scheme_end]}{shown}@{host}{text[authority_end:]}"
    return f"{text}{question_mark}{_redact_query(query, extra_params)}{hash_sign}{fragment}"


def _redact_query(query: str, extra_params: Iterable[str]) -> str:
    """A query string as spelled, the values of its secret parameters hidden."""
    if not query:
        return query
    extra = tuple(extra_params)
    pairs = []
    for pair in query.split("&"):
        name = pair.partition("=")[0]
        if is_sensitive_param(unquote_plus(name), extra):
            pair = f"{name}={REDACTED}"
        pairs.append(pair)
    return "&".join(pairs)


def _redact_url_in_text(match: re.Match[str], extra_params: Iterable[str]) -> str:
    """A URL found in free text, its secret parameters hidden (as spelled: no parsing)."""
    text, hash_sign, fragment = match.group().partition("#")
    text, question_mark, query = text.partition("?")
    return f"{text}{question_mark}{_redact_query(query, extra_params)}{hash_sign}{fragment}"


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


# ``name: value``, ``"name": "value"``, ``name=value``; the name is looked up afterwards.
_FIELD_RE = re.compile(
    r"""(?P<head>(?P<q>["']?)(?P<name>[A-Za-z_][\w.-]*)(?P=q)\s*[:=]\s*)"""
    rf"""(?!["']?{re.escape(REDACTED[:-1])})"""  # hidden already (maybe cut at its "]")
    # A quoted value may be cut short (a truncated body): hide it to the end.
    r"""(?P<value>"(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s"'&,;}\]]+)"""
)


def _field_key(name: str) -> str:
    """A field's name as looked up: ``accessToken`` and ``access_token`` are one."""
    return name.lower().replace("_", "").replace("-", "")


def _plain(value: str | SecretStr) -> str:
    return value if isinstance(value, str) else value.get_secret_value()


def _spellings(value: str) -> list[str]:
    """``value`` and how it looks percent-encoded in a URL or a form body."""
    return list(dict.fromkeys((value, quote(value, safe=""), quote_plus(value))))


def _basic_parts(credential: str) -> list[str]:
    """``user:password`` and the password inside a Basic credential (``[]`` if it is not one)."""
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return []
    _, colon, password = decoded.partition(":")
    return [decoded, password] if colon else []


def _hide_cut_ends(text: str, secrets: Iterable[str]) -> str:
    """Hide a secret that ``text`` was cut in the middle of, at either end (a snippet,
    a truncated message): its first or last characters are still a secret's."""
    for secret in secrets:
        if text[-_MIN_SECRET:] in secret:  # cheap test first: most texts end otherwise
            for size in range(len(secret) - 1, _MIN_SECRET - 1, -1):
                if text.endswith(secret[:size]):
                    text = text[:-size] + REDACTED
                    break
        if text[:_MIN_SECRET] in secret:
            for size in range(len(secret) - 1, _MIN_SECRET - 1, -1):
                if text.startswith(secret[-size:]):
                    text = REDACTED + text[size:]
                    break
    return text


class Redactor:
    """A vocabulary of secrets: names to hide, values to hide, patterns to hide.

    On top of the defaults it holds the header names, query parameters (also
    hidden as body fields) and regex ``patterns`` a caller adds, and secret
    ``values`` that are replaced wherever they appear. It also learns the
    values a request carries (credential headers, cookies, secret query values,
    the URL's password) to scrub them from any other text: bodies, exception
    messages, third-party log records. Its repr never shows the values.

    Examples:
        >>> r = Redactor(headers=["X-Tenant-Key"], patterns=[r"sk_live_\\w+"], values=["hunter2"])
        >>> r.headers({"X-Tenant-Key": "abc", "Accept": "*/*"})
        {'X-Tenant-Key': '[REDACTED]', 'Accept': '*/*'}
        >>> r.text("charge with sk_live_123 failed for hunter2")
        'charge with [REDACTED] failed for [REDACTED]'
        >>> r
        Redactor(headers=['x-tenant-key'], params=[], patterns=['sk_live_\\\\w+'], values=1)
    """

    __slots__ = ("_fields", "_headers", "_merges", "_params", "_patterns", "_value_set", "_values")

    def __init__(
        self,
        headers: Iterable[str] = (),
        params: Iterable[str] = (),
        patterns: Iterable[str | re.Pattern[str]] = (),
        values: Iterable[str | SecretStr] = (),
    ) -> None:
        self._headers = frozenset(h.lower() for h in headers)
        self._params = frozenset(params)
        compiled = (re.compile(p) if isinstance(p, str) else p for p in patterns)
        self._patterns = tuple({p.pattern: p for p in compiled}.values())
        found = {s for v in values for s in _spellings(_plain(v)) if len(s) >= _MIN_SECRET}
        self._set_values(found)
        self._fields = {_field_key(name) for name in (*SENSITIVE_FIELDS, *self._params)}
        self._merges: dict[int, tuple[Redactor, Redactor]] = {}

    def _set_values(self, values: set[str]) -> None:
        self._value_set = frozenset(values)
        self._values = tuple(sorted(values, key=len, reverse=True))  # longest first

    # -- combining vocabularies -------------------------------------------------------------

    def merged(self, other: Redactor | None) -> Redactor:
        """A redactor hiding what ``self`` and ``other`` hide.

        Examples:
            >>> Redactor(headers=["X-A"]).merged(Redactor(params=["sig"]))
            Redactor(headers=['x-a'], params=['sig'], patterns=[], values=0)
        """
        if other is None or other is self or other._within(self):
            return self
        if self._within(other):
            return other
        cached = self._merges.get(id(other))
        if cached is not None and cached[0] is other:  # the entry holds other: its id is not reused
            return cached[1]
        merged = Redactor.__new__(Redactor)
        merged._headers = self._headers | other._headers
        merged._params = self._params | other._params
        merged._patterns = tuple(
            {p.pattern: p for p in (*self._patterns, *other._patterns)}.values()
        )
        merged._set_values(set(self._value_set | other._value_set))
        merged._fields = self._fields | other._fields
        merged._merges = {}
        if len(self._merges) >= 16:  # a handful of vocabularies meet a long-lived one
            self._merges.clear()
        self._merges[id(other)] = (other, merged)
        return merged

    def _within(self, other: Redactor) -> bool:
        """True when ``other`` hides everything this redactor hides."""
        return (
            self._headers <= other._headers
            and self._params <= other._params
            and self._value_set <= other._value_set
            and all(p in other._patterns for p in self._patterns)
        )

    @staticmethod
    def for_request(request: httpx.Request | None, base: Redactor | None = None) -> Redactor:
        """What to hide for ``request``: ``base``, the vocabulary it carries, the headers marked.

        Examples:
            >>> request = httpx.Request("GET", "https://api.example.com/x?sig=abc")
            >>> declare(request, Redactor(params=["sig"]))
            >>> Redactor.for_request(request).url(request.url)
            'https://api.example.com/x?sig=[REDACTED]'
        """
        vocabulary = base or DEFAULT_REDACTOR
        if request is None:
            return vocabulary
        carried = request.extensions.get(REDACTOR_KEY)
        if isinstance(carried, Redactor):
            vocabulary = vocabulary.merged(carried)
        marked = request.extensions.get(CREDENTIAL_HEADERS_KEY)
        if marked and not vocabulary._headers.issuperset(marked):
            vocabulary = vocabulary.merged(Redactor(headers=marked))
        return vocabulary

    # -- names ------------------------------------------------------------------------------

    @property
    def header_names(self) -> frozenset[str]:
        """The header names this vocabulary adds to the defaults, lower-cased.

        Examples:
            >>> sorted(Redactor(headers=["X-Tenant-Key"]).header_names)
            ['x-tenant-key']
        """
        return self._headers

    def is_sensitive_header(self, name: str) -> bool:
        """True when a header called ``name`` carries a credential in this vocabulary."""
        return is_sensitive_header(name, self._headers)

    def is_sensitive_field(self, name: str) -> bool:
        """Whether a body field (a JSON key, a form field, a GraphQL variable) ``name`` holds
        a secret: a known field in any case and spelling, or a secret parameter's name.

        Examples:
            >>> Redactor().is_sensitive_field("privateKey"), Redactor().is_sensitive_field("id")
            (True, False)
        """
        return _field_key(name) in self._fields or self.is_sensitive_param(name)

    def is_sensitive_param(self, name: str) -> bool:
        """True when a query parameter called ``name`` holds a secret in this vocabulary."""
        return is_sensitive_param(name, self._params)

    # -- redacting --------------------------------------------------------------------------

    def url(self, url: httpx.URL | str) -> str:
        """``url`` as text, secrets hidden (see :func:`redact_url`)."""
        if isinstance(url, httpx.URL):
            text = str(url)
            if "?" not in text and "@" not in text:  # no query, no user info: values, patterns
                for secret in self._values:
                    if secret in text:
                        text = text.replace(secret, REDACTED)
                for pattern in self._patterns:
                    text = pattern.sub(REDACTED, text)
                return text
        return self.text(redact_url(url, self._params))

    def headers(
        self,
        headers: httpx.Headers | Mapping[str, str] | Iterable[tuple[str, str]],
        request: httpx.Request | None = None,
    ) -> dict[str, str]:
        """``headers`` as a dict, credential values hidden (see :func:`redact_headers`).

        With ``request``, its secret values are hidden in the other headers too
        (a response header echoing the key).
        """
        items: Iterable[tuple[str, str]] = (
            cast(Iterable[tuple[str, str]], headers.items())
            if isinstance(headers, httpx.Headers | Mapping)
            else headers
        )
        secrets = self.secrets_of(request) if request is not None else ()
        return {name: self.header_value(name, value, secrets) for name, value in items}

    def header_value(self, name: str, value: str, secrets: Iterable[str] = ()) -> str:
        """A header's value as it may be shown: a credential header's hidden whole; in
        any other, the secret query values of a URL (a presigned ``Location``), then
        :meth:`text`.

        Examples:
            >>> Redactor().header_value("Location", "/report.csv?X-Amz-Signature=4f2a&v=2")
            '/report.csv?X-Amz-Signature=[REDACTED]&v=2'
        """
        if self.is_sensitive_header(name):
            return REDACTED
        if "?" in value:
            value = _URL_IN_HEADER_RE.sub(lambda m: _redact_url_in_text(m, self._params), value)
        return self.text(value, secrets)

    def text(self, text: str, secrets: Iterable[str] = ()) -> str:
        """``text`` with URL passwords, secret fields, known and given values, patterns hidden."""
        text = _USERINFO_RE.sub(_hide_password, text)
        text = _LONE_USERINFO_RE.sub(f"{REDACTED}@", text)
        if "=" in text or ":" in text:
            text = _FIELD_RE.sub(self._hide_field, text)
        for secret in (*secrets, *self._values):
            if secret:
                text = text.replace(secret, REDACTED)
        for pattern in self._patterns:
            text = pattern.sub(REDACTED, text)
        return text

    def scrub(
        self, text: str, request: httpx.Request | None = None, *, excerpt: bool = True
    ) -> str:
        """Free ``text`` (a body, a message, a log line) without any secret of ``request``.

        URLs in it are redacted by name, header pairs printed as Python tuples
        by sensitive name, then :meth:`text` hides the rest, including every
        value ``request`` carries. ``text`` may be an excerpt: a secret cut in
        two at either end is hidden too, unless ``excerpt=False`` says the text
        is whole (a body written to a file, where ordinary words must survive).

        Examples:
            >>> request = httpx.Request("GET", "https://a.test/", headers={"X-API-Key": "k3y-42"})
            >>> Redactor().scrub('{"error": "invalid key k3y-42"}', request)
            '{"error": "invalid key [REDACTED]"}'
        """
        if "://" in text:
            text = _URL_IN_TEXT_RE.sub(lambda m: _redact_url_in_text(m, self._params), text)
        if "(" in text:
            text = _HEADER_PAIR_RE.sub(self._hide_pair, text)
        secrets = self.secrets_of(request) if request is not None else ()
        text = self.text(text, secrets)
        return _hide_cut_ends(text, (*secrets, *self._values)) if excerpt else text

    def _hide_field(self, match: re.Match[str]) -> str:
        value = match["value"]
        if _field_key(match["name"]) not in self._fields:  # look inside: '"error": "password: x"'
            return match["head"] + _FIELD_RE.sub(self._hide_field, value)
        quote_mark = value[0] if value[0] in "\"'" else ""
        return f"{match['head']}{quote_mark}{REDACTED}{quote_mark}"

    def _hide_pair(self, match: re.Match[str]) -> str:
        if not self.is_sensitive_header(match[3]):
            return match.group()
        b, q1, name, q2 = match[1], match[2], match[3], match[4]
        return f"({b}{q1}{name}{q1}, {b}{q2}{REDACTED}{q2})"

    def secrets_of(self, request: httpx.Request) -> list[str]:
        """The secret values ``request`` carries, longest first, for :meth:`text`.

        Credential headers (those marked by an auth handler too) and what is
        inside them (a bearer token, a basic password), cookie values, secret
        query values and the URL's password, each also percent-encoded.
        """
        marked = request.extensions.get(CREDENTIAL_HEADERS_KEY, ())
        found: list[str] = []
        for name, value in request.headers.multi_items():
            if name in marked or self.is_sensitive_header(name):
                found.append(value)
                scheme, _, credential = value.partition(" ")
                if credential and scheme.isalpha():
                    found.append(credential)
                    if scheme.lower() == "basic":
                        found += _basic_parts(credential.strip())
                if name == "cookie":
                    found += [c.partition("=")[2] for c in value.split(";")]
        url = request.url
        if url.password:
            found.append(url.password)
        if url.query:
            found += [v for k, v in url.params.multi_items() if self.is_sensitive_param(k)]
        spelled = {s for v in found for s in _spellings(v.strip()) if len(s) >= _MIN_SECRET}
        return sorted(spelled, key=len, reverse=True)

    def __repr__(self) -> str:
        return (
            f"Redactor(headers={sorted(self._headers)!r}, params={sorted(self._params)!r}, "
            f"patterns={[p.pattern for p in self._patterns]!r}, values={len(self._values)})"
        )


DEFAULT_REDACTOR = Redactor()


def declare(request: httpx.Request, redactor: Redactor) -> None:
    """Add ``redactor``'s vocabulary to what ``request`` carries (extension :data:`REDACTOR_KEY`).

    The client declares its own vocabulary on every request; an auth handler
    declares the names and values it adds.

    Examples:
        >>> request = httpx.Request("GET", "https://a.test/?q=1")
        >>> declare(request, Redactor(params=["q"]))
        >>> Redactor.for_request(request).url(request.url)
        'https://a.test/?q=[REDACTED]'
    """
    carried = request.extensions.get(REDACTOR_KEY)
    request.extensions[REDACTOR_KEY] = (
        redactor.merged(carried) if isinstance(carried, Redactor) else redactor
    )


def mark_credential_headers(request: httpx.Request, *names: str) -> None:
    """Record that headers ``names`` carry a credential (extension :data:`CREDENTIAL_HEADERS_KEY`).

    Auth handlers mark what they set, so the client drops those headers when a
    redirect leaves the origin, and redacts them under any name.

    Examples:
        >>> request = httpx.Request("GET", "https://a.test/")
        >>> mark_credential_headers(request, "X-Token")
        >>> request.extensions[CREDENTIAL_HEADERS_KEY]
        ('x-token',)
    """
    marked = request.extensions.get(CREDENTIAL_HEADERS_KEY, ())
    request.extensions[CREDENTIAL_HEADERS_KEY] = (*marked, *(name.lower() for name in names))


def userinfo_secrets(url: httpx.URL | str) -> list[str]:
    """The password in ``url``'s user info, and the Basic credential made from it.

    A proxy URL's password travels base64-encoded in ``Proxy-Authorization``,
    where a server or proxy may echo it.

    Examples:
        >>> userinfo_secrets("http://bob:s3cret@proxy.test:8080")
        ['s3cret', 'Ym9iOnMzY3JldA==']
        >>> userinfo_secrets("http://proxy.test:8080")
        []
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:  # reported by whatever uses the URL
        return []
    if not parsed.password:
        return []
    pair = f"{parsed.username}:{parsed.password}".encode()
    return [parsed.password, base64.b64encode(pair).decode("ascii")]


def declared_by(auth: object) -> Redactor:
    """What an auth object says it sends: header and parameter names, secret values.

    buttress's auth classes describe themselves (their ``redactor()``); httpx's
    ``BasicAuth`` and ``DigestAuth`` are read here. For any other auth the
    headers it marks while sending, and the credential headers found on the
    request, are all that is known: name a custom header with
    ``LoggingConfig(redact_headers=[...])``.

    Examples:
        >>> declared_by(httpx.DigestAuth("alice", "s3cret-pw"))
        Redactor(headers=[], params=[], patterns=[], values=1)
        >>> declared_by(None)
        Redactor(headers=[], params=[], patterns=[], values=0)
    """
    own = getattr(auth, "redactor", None)
    if callable(own):
        found = own()
        if isinstance(found, Redactor):
            return found
    if isinstance(auth, httpx.BasicAuth):
        header = str(getattr(auth, "_auth_header", ""))
        credential = header.partition(" ")[2]
        return Redactor(values=[header, credential, *_basic_parts(credential)])
    if isinstance(auth, httpx.DigestAuth):
        password = getattr(auth, "_password", b"")
        return Redactor(values=[password.decode("utf-8", "replace")] if password else [])
    return DEFAULT_REDACTOR
