"""Retry decisions and the retry flow: pure logic, time and randomness injected.

:func:`retry_flow` is the whole retry layer, written once; the transport in
``buttress.transports.retry`` runs it with ``drive`` or ``adrive``. It owns

* the attempts (``max_attempts`` counts the first one) and the backoff sleeps,
* ``Retry-After`` (both forms, and ``retry-after-ms``; on a 429 without it, the reset of a
  used-up rate limit), capped by ``retry_after_max``,
* retry safety: methods, ``Idempotency-Key``, ``idempotent=True``, bodies that cannot be
  sent twice,
* the retry budget per host, and
* the request's total deadline: each attempt's timeouts shrink to the time left.
"""

from __future__ import annotations

import datetime
import logging
import math
import random
import uuid
from collections.abc import Callable, Collection, Generator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Annotated, Any, Literal

import httpx
from pydantic import Field, WithJsonSchema, field_validator

from .._config import FrozenConfig, PythonOnly, defaults
from .._exceptions import TimeoutError, describe
from .._extensions import (
    ATTEMPTS_KEY,
    CIRCUIT_OPEN_FOR,
    DEADLINE_KEY,
    EXTENSION_KEY,
    METRICS_EXTENSION,
    RESIGN_KEY,
    RETRY_STOP_KEY,
)
from .._flow import Effect, Outcome, OutOfTime, Read, Send, Sleep, call, time_left
from .._options import RequestOptions
from .._redact import Redactor
from ..observability import report, request_trace
from .backoff import Jitter, backoff_delay
from .budget import InMemoryRetryBudget, RetryBudget, SharedRetryBudget
from .outcomes import EarlyStop, is_connect_failure, retry_reason
from .store import SharedStore

if TYPE_CHECKING:
    from tenacity import RetryCallState

    from .._clock import Clock

__all__ = [
    "DEFAULT_RETRY_METHODS",
    "DEFAULT_RETRY_STATUSES",
    "Decision",
    "RetryBudgetConfig",
    "RetryConfig",
    "RetryPolicy",
    "body_is_replayable",
    "retry_flow",
]

logger = logging.getLogger("buttress.retry")

DEFAULT_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class RetryBudgetConfig(FrozenConfig):
    """Per host, retries may add at most ``ratio`` on top of first attempts.

    Counted over the last ``window`` seconds, with a floor of ``min_per_second``
    retries per second so a quiet client can always retry (Finagle's rule).

    Examples:
        >>> RetryBudgetConfig().ratio, RetryBudgetConfig().min_per_second
        (0.2, 10.0)
    """

    ratio: float = Field(default=0.2, ge=0)
    min_per_second: float = Field(default=10.0, ge=0)
    window: float = Field(default=10.0, gt=0)

    def create(self, store: SharedStore | None = None) -> RetryBudget:
        """A fresh budget with these settings: in memory, or fleet-wide in ``store``."""
        settings = {"ratio": self.ratio, "min_per_second": self.min_per_second}
        if store is None:
            return InMemoryRetryBudget(**settings, window=self.window)
        return store.retry_budget(**settings, window=self.window)


# What the validators below take, for the JSON schema (a bare Collection has none).
_STATUSES_IN_JSON = WithJsonSchema(
    {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}}
)
_METHODS_IN_JSON = WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
)


