"""What a client shows of its layers: the circuit breaker, the rate limiter, the cache."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._client_config import ClientConfig
from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    from .cache import Cache
    from .policies.breaker import CircuitBreaker
    from .policies.ratelimit import RateLimiter, RateLimitStatus

__all__ = ["LayerHandles"]


class LayerHandles:
    """The clients' ``circuit_breaker``, ``rate_limiter`` and ``cache``.

    One breaker and one limiter serve the default transport and every mount
    of a client (and the clients ``with_middleware`` derives from it).
    """

    _config: ClientConfig
    if TYPE_CHECKING:  # typing.get_type_hints(Client) must not need the layers' modules
        _circuit_breaker: CircuitBreaker | None
        _rate_limiter: RateLimiter | None

    @property
    def circuit_breaker(self) -> CircuitBreaker | None:
        """The client's circuit breaker (``state``, ``metrics``, ``force_open()``, ...), if any.

        Examples:
            >>> from buttress import CircuitBreakerConfig, Client
            >>> config = CircuitBreakerConfig(failure_threshold=5)
            >>> with Client(base_url="http://127.0.0.1:1", circuit_breaker=config) as client:
            ...     client.circuit_breaker.state
            'closed'
        """
        return self._circuit_breaker

    @property
    def cache(self) -> Cache:
        """Invalidate, clear and inspect the response cache (``cache=CacheConfig(...)``).

        Examples:
            >>> from buttress import CacheConfig, Client
            >>> with Client(base_url="https://api.example.com", cache=CacheConfig()) as client:
            ...     client.cache.invalidate("/users/123")
            0
        """
        config = self._config.cache
        if config is None or not config.enabled:
            raise ConfigurationError("this client has no cache; pass cache=CacheConfig(...)")
        from .cache import Cache

        return Cache(config.backend, base_url=self.base_url)  # type: ignore[attr-defined]

    def get_rate_limit_status(self, host: str | None = None) -> RateLimitStatus:
        """The client-side budget and the latest figures each server sent.

        ``limit``, ``remaining`` and ``reset_at`` describe the client-side limit
        (for ``host``, default the ``base_url``'s, when the limit is per host), or
        that host's server figures when no client-side limit is set; ``servers``
        has every host's. Empty unless the client has ``rate_limit=``.

        Examples:
            >>> from buttress import Client, RateLimitConfig
            >>> limit = RateLimitConfig(max_requests=100, time_window=60.0)
            >>> with Client(base_url="https://api.example.com", rate_limit=limit) as client:
            ...     status = client.get_rate_limit_status()
            >>> (status.remaining, status.limit)
            (100, 100)
        """
        if self._rate_limiter is None:
            from .policies.ratelimit import RateLimitStatus

            return RateLimitStatus()
        if host is None:
            host = self.base_url.netloc.decode("ascii")  # type: ignore[attr-defined]
        return self._rate_limiter.status(host)

    @property
    def rate_limiter(self) -> RateLimiter | None:
        """The client's rate limiter (``None`` without ``rate_limit=``).

        Shared by the default transport and every mount. Its
        :meth:`~buttress.transports.RateLimiter.reset` ends a pause a server
        imposed on a host.

        Examples:
            >>> from buttress import Client, RateLimitConfig
            >>> with Client(rate_limit=RateLimitConfig(max_requests=10)) as client:
            ...     client.rate_limiter.reset("api.example.com")
            >>> with Client() as client:
            ...     print(client.rate_limiter)
            None
        """
        return self._rate_limiter
