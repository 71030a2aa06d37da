"""What the cache keeps of a request: a key that tells callers apart, and no secret.

The key is built from the request as sent, after authentication has run, so it
never depends on recognising the auth handler. Every request header says who is
asking, except the few in :data:`NOT_CREDENTIALS`, which carry no credential in
any API (a name the secrets vocabulary calls sensitive is never one of them).
A custom ``httpx.Auth`` signing with a header of its own is therefore told
apart without anyone declaring it.

What is stored holds keyed digests (BLAKE2b, keyed with the backend's salt)
instead of values: the URL's query (its user info is dropped), and only the
request headers a response's ``Vary`` names, which is all that matching needs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TypeAlias
from urllib.parse import unquote_plus

import httpx
from hishel import Headers, Request

from .._redact import DEFAULT_REDACTOR, Redactor, is_sensitive_header, is_sensitive_param
from .._redirects import same_origin
from ..policies.cache import vary_names

__all__ = [
    "NOT_CREDENTIALS",
    "URL_KEY_LENGTH",
    "CacheKeys",
    "Fields",
    "header_fields",
    "joined",
    "stored_query",
    "varied",
]

NOT_CREDENTIALS = frozenset(
    {
        # content negotiation and caching: Vary brings them into matching when they matter
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "pragma",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "range",
        # the connection and the message
        "connection",
        "content-length",
        "content-type",
        "host",
        "keep-alive",
        "te",
        "transfer-encoding",
        # the software, and identifiers that are new on every request
        "user-agent",
        "traceparent",
        "tracestate",
        "baggage",
        "x-request-id",
        "x-correlation-id",
        "idempotency-key",
    }
)
"""Request headers that carry no credential: the only ones left out of the cache key."""


_URL_DIGEST_SIZE = 20
URL_KEY_LENGTH = 2 * _URL_DIGEST_SIZE
"""Characters of :meth:`CacheKeys.url_key` (hex), with which every storage key begins."""


Fields: TypeAlias = dict[str, list[str]]
"""A request's header values by lower-cased name (see :func:`header_fields`)."""


def header_fields(headers: httpx.Headers) -> Fields:
    """``headers``' values by lower-cased name, decoded as httpx decodes them, read in one pass.

    Each lookup in ``httpx.Headers`` decodes every field again; the cache asks for several.

    Examples:
        >>> header_fields(httpx.Headers([("Accept", "a"), ("X-Team", "b"), ("accept", "c")]))
        {'accept': ['a', 'c'], 'x-team': ['b']}
    """
    encoding = headers.encoding
    fields: Fields = {}
    for name, value in headers.raw:
        fields.setdefault(name.lower().decode(encoding), []).append(value.decode(encoding))
    return fields


def joined(fields: Fields, name: str) -> str | None:
    """A field's values joined as ``httpx.Headers.get`` joins them, or ``None`` when absent."""
    values = fields.get(name)
    return ", ".join(values) if values is not None else None


def _keyed(salt: bytes, size: int) -> hashlib.blake2b:
    """BLAKE2b keyed with ``salt``: copying it digests without keying a hash again."""
    return hashlib.blake2b(key=salt, digest_size=size)


def _digest(keyed: hashlib.blake2b, text: str) -> str:
    hasher = keyed.copy()
    hasher.update(text.encode())
    return hasher.hexdigest()


def _split(url: httpx.URL, host: str | None = None) -> tuple[str, str]:
    """``url`` up to its path, without user info or fragment, and its query, as sent.

    ``host`` is the authority a request sent to ``url``'s origin named in its
    ``Host`` header (any case): it, not the address connected to, names the target
    (RFC 9110 7.2), so one address serving many virtual hosts keeps their responses
    apart. httpx writes the URL's own authority there unless the caller sets another.
    Without a request (``None``), the URL's own authority.
    """
    path, _, query = url.raw_path.decode("ascii").partition("?")
    authority = url.netloc.decode("ascii") if host is None else host.lower()
    return f"{url.scheme}://{authority}{path}", query


def stored_query(salt: bytes, query: str) -> str:
    """A query string as the cache stores it: one keyed digest of it all.

    Every value is hidden, not only those with a secret's name: an API key
    parameter may have any name.

    Examples:
        >>> stored = stored_query(b"0" * 16, "page=2&key=k3y")
        >>> stored.startswith("h:"), "k3y" in stored
        (True, False)
    """
    return _stored_query(_keyed(salt, 16), query)


def _stored_query(keyed: hashlib.blake2b, query: str) -> str:
    return "h:" + _digest(keyed, query)


def varied(headers: Headers) -> frozenset[str]:
    """The request headers a stored response's ``Vary`` names (``*`` never matches anyway).

    Examples:
        >>> sorted(varied(Headers({"vary": ["Accept, X-Team", "*"]})))
        ['accept', 'x-team']
    """
    return vary_names(headers) - _ANY