class RetryConfig(FrozenConfig):
    """How the retry layer retries.

    Attributes:
        max_attempts: attempts in all, **counting the first one**: 3 means one
            request and up to two retries; 1 means no retries.
        backoff_factor: the first retry waits up to this many seconds; each
            further retry doubles it.
        backoff_max: no backoff wait is longer than this.
        jitter: ``"full"`` (uniform in ``[0, d]``, the default), ``"equal"``
            (``[d/2, d]``) or ``"none"``.
        retry_statuses: response statuses that are retried.
        retry_methods: methods retried on any transient failure. Others (POST,
            PATCH) are retried only with an ``Idempotency-Key`` header, when the
            call declares them ``idempotent=True``, or when the connection failed
            before anything was sent.
        respect_retry_after: wait as long as ``Retry-After`` / ``retry-after-ms`` say.
        retry_after_max: a server asking for a longer wait ends the retries at
            once with the status error, carrying ``retry_after``.
        idempotency_keys: add a UUID4 ``Idempotency-Key`` to POST and PATCH
            requests that have none; the same key is sent on every attempt.
        idempotency_header: the header name for those keys.
        budget: the retry budget per host; ``None`` switches it off.
        wait: a tenacity wait strategy (``tenacity.wait_exponential(...)``);
            replaces the built-in backoff. ``Retry-After`` still wins.
        stop: a tenacity stop strategy (``tenacity.stop_after_attempt(5)``);
            replaces ``max_attempts``.
        store: a :class:`~buttress.RedisStore` to share the retry budget with
            every process that uses the same store (see
            :class:`~buttress.stores.budget.RedisRetryBudget`); ``None``: this
            process's own budget.

    Examples:
        >>> config = RetryConfig(max_attempts=5, backoff_factor=0.1)
        >>> config.max_attempts, sorted(config.retry_statuses)
        (5, [408, 429, 500, 502, 503, 504])
        >>> import tenacity
        >>> RetryConfig(wait=tenacity.wait_fixed(2), stop=tenacity.stop_after_attempt(4)).wait
        <tenacity.wait.wait_fixed object at ...>
    """

    max_attempts: int = Field(default=3, ge=1)
    backoff_factor: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=30.0, ge=0)
    jitter: Jitter = "full"
    # Any collection is accepted (SPEC 18.6 passes a list); it is stored as a frozenset.
    retry_statuses: Annotated[Collection[int], _STATUSES_IN_JSON] = DEFAULT_RETRY_STATUSES
    retry_methods: Annotated[Collection[str], _METHODS_IN_JSON] = DEFAULT_RETRY_METHODS
    respect_retry_after: bool = True
    retry_after_max: float = Field(default=60.0, ge=0)
    idempotency_keys: bool = False
    idempotency_header: str = "Idempotency-Key"
    # a factory, not the instance: a JSON schema would encode an instance as its default,
    # which pydantic before 2.14 cannot do while the shared default's model is unbuilt
    budget: RetryBudgetConfig | None = Field(default_factory=partial(defaults, RetryBudgetConfig))
    wait: PythonOnly[Any] = None
    stop: PythonOnly[Any] = None
    store: PythonOnly[SharedStore | None] = None

    @field_validator("retry_methods", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, Collection) or not all(isinstance(m, str) for m in value):
            raise ValueError("must be method names (strings), like ['GET', 'PUT']")
        return frozenset(m.upper() for m in value)

    @field_validator("retry_statuses", mode="after")
    @classmethod
    def _freeze(cls, value: Collection[int]) -> frozenset[int]:
        # The field's type is a bare Collection: pydantic checks no item, so this does.
        if isinstance(value, str | bytes | Mapping):
            raise ValueError("must be status codes (ints from 100 to 599), like [502, 503]")
        for code in value:
            if not (isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599):
                found = repr(code) if isinstance(code, int | float) else f"a {type(code).__name__}"
                raise ValueError(
                    f"must be status codes (ints from 100 to 599), like [502, 503]; found {found}"
                )
        return frozenset(value)

    @field_validator("wait", "stop")
    @classmethod
    def _callable(cls, value: Any) -> Any:
        if value is not None and not callable(value):
            raise ValueError("must be a tenacity strategy (a callable taking a RetryCallState)")
        return value


@cache
def _send_once() -> RetryConfig:
    """The configuration of ``retry=False``: one attempt, no budget (built on first use)."""
    return RetryConfig(max_attempts=1, budget=None)


def body_is_replayable(request: httpx.Request) -> bool:
    """Can ``request``'s body be sent again? Generators and one-shot streams cannot.

    Bytes, forms, JSON and multipart bodies can; so can file objects that seek
    (the retry layer rewinds them). A body already read into memory always can.

    Examples:
        >>> body_is_replayable(httpx.Request("POST", "https://x.test", json={"a": 1}))
        True
        >>> chunks = (b"x" for _ in range(2))
        >>> body_is_replayable(httpx.Request("POST", "https://x.test", content=chunks))
        False
    """
    stream = request.stream
    if isinstance(stream, httpx.ByteStream) or hasattr(request, "_content"):
        return True
    if type(stream).__name__ == "MultipartStream":  # httpx rewinds seekable files itself
        return all(
            not hasattr(f, "file") or _seekable(f.file) or isinstance(f.file, bytes | str)
            for f in getattr(stream, "fields", ())
        )
    source = getattr(stream, "_stream", None)  # httpx's (Async)IteratorByteStream
    if isinstance(source, bytes | list | tuple):
        return True
    return source is not None and _seekable(source)


