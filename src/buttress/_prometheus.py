"""``PrometheusCollector``: buttress's metrics in a prometheus-client registry.

Labels are kept to values with a small, fixed range, so a busy client cannot
blow up a Prometheus server: the host (never the URL), the method (unknown
methods count as ``OTHER``), the status class, the state, and for retries the
status code or exception class that caused them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["PrometheusCollector"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
_STATES = ("closed", "open", "half_open")
# Network round trips and waits: from a local cache's milliseconds to a slow API's minute.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _method(method: str) -> str:
    return method if method in _METHODS else "OTHER"


def _status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status is not None and 100 <= status < 600 else "error"


class _Metrics:
    """Makes metrics in one registry, under one namespace."""

    def __init__(self, registry: CollectorRegistry, namespace: str) -> None:
        self._where: dict[str, Any] = {"namespace": namespace, "registry": registry}

    def counter(self, name: str, doc: str, labels: tuple[str, ...]) -> Counter:
        from prometheus_client import Counter

        return Counter(name, doc, labels, **self._where)

    def gauge(self, name: str, doc: str, labels: tuple[str, ...]) -> Gauge:
        from prometheus_client import Gauge

        return Gauge(name, doc, labels, **self._where)

    def histogram(self, name: str, doc: str, labels: tuple[str, ...]) -> Histogram:
        from prometheus_client import Histogram

        return Histogram(name, doc, labels, buckets=_BUCKETS, **self._where)


class PrometheusCollector:
    """A :class:`~buttress.MetricsCollector` keeping Prometheus metrics (``buttress[prometheus]``).

    Give it to :class:`~buttress.MetricsMiddleware`; the layers beneath report
    attempts, retries, budget refusals and rate-limit queues through it. Pass
    :meth:`breaker_state_changed` as ``CircuitBreakerConfig(on_state_change=...)``
    for the breaker metrics. docs/metrics.md lists every metric and its labels.

    Args:
        registry: the prometheus-client registry to register in; by default one
            of the collector's own (serve it with :meth:`render`). Pass
            ``prometheus_client.REGISTRY`` to join the process-wide registry
            that ``prometheus_client.start_http_server`` serves.
        namespace: the prefix of every metric name.

    Examples:
        >>> collector = PrometheusCollector()
        >>> collector.request_finished(
        ...     method="GET", host="api", status=200, duration=0.25, attempts=1, error=None
        ... )
        >>> 'buttress_requests_total{host="api",method="GET",status_class="2xx"} 1.0' in (
        ...     collector.render().splitlines())
        True
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, namespace: str = "buttress"
    ) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise ConfigurationError(
                "PrometheusCollector needs the prometheus extra: pip install 'buttress[prometheus]'"
            ) from None
        self.registry = prom.CollectorRegistry(auto_describe=True) if registry is None else registry
        self.namespace = namespace
        try:
            self._register()
        except ValueError as exc:  # "Duplicated timeseries": a second collector, same registry
            raise ConfigurationError(
                f"PrometheusCollector: {exc}; give each collector its own registry "
                "or share one collector"
            ) from None

    def _register(self) -> None:
        """Create every metric in ``self.registry``."""
        make = _Metrics(self.registry, self.namespace)
        by_status = ("host", "method", "status_class")
        self._requests = make.counter(
            "requests",
            "Logical requests (all attempts, or a cache answer) by status class.",
            by_status,
        )
        self._duration = make.histogram(
            "request_duration_seconds",
            "Seconds per logical request, retries and waits included.",
            ("host", "method"),
        )
        self._attempts = make.counter("attempts", "Network attempts by status class.", by_status)
        self._attempt_duration = make.histogram(
            "attempt_duration_seconds", "Seconds per network attempt.", ("host", "method")
        )
        self._bytes_out = make.counter(
            "request_body_bytes", "Request body bytes sent (known sizes only).", ("host",)
        )
        self._bytes_in = make.counter(
            "response_body_bytes", "Response body bytes received (known sizes only).", ("host",)
        )
        self._register_layers(make)

    def _register_layers(self, make: _Metrics) -> None:
        """The metrics of the retry, circuit breaker, rate limit and cache layers."""
        self._retries = make.counter(
            "retries",
            "Retries, by the status code or exception class that caused them.",
            ("host", "reason"),
        )
        self._budget_refusals = make.counter(
            "retry_budget_refusals",
            "Retries not made because the host's retry budget was empty.",
            ("host",),
        )
        self._breaker_state = make.gauge(
            "circuit_breaker_state",
            "1 for the breaker's current state, 0 for the others.",
            ("host", "state"),
        )
        self._breaker_transitions = make.counter(
            "circuit_breaker_transitions",
            "Breaker state changes.",
            ("host", "from_state", "to_state"),
        )
        self._rate_limit_wait = make.histogram(
            "rate_limit_wait_seconds",
            "Seconds a request waited for the client-side rate limiter.",
            ("host",),
        )
        self._queue_depth = make.gauge(
            "rate_limit_queue_depth",
            "Requests waiting in the rate limiter's queue, as last seen by a request to host.",
            ("host",),
        )
        self._cache = make.counter(
            "cache_requests",
            "Requests the cache layer saw: hit, miss, revalidated (304) or stale (served old).",
            ("host", "result"),
        )
        self._store_degraded = make.gauge(
            "store_degraded",
            "1 while a shared store is away and each process uses its own state, else 0.",
            ("store",),
        )

    # -- MetricsCollector --------------------------------------------------------------------

    def request_finished(
        self,
        *,
        method: str,
        host: str,
        status: int | None,
        duration: float,
        attempts: int,
        error: str | None,
    ) -> None:
        """Count a logical request and observe its duration."""
        self._requests.labels(host, _method(method), _status_class(status)).inc()
        self._duration.labels(host, _method(method)).observe(duration)

    def attempt_finished(
        self, *, method: str, host: str, status: int | None, duration: float, error: str | None
    ) -> None:
        """Count a network attempt and observe its duration."""
        self._attempts.labels(host, _method(method), _status_class(status)).inc()
        self._attempt_duration.labels(host, _method(method)).observe(duration)

    def retried(self, *, host: str, reason: str) -> None:
        """Count a retry and what caused it."""
        self._retries.labels(host, reason).inc()

    def retry_budget_refused(self, *, host: str) -> None:
        """Count a retry the budget refused."""
        self._budget_refusals.labels(host).inc()

    def cache_result(self, *, host: str, hit: bool) -> None:
        """Count a cache hit or miss."""
        self._cache.labels(host, "hit" if hit else "miss").inc()

    def cache_revalidated(self, *, host: str) -> None:
        """Count a stored response the origin confirmed with a 304."""
        self._cache.labels(host, "revalidated").inc()

    def cache_stale_served(self, *, host: str) -> None:
        """Count a stored response served past its freshness."""
        self._cache.labels(host, "stale").inc()

    def breaker_state_changed(self, host: str, old: str, new: str) -> None:
        """Record a breaker transition (usable as ``on_state_change`` directly)."""
        self._breaker_transitions.labels(host, old, new).inc()
        for state in _STATES:
            self._breaker_state.labels(host, state).set(1 if state == new else 0)

    def store_degraded_changed(self, store: str, degraded: bool) -> None:
        """Set whether ``store`` is degraded (usable as ``RedisStore(on_degraded_change=...)``).

        ``store`` is the store's name: its address without credentials.
        """
        self._store_degraded.labels(store).set(1 if degraded else 0)

    def rate_limit_waited(self, *, host: str, seconds: float) -> None:
        """Observe a wait for the client-side rate limiter."""
        self._rate_limit_wait.labels(host).observe(seconds)

    def rate_limit_queue(self, *, host: str, depth: int) -> None:
        """Set the depth of the rate limiter's queue."""
        self._queue_depth.labels(host).set(depth)

    def bytes_transferred(self, *, host: str, sent: int, received: int) -> None:
        """Count body bytes sent and received."""
        self._bytes_out.labels(host).inc(sent)
        self._bytes_in.labels(host).inc(received)

    # -- exposition --------------------------------------------------------------------------

    def render(self) -> str:
        """The registry in Prometheus' text exposition format, for a ``/metrics`` endpoint.

        Examples:
            >>> PrometheusCollector().render().startswith("# HELP")
            True
        """
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode("utf-8")

    def __repr__(self) -> str:
        return f"PrometheusCollector(namespace={self.namespace!r})"