_ANY = frozenset({"*"})


class CacheKeys:
    """Storage keys and stored requests for one backend's salt and one configuration.

    Examples:
        >>> keys = CacheKeys(b"0" * 16)
        >>> alice = httpx.Request("GET", "https://api.example.com/me", headers={"X-Proof": "a"})
        >>> bob = httpx.Request("GET", "https://api.example.com/me", headers={"X-Proof": "b"})
        >>> anyone = httpx.Request("GET", "https://api.example.com/me")
        >>> keys.key(alice)[0] != keys.key(bob)[0] != keys.key(anyone)[0]
        True
        >>> keys.key(alice)[0].startswith(keys.url_key(alice.url))
        True
    """

    __slots__ = ("_headers", "_params", "_public", "_secret_hasher", "_url_hasher")

    def __init__(
        self,
        salt: bytes,
        credential_headers: Iterable[str] = (),
        credential_params: Iterable[str] = (),
    ) -> None:
        self._secret_hasher = _keyed(salt, 16)
        self._url_hasher = _keyed(salt, _URL_DIGEST_SIZE)
        self._headers = tuple(name.lower() for name in credential_headers)
        self._params = tuple(credential_params)
        # What is left out of every key unless a request's own vocabulary names it: decided
        # once here, since the default patterns give the same answer for a name every time.
        self._public = frozenset(
            name for name in NOT_CREDENTIALS if not is_sensitive_header(name, self._headers)
        )

    def url_key(self, url: httpx.URL, request: httpx.Request | None = None) -> str:
        """The part of a key that depends on the URL alone, secret parameter values left out.

        Every key starts with it, so removing the keys with this prefix drops a
        URL's entries for every caller. ``request`` (the one that changed the
        resource) lends its vocabulary (the parameters its auth declared secret)
        and the ``Host`` it sent.
        """
        host = None
        if request is not None and same_origin(url, request.url):
            host = request.headers.get("host", url.netloc.decode("ascii"))
        base, query = _split(url, host)
        vocabulary = Redactor.for_request(request)
        return self._url_key(base, self._public_query(query, vocabulary)[0])

    def _url_key(self, base: str, public_query: str) -> str:
        return _digest(self._url_hasher, f"{base}?{public_query}")

    def _public_query(
        self, query: str, vocabulary: Redactor = DEFAULT_REDACTOR
    ) -> tuple[str, list[list[str]]]:
        """``query`` with the values of secret parameters blanked, and those parameters."""
        if not query:
            return query, []
        public, secrets = [], []
        for pair in query.split("&"):
            name, equals, value = pair.partition("=")
            plain = unquote_plus(name)
            if is_sensitive_param(plain, self._params) or vocabulary.is_sensitive_param(plain):
                secrets.append(["?" + name, value])
                pair = name + equals
            public.append(pair)
        return "&".join(public), secrets

    def key(self, request: httpx.Request, fields: Fields | None = None) -> tuple[str, str]:
        """The storage key of ``request``, and its URL as stored.

        The key is the URL's part followed, when the request carries anything
        that says who is asking, by a digest of all of it: every header outside
        :data:`NOT_CREDENTIALS` (and any inside it the vocabulary calls a
        credential), secret query parameters and the URL's user info. ``fields``
        are the request's headers when the caller has read them already.
        """
        if fields is None:
            fields = header_fields(request.headers)
        url = request.url
        host = joined(fields, "host")
        base, query = _split(url, host if host is not None else url.netloc.decode("ascii"))
        vocabulary = Redactor.for_request(request)
        public_query, identity = self._public_query(query, vocabulary)
        public, declared = self._public, vocabulary.header_names
        identity += [
            [name, value]
            for name, values in fields.items()
            if name not in public or name in declared
            for value in values
        ]
        userinfo = url.userinfo
        if userinfo:
            identity.append(["@", userinfo.decode("ascii")])
        key = self._url_key(base, public_query)
        if identity:
            key += _digest(self._secret_hasher, json.dumps(sorted(identity)))
        return key, f"{base}?{_stored_query(self._secret_hasher, query)}" if query else base

    def stored_request(
        self, request: httpx.Request, url: str, names: Iterable[str], fields: Fields | None = None
    ) -> Request:
        """``request`` as stored: method, stored ``url``, and digests of the ``names`` headers.

        A digest covers the header's values as RFC 9111 4.1 compares them
        (combined, whitespace around commas removed), so digests match
        exactly when the values would. ``fields`` are as for :meth:`key`.
        """
        headers: dict[str, list[str]] = {}
        if names:
            if fields is None:
                fields = header_fields(request.headers)
            for name in names:
                values = fields.get(name)
                if values:
                    parts = ",".join(part.strip() for value in values for part in value.split(","))
                    headers[name] = ["h:" + _digest(self._secret_hasher, f"{name}\n{parts}")]
        return Request(request.method, url, Headers(headers))