def _seekable(obj: Any) -> bool:
    try:
        return bool(obj.seekable()) and hasattr(obj, "tell")
    except Exception:
        return False


def _rewinder(request: httpx.Request) -> Callable[[], None]:
    """A function that puts a file body back where it started (a no-op for other bodies)."""
    source = getattr(request.stream, "_stream", None)
    # a body in memory is no file: asking it would raise, which costs every request
    if source is None or isinstance(source, bytes | list | tuple) or not _seekable(source):
        return _stay
    start = source.tell()
    return lambda: source.seek(start)


def _stay() -> None:
    """The rewind of a body that needs none."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after an attempt.

    ``action`` is ``"retry"`` (after ``delay`` seconds), ``"done"`` (return or
    raise the outcome as it is), ``"stop"`` (return an error status that would
    have been retried, with why not and ``retry_after``, for the facade's error)
    or ``"raise_timeout"`` (the deadline cannot be met). ``reason`` says why,
    for logs and exception notes.
    """

    action: Literal["retry", "done", "stop", "raise_timeout"]
    delay: float = 0.0
    reason: str = ""
    retry_after: float | None = None


_DONE = Decision("done")  # the usual decision, made once (frozen, so shared)


@dataclass(frozen=True, slots=True)
class Attempt:
    """The facts about one finished attempt that a decision depends on."""

    number: int
    outcome: httpx.Response | Exception
    now: float
    epoch: float
    started: float
    deadline: float | None
    replayable: bool


