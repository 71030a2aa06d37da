"""``CacheConfig``: what the cache layer stores, for how long, and where."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from .._config import AnyCollection, DumpedAsRepr, FrozenConfig
from .base import CacheBackend
from .memory import MemoryCache

__all__ = ["CacheConfig"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class CacheConfig(FrozenConfig):
    """Configuration of the RFC 9111 private cache layer.

    Attributes:
        enabled: ``False`` leaves the layer out of the stack.
        backend: where entries live: :class:`MemoryCache` (default) or
            :class:`DiskCache`, or your own :class:`~buttress.cache.CacheBackend`.
        default_ttl: seconds a response with no explicit freshness (no
            ``max-age``, no ``Expires``) and a heuristically cacheable status
            stays fresh, in place of RFC 9111's heuristic. ``None`` (the
            default) follows the RFC: such a response is fresh for 10% of the
            time since its ``Last-Modified`` (at most a day), and without
            ``Last-Modified`` it is revalidated before every use.
        cacheable_status_codes: statuses that may be stored. ``None`` (the
            default) follows RFC 9111: any final status whose response gives
            explicit freshness (``max-age``, ``Expires``), plus the "heuristically
            cacheable" ones (200, 203, 204, 300, 301, 308, 404, 405, 410, 414,
            501) without it. A set stores only those statuses. 206 is never stored.
        cacheable_methods: safe methods whose responses may be stored.
        stale_if_error: seconds past expiry a stored response may still answer
            when the origin fails (connection error, 5xx, open circuit), per
            RFC 5861; ``None`` only honours the origin's own ``stale-if-error``.
        credential_headers: more request headers that carry credentials. Every
            header already separates callers except a few known to carry none
            (``Accept``, ``User-Agent``, ``X-Request-ID``, ...); naming one of
            those here makes it count too. The secrets vocabulary shared with
            redaction (``Authorization``, cookies, anything named like a token,
            a key or a session) always counts.
        credential_params: more query parameters that carry credentials, besides
            those the secrets vocabulary knows (``api_key``, ``token``,
            ``password``, ...). A successful unsafe request removes the stored
            responses of its URL whatever their values, for every caller.
        max_entry_size: bytes of body above which a response is not stored
            (it still reaches the caller, streamed); ``None`` stores any size.

    Examples:
        >>> from buttress import CacheConfig, MemoryCache
        >>> config = CacheConfig(backend=MemoryCache(max_size=500), default_ttl=60)
        >>> sorted(config.cacheable_methods)
        ['GET', 'HEAD']
    """

    enabled: bool = True
    # an object JSON cannot hold nor its schema describe: the schema leaves it out, a dump
    # writes its repr
    backend: Annotated[SkipJsonSchema[CacheBackend], DumpedAsRepr] = Field(
        default_factory=MemoryCache
    )
    default_ttl: float | None = Field(default=None, ge=0)
    cacheable_status_codes: AnyCollection[frozenset[int] | None] = None
    cacheable_methods: AnyCollection[frozenset[str]] = frozenset({"GET", "HEAD"})
    stale_if_error: float | None = Field(default=None, ge=0)
    credential_headers: AnyCollection[frozenset[str]] = frozenset()
    credential_params: AnyCollection[frozenset[str]] = frozenset()
    max_entry_size: int | None = Field(default=10 * 1024 * 1024, ge=0)

    @field_validator("cacheable_methods")
    @classmethod
    def _safe_only(cls, methods: frozenset[str]) -> frozenset[str]:
        upper = frozenset(method.upper() for method in methods)
        unsafe = upper - SAFE_METHODS
        if unsafe:
            raise ValueError(f"only safe methods can be cached, not {sorted(unsafe)}")
        return upper

    @field_validator("cacheable_status_codes")
    @classmethod
    def _no_partial(cls, codes: frozenset[int] | None) -> frozenset[int] | None:
        if codes is not None and 206 in codes:
            raise ValueError("206 Partial Content cannot be cached: it holds part of a body")
        return codes

    @field_validator("credential_headers", "credential_params")
    @classmethod
    def _lower(cls, names: frozenset[str]) -> frozenset[str]:
        return frozenset(name.lower() for name in names)
