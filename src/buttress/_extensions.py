"""Every key buttress reads or writes in ``request.extensions`` and ``response.extensions``.

One home for the names, each with the one layer that writes it; the others only
read. This module imports nothing, so every module, however low, can use it.

Request extensions (key: what it holds; who writes it):

- ``buttress``: the :class:`~buttress.RequestOptions`; the facade or :func:`buttress.options`
  (a :class:`~buttress.TimeoutMiddleware` narrows its ``total_timeout``; the cache layer's
  background revalidation is a request of its own).
- ``buttress.deadline``: the total deadline; the retry layer.
- ``buttress.resign``: a callable that signs the request again; time-signing auth.
- ``buttress.redactor``: the sender's redactor; ``_redact.declare``.
- ``buttress.credential_headers``: headers that carry a secret; auth handlers, through
  ``_redact.mark_credential_headers``.
- ``buttress.trace``: the request's trace; ``observability.start_request``.
- ``buttress.metrics``: the collector to report to; :class:`~buttress.MetricsMiddleware`.
- ``buttress.logged_above``: a :class:`~buttress.LoggingMiddleware` logs it; that middleware.
- ``buttress.rate_limit_admission``: the rate-limit slot to admit where the request leaves;
  the rate-limit layer.
- ``buttress.circuit_open_for``: seconds until the circuit an attempt left open lets a call
  through; the breaker layer (the retry layer above takes it).

Response extensions:

- ``buttress.attempts``: attempts made for it; the retry layer.
- ``buttress.retry_stop``: why an error status was not retried; the retry layer.
- ``buttress.request_id``: the request id sent with it; the logging layer.
- ``buttress.cache``: what the cache did; the cache layer.
- ``buttress.rate_limit``: what the server's rate-limit headers said; the rate-limit layer.
- ``buttress.client_rate_limited``: a 429 the client-side limit made up; the rate-limit layer.
- ``buttress.pagination.body``: the decoded page, parsed once; the paginator.

Examples:
    >>> ATTEMPTS_KEY
    'buttress.attempts'
"""

__all__ = [
    "ATTEMPTS_KEY",
    "BREAKER_ACQUISITION",
    "CACHE_EXTENSION",
    "CIRCUIT_OPEN_FOR",
    "CLIENT_RATE_LIMITED",
    "CREDENTIAL_HEADERS_KEY",
    "DEADLINE_KEY",
    "EXTENSION_KEY",
    "LOGGED_ABOVE_EXTENSION",
    "METRICS_EXTENSION",
    "PAGINATION_BODY_KEY",
    "RATE_LIMIT_ADMISSION",
    "RATE_LIMIT_INFO",
    "REDACTOR_KEY",
    "REQUEST_ID_EXTENSION",
    "RESIGN_KEY",
    "RETRY_STOP_KEY",
    "TRACE_EXTENSION",
]

# -- request extensions ----------------------------------------------------------------------

EXTENSION_KEY = "buttress"
"""The request's :class:`~buttress.RequestOptions`; every layer reads only its own field."""

DEADLINE_KEY = "buttress.deadline"
"""The request's total deadline, written by the retry layer.

In monotonic seconds on the client's clock; layers below it (the rate limiter)
refuse waits that would end after it.
"""

RESIGN_KEY = "buttress.resign"
"""A ``(request) -> None`` callable that signs the request again.

Written by auth that signs with the time (:class:`~buttress.auth.AWSSigV4`);
the retry layer calls it before each attempt after the first, so no attempt
goes out with a stale signature.
"""

REDACTOR_KEY = "buttress.redactor"
"""The :class:`~buttress._redact.Redactor` of the client (or code) sending the request."""

CREDENTIAL_HEADERS_KEY = "buttress.credential_headers"
"""The headers that carry a secret, listed by the auth handlers that set them."""

TRACE_EXTENSION = "buttress.trace"
"""The request's :class:`~buttress.observability.RequestTrace`."""

METRICS_EXTENSION = "buttress.metrics"
"""The request's :class:`~buttress.MetricsCollector`.

:class:`~buttress.MetricsMiddleware` puts its collector there, so the layers
beneath it report what only they see (attempts, retries, queues).
"""

LOGGED_ABOVE_EXTENSION = "buttress.logged_above"
"""Set while a :class:`~buttress.LoggingMiddleware` logs the request (the layer then does not)."""

BREAKER_ACQUISITION = "buttress.breaker_acquisition"
"""A shared circuit's acquire step, handed down to the shared limiter beneath the breaker.

Written by :class:`~buttress.transports.CircuitBreakerTransport` for the time of
one attempt, when a rate limit shared through the same store lies beneath it:
the limiter asks the circuit in the same store call as it books the fleet-wide
slot (one round trip for both) and leaves the verdict in it.
"""

CIRCUIT_OPEN_FOR = "buttress.circuit_open_for"
"""Seconds until the circuit an attempt left open lets a call through.

Written by :class:`~buttress.transports.CircuitBreakerTransport` after an attempt
when its circuit is open, whichever call opened it, and it has no fallback
(``math.inf`` while forced open). The retry layer above takes it at once: rather
than wait its backoff for an attempt the circuit would refuse unsent, it ends
with this attempt's outcome when the circuit stays open longer.
"""

RATE_LIMIT_ADMISSION = "buttress.rate_limit_admission"
"""The rate-limit slot a request took, for the final check where it leaves.

Written by :class:`~buttress.transports.RateLimitTransport` for the time of
one attempt, when a pool gate lies beneath it: the layer beneath the gate lets
the request go only once sending it at that moment keeps the limit.
"""

# -- response extensions ---------------------------------------------------------------------

ATTEMPTS_KEY = "buttress.attempts"
"""How many attempts the retry layer made for the response (one layer writes it: retry)."""

RETRY_STOP_KEY = "buttress.retry_stop"
"""Why the retry layer stopped early on an error status it would have retried.

A :class:`~buttress.policies.outcomes.EarlyStop`, read by whoever raises for the
status: only the facade does.
"""

REQUEST_ID_EXTENSION = "buttress.request_id"
"""The request id the logging layer sent with the request."""

CACHE_EXTENSION = "buttress.cache"
"""What the cache layer did for the response (a :class:`~buttress.transports.CacheResult`)."""

RATE_LIMIT_INFO = "buttress.rate_limit"
"""What the server's rate-limit headers said (a :class:`~buttress.RateLimitInfo`)."""

CLIENT_RATE_LIMITED = "buttress.client_rate_limited"
"""Set on the synthetic 429 a client-side rate limit answers with instead of sending."""

PAGINATION_BODY_KEY = "buttress.pagination.body"
"""A page's decoded body, kept so that the paginator parses it once."""