class RetryPolicy:
    """Decides, after each attempt, whether and when to try again. No I/O, no sleeping.

    Examples:
        >>> policy = RetryPolicy(RetryConfig(jitter="none", budget=None))
        >>> request = httpx.Request("GET", "https://api.example.com/x")
        >>> attempt = Attempt(1, httpx.Response(503, request=request), now=0.0, epoch=0.0,
        ...                   started=0.0, deadline=None, replayable=True)
        >>> policy.decide(request, attempt)
        Decision(action='retry', delay=0.5, reason='503 Service Unavailable', retry_after=None)
    """

    def __init__(
        self,
        config: RetryConfig,
        budget: RetryBudget | None = None,
        rng: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.budget = budget
        self._rng = rng or random.random
        # What every request asks, worked out once: an ABC's isinstance and a config
        # model's attributes cost far more than plain attributes.
        self._shared_budget = budget if isinstance(budget, SharedRetryBudget) else None
        self._retry_statuses = config.retry_statuses
        self._key_header = config.idempotency_header if config.idempotency_keys else None

    def with_config(self, config: RetryConfig) -> RetryPolicy:
        """The same budget and randomness with another configuration (a per-request override).

        The budget is dropped when ``config.budget`` is ``None``.
        """
        return RetryPolicy(config, self.budget if config.budget else None, self._rng)

    def decide(self, request: httpx.Request, attempt: Attempt) -> Decision:
        """The decision after ``attempt`` of ``request``."""
        decision = self.judge(request, attempt)
        budget = self.budget
        if (
            decision.action == "retry"
            and budget
            and not budget.try_withdraw(request.url.host, attempt.now)
        ):
            return self.refused(request, decision)
        return decision

    def judge(self, request: httpx.Request, attempt: Attempt) -> Decision:
        """The decision after ``attempt`` of ``request``, before asking the retry budget."""
        config, outcome = self.config, attempt.outcome
        reason = retry_reason(outcome, config.retry_statuses)
        if reason is None:
            return _DONE
        if not self._method_allowed(request, outcome):
            return Decision("done", reason=f"{request.method} is not retried (not idempotent)")
        if self._stopped(attempt):
            return Decision("done", reason=f"gave up after {attempt.number} attempt(s)")
        if not attempt.replayable:
            return Decision(
                "stop" if isinstance(outcome, httpx.Response) else "done",
                reason="not retried: the request body is a stream or generator that cannot "
                "be sent twice (pass bytes, or a seekable file, to allow retries)",
            )
        retry_after = None
        if isinstance(outcome, httpx.Response) and config.respect_retry_after:
            from .headers import asked_wait  # on the first retry, not with every client

            retry_after = asked_wait(outcome, attempt.epoch)
        if retry_after is not None:
            if retry_after > config.retry_after_max:
                return Decision(
                    "stop",
                    reason=f"not retried: the server asked to wait {retry_after:g}s, more than "
                    f"retry_after_max={config.retry_after_max:g}s",
                    retry_after=retry_after,
                )
            delay = retry_after
        else:
            delay = self._backoff(attempt)
        if attempt.deadline is not None and attempt.now + delay >= attempt.deadline:
            left = max(attempt.deadline - attempt.now, 0.0)
            if retry_after is not None:
                return Decision(
                    "stop",
                    reason=f"not retried: the server asked to wait {retry_after:g}s, more than "
                    f"the {left:.3g}s left before the total timeout",
                    retry_after=retry_after,
                )
            return Decision(
                "raise_timeout",
                reason=f"the total timeout would pass during the {delay:.3g}s wait "
                f"before attempt {attempt.number + 1} ({left:.3g}s left; last: {reason})",
            )
        return Decision("retry", delay=delay, reason=reason, retry_after=retry_after)

    def refused(self, request: httpx.Request, decision: Decision) -> Decision:
        """What a retry the budget refused becomes: logged, reported, and done."""
        logger.warning(
            "retry budget for %s is empty: not retrying %s after %s",
            request.url.host,
            describe(request),
            decision.reason,
        )
        report(request, "retry_budget_refused", host=request.url.host)
        return Decision("done", reason="not retried: the retry budget for this host is empty")

    def next_delay(self, attempt: Attempt) -> float | None:
        """Seconds to wait before trying again after ``attempt``; ``None`` when no try is left.

        For callers that judge the outcome themselves (a WebSocket reconnecting):
        only the backoff (``wait``) and the stop rule (``stop``, ``max_attempts``)
        apply, not the statuses, methods or budget of :meth:`decide`.

        Examples:
            >>> policy = RetryPolicy(RetryConfig(max_attempts=2, jitter="none"))
            >>> lost = Attempt(1, ConnectionResetError(), now=0.0, epoch=0.0, started=0.0,
            ...                deadline=None, replayable=True)
            >>> policy.next_delay(lost)
            0.5
            >>> from dataclasses import replace
            >>> policy.next_delay(replace(lost, number=2)) is None
            True
        """
        return None if self._stopped(attempt) else self._backoff(attempt)

    def _method_allowed(self, request: httpx.Request, outcome: httpx.Response | Exception) -> bool:
        return (
            request.method in self.config.retry_methods
            or RequestOptions.of(request).idempotent
            or self.config.idempotency_header in request.headers
            or (isinstance(outcome, Exception) and is_connect_failure(outcome))
        )

    def _stopped(self, attempt: Attempt) -> bool:
        if self.config.stop is not None:
            return bool(self.config.stop(self._tenacity_state(attempt)))
        return attempt.number >= self.config.max_attempts

    def _backoff(self, attempt: Attempt) -> float:
        if self.config.wait is not None:
            return max(float(self.config.wait(self._tenacity_state(attempt))), 0.0)
        return backoff_delay(
            attempt.number,
            factor=self.config.backoff_factor,
            maximum=self.config.backoff_max,
            jitter=self.config.jitter,
            rng=self._rng,
        )

    @staticmethod
    def _tenacity_state(attempt: Attempt) -> RetryCallState:
        """The attempt in tenacity's vocabulary, so its wait and stop strategies work."""
        # Only a config holding tenacity strategies gets here: their owner imported tenacity.
        from tenacity import Future, RetryCallState

        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.start_time = attempt.started
        state.attempt_number = attempt.number
        state.outcome_timestamp = attempt.now
        future: Future = Future(attempt.number)
        if isinstance(attempt.outcome, Exception):
            future.set_exception(attempt.outcome)
        else:
            future.set_result(attempt.outcome)
        state.outcome = future
        return state


_PHASES: dict[type[httpx.TimeoutException], str] = {
    httpx.ConnectTimeout: "connect",
    httpx.ReadTimeout: "read",
    httpx.WriteTimeout: "write",
    httpx.PoolTimeout: "pool",
}


def clipped_timeouts(
    original: dict[str, float | None], left: float
) -> tuple[dict[str, float | None], set[str]]:
    """Each per-operation timeout shrunk to ``left``, and the phases that had to shrink.

    The layers that wait within the request's deadline (retry, rate limit) give
    the attempt only the time left this way.

    Examples:
        >>> timeouts, shrunk = clipped_timeouts({"connect": 5.0, "read": 30.0}, left=10.0)
        >>> timeouts
        {'connect': 5.0, 'read': 10.0, 'write': 10.0, 'pool': 10.0}
        >>> sorted(shrunk)
        ['pool', 'read', 'write']
    """
    clipped: dict[str, float | None] = {}
    shrunk: set[str] = set()
    for name in ("connect", "read", "write", "pool"):
        value = original.get(name)
        if value is None or value > left:
            clipped[name] = left
            shrunk.add(name)
        else:
            clipped[name] = value
    return clipped, shrunk


def _deadline_caused(error: Exception, shrunk: AbstractSet[str]) -> bool:
    """Did ``error`` fire on a timeout the deadline had shortened?"""
    if isinstance(error, OutOfTime):  # the attempt was cut off at the deadline
        return True
    if not isinstance(error, httpx.TimeoutException) or isinstance(error, TimeoutError):
        return False  # one of ours (the rate limiter's) already says which wait ran out
    phase = next((name for cls, name in _PHASES.items() if isinstance(error, cls)), None)
    return phase in shrunk if phase is not None else bool(shrunk)


def _note(error: BaseException, text: str) -> None:
    """Attach ``text`` as a PEP 678 note (kept in ``__notes__`` on Python 3.10 too)."""
    if text:
        notes = getattr(error, "__notes__", None)
        if not isinstance(notes, list):
            notes = []
            error.__notes__ = notes  # type: ignore[attr-defined]
        notes.append(f"buttress: {text}")


def retry_flow(
    policy: RetryPolicy,
    request: httpx.Request,
    clock: Clock,
) -> Generator[Effect, Outcome, httpx.Response]:
    """The retry layer, written once for sync and async.

    Sends ``request``, reads the body of non-streamed responses inside the
    attempt (so a failure mid-body is retried too), and retries as ``policy``
    decides, sleeping on ``clock``. The final response carries the number of
    attempts in ``response.extensions["buttress.attempts"]``.
    """
    options = RequestOptions.of(request)
    if options.retry is False:
        policy = policy.with_config(_send_once())
    elif isinstance(options.retry, RetryConfig):
        policy = policy.with_config(options.retry)
    # Plain httpx users get a streamed response unless they passed buttress options.
    read_body = EXTENSION_KEY in request.extensions and not options.streamed

    started = clock.monotonic()
    given_timeouts = request.extensions.get("timeout")
    # The client fixes the deadline once per call, for every redirect and auth step its
    # send makes through here; alone under plain httpx, each send starts its own.
    given_deadline = request.extensions.get(DEADLINE_KEY)
    deadline = given_deadline
    if deadline is None and options.total_timeout is not None:
        deadline = started + options.total_timeout
    if deadline is not None:  # for the layers below: the rate limiter's waits count too
        request.extensions[DEADLINE_KEY] = deadline
    key_header = policy._key_header
    if (
        key_header is not None
        and request.method in ("POST", "PATCH")
        and key_header not in request.headers
    ):
        request.headers[key_header] = str(uuid.uuid4())
    replayable = body_is_replayable(request)
    if policy._shared_budget is not None:
        yield from policy._shared_budget.record(request.url.host, started)
    elif policy.budget is not None:
        policy.budget.record_request(request.url.host, started)

    try:
        return (
            yield from _attempts(
                policy, request, clock, options, read_body, started, deadline, replayable
            )
        )
    finally:  # leave the request as it came, should the caller send it again
        if deadline is not None:  # only a deadline changed them
            _restore(request.extensions, DEADLINE_KEY, given_deadline)
            _restore(request.extensions, "timeout", given_timeouts)


def _restore(extensions: dict[str, Any], key: str, given: object) -> None:
    """Put back extension ``key`` as it was given (``None``: not there)."""
    if given is None:
        extensions.pop(key, None)
    else:
        extensions[key] = given


def _ran_out(
    options: RequestOptions, when: Literal["before", "during"], number: int, request: httpx.Request
) -> TimeoutError:
    """The error of a total timeout that ran out ``when`` attempt ``number``."""
    return TimeoutError(
        f"total timeout of {options.total_timeout:g}s ran out {when} attempt {number} "
        f"of {describe(request)}",
        request=request,
    )


def _announce_retry(
    request: httpx.Request, number: int, outcome: httpx.Response | Exception, decision: Decision
) -> None:
    """Count the retry for metrics, and log its one WARNING record.

    The record carries the request id the logging layer sends.
    """
    cause = outcome.status_code if isinstance(outcome, httpx.Response) else None
    report(request, "retried", host=request.url.host, reason=str(cause or type(outcome).__name__))
    if not logger.isEnabledFor(logging.WARNING):
        return
    trace = request_trace(request)
    url = Redactor.for_request(request).url(request.url)
    extra = {
        "request_id": trace.request_id if trace is not None else None,
        "method": request.method,
        "url": url,
        "attempt": number,
        "delay": decision.delay,
        "reason": decision.reason,
    }
    logger.warning(
        "retrying %s %s in %.2fs (attempt %d failed: %s)",
        request.method,
        url,
        decision.delay,
        number,
        decision.reason,
        extra=extra,
    )


def _attempts(
    policy: RetryPolicy,
    request: httpx.Request,
    clock: Clock,
    options: RequestOptions,
    read_body: bool,
    started: float,
    deadline: float | None,
    replayable: bool,
) -> Generator[Effect, Outcome, httpx.Response]:
    """The attempt loop of :func:`retry_flow`."""
    # Only a deadline shortens the attempts' timeouts: then they start from these.
    original_timeouts = {} if deadline is None else dict(request.extensions.get("timeout") or {})
    rewind = _rewinder(request)
    number = 0
    while True:
        number += 1
        shrunk = (
            _NOTHING_SHRUNK
            if deadline is None
            else _fit_to_deadline(request, original_timeouts, deadline, clock, options, number)
        )
        if number > 1:
            rewind()
        resign = request.extensions.get(RESIGN_KEY)
        if resign is not None:  # a signature that carries its time and URL (AWS SigV4)
            resign(request)
        sent_at = clock.monotonic()
        outcome = yield Send(request, time_left(deadline, clock))
        # a breaker beneath left how long its circuit stays open (this attempt's alone)
        open_for = request.extensions.pop(CIRCUIT_OPEN_FOR, None)
        open_until = None if open_for is None else clock.monotonic() + open_for
        if isinstance(outcome, httpx.Response) and read_body:
            outcome = yield Read(outcome, time_left(deadline, clock))  # or the error that cut it
        assert outcome is not None  # Send and Read never give None
        now = clock.monotonic()  # the attempt's end: how long it took, and when it is judged
        if isinstance(outcome, httpx.Response) and read_body:  # its body was read
            outcome.elapsed = datetime.timedelta(seconds=now - sent_at)
        if METRICS_EXTENSION in request.extensions:  # else nothing listens: skip the fields
            _report_attempt(request, outcome, now - sent_at)
        if isinstance(outcome, Exception) and _deadline_caused(outcome, shrunk):
            raise _ran_out(options, "during", number, request) from outcome
        if retry_reason(outcome, policy._retry_statuses) is None:
            # nothing to judge (a success, nearly always): judge() would say _DONE
            return _last(request, outcome, _DONE, number, options)

        attempt = Attempt(number, outcome, now, clock.time(), started, deadline, replayable)
        decision = yield from _decided(policy, request, attempt, open_until)
        if decision.action != "retry":
            if decision.action == "raise_timeout" and isinstance(outcome, httpx.Response):
                # nobody reads this answer: an unread (streamed) body gives its connection back
                yield from call(outcome.close, outcome.aclose)
            return _last(request, outcome, decision, number, options)
        _announce_retry(request, number, outcome, decision)
        if isinstance(outcome, httpx.Response) and not read_body:
            yield Read(outcome, time_left(deadline, clock))  # drain it: the connection goes back
            if deadline is not None and clock.monotonic() + decision.delay >= deadline:
                raise _ran_out(options, "before", number + 1, request)  # the drain took it
        yield Sleep(decision.delay)


def _decided(
    policy: RetryPolicy, request: httpx.Request, attempt: Attempt, open_until: float | None
) -> Generator[Effect, object, Decision]:
    """What follows ``attempt``, whose outcome may be retried: the policy's decision, unless
    the circuit beneath stays open past the backoff or the budget refuses the retry."""
    decision, now = policy.judge(request, attempt), attempt.now
    # judged now, after the body was read: would the next attempt be refused unsent?
    if decision.action == "retry" and open_until is not None and open_until - now > decision.delay:
        decision = _circuit_opened(open_until - now)
    if decision.action == "retry" and policy.budget is not None:
        budget, host = policy.budget, request.url.host
        if isinstance(budget, SharedRetryBudget):
            allowed = yield from budget.withdraw(host, now)
        else:
            allowed = budget.try_withdraw(host, now)
        if not allowed:
            decision = policy.refused(request, decision)
    return decision


def _circuit_opened(open_for: float) -> Decision:
    """The end of the attempts when the circuit beneath opened for longer than the backoff.

    Examples:
        >>> _circuit_opened(29.5).reason
        'not retried: the circuit breaker opened; it lets a call through in 29.5s'
    """
    when = "while forced open" if open_for == math.inf else f"in {open_for:.3g}s"
    reason = f"not retried: the circuit breaker opened; it lets a call through {when}"
    return Decision("stop", reason=reason, retry_after=None if open_for == math.inf else open_for)


_NOTHING_SHRUNK: frozenset[str] = frozenset()  # no deadline: every timeout as given


def _fit_to_deadline(
    request: httpx.Request,
    original_timeouts: dict[str, float | None],
    deadline: float,
    clock: Clock,
    options: RequestOptions,
    number: int,
) -> AbstractSet[str]:
    """Give attempt ``number`` only the time left; the timeout phases that had to shrink."""
    left = deadline - clock.monotonic()
    if left <= 0:
        raise _ran_out(options, "before", number, request)
    timeouts, shrunk = clipped_timeouts(original_timeouts, left)
    request.extensions["timeout"] = timeouts
    return shrunk


def _report_attempt(
    request: httpx.Request, outcome: httpx.Response | Exception, duration: float
) -> None:
    """Tell the request's metrics collector how an attempt ended."""
    report(
        request,
        "attempt_finished",
        method=request.method,
        host=request.url.host,
        status=outcome.status_code if isinstance(outcome, httpx.Response) else None,
        duration=duration,
        error=type(outcome).__name__ if isinstance(outcome, Exception) else None,
    )


def _last(
    request: httpx.Request,
    outcome: httpx.Response | Exception,
    decision: Decision,
    number: int,
    options: RequestOptions,
) -> httpx.Response:
    """The last attempt's outcome: returned, or raised with why there was no retry in a note.

    A response is returned whatever its status: only the facade raises for status.
    When the policy stopped early on a status it would have retried, the response
    says why (:class:`~buttress.policies.outcomes.EarlyStop`), for the facade's error.
    """
    if decision.action == "raise_timeout":
        error = TimeoutError(
            f"total timeout of {options.total_timeout:g}s: {decision.reason}", request=request
        )
        raise error from (outcome if isinstance(outcome, Exception) else None)
    if isinstance(outcome, Exception):
        _note(outcome, decision.reason)
        if number > 1:
            _note(outcome, f"{number} attempts were made")
        raise outcome
    extensions = {**outcome.extensions, ATTEMPTS_KEY: number}
    if decision.action == "stop":
        extensions[RETRY_STOP_KEY] = EarlyStop(decision.reason, decision.retry_after)
    outcome.extensions = extensions
    return outcome
