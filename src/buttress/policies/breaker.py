"""The circuit breaker state machine: pure, clock injected, safe under threads and tasks.

::

    closed    --[failure threshold or rate exceeded]--> open
    open      --[reset_timeout elapsed]-------------> half_open
    half_open --[success_threshold successes]-------> closed
    half_open --[failure]---------------------------> open

A :class:`Circuit` is one such machine. A :class:`CircuitBreaker` holds one
circuit, or one per host (``per_host=True``), and is what
``client.circuit_breaker`` returns. A host's circuit is forgotten once it has
been unused for a minute and is closed with nothing to remember (see
:mod:`buttress.policies._idle`), so memory follows the hosts in use. Each call
takes a :class:`Permit` before it is sent and reports how it went; the lock is
held only for O(1) bookkeeping.

With ``CircuitBreakerConfig(store=...)`` the circuits are
:class:`~buttress.stores.breaker.SharedCircuit` objects instead: the same state
machine, kept in the store for every process, asked by :func:`breaker_flow`
through flow steps; each keeps a :class:`Circuit` as its fallback.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import httpx
from pydantic import Field

from .._clock import SYSTEM_CLOCK
from .._config import AnyCollection, FrozenConfig, PythonOnly
from .._exceptions import CircuitBreakerOpenError, describe
from .._extensions import BREAKER_ACQUISITION, CIRCUIT_OPEN_FOR
from .._flow import Effect, Outcome, Send
from ._idle import IdleStates
from .outcomes import is_breaker_failure
from .store import SharedStore

if TYPE_CHECKING:
    from .._clock import Clock
    from ..stores.breaker import SharedCircuit

__all__ = [
    "Circuit",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitMetrics",
    "CircuitState",
    "Permit",
    "StateChange",
    "breaker_flow",
    "is_breaker_failure",
]

logger = logging.getLogger("buttress.circuit_breaker")

CircuitState: TypeAlias = Literal["closed", "open", "half_open"]
_HISTORY = 100  # state changes kept in the metrics


class CircuitBreakerConfig(FrozenConfig):
    """How a circuit breaker judges calls and when it opens.

    Attributes:
        failure_threshold: consecutive failures that open a closed circuit.
        success_threshold: successes in half-open that close it again.
        reset_timeout: seconds an open circuit waits before going half-open.
        half_open_max_calls: calls let through at once while half-open; the
            rest are rejected like an open circuit.
        failure_rate_threshold: also open when this fraction (0-1] of the calls
            in the last ``sampling_duration`` seconds failed; ``None``: off.
        sampling_duration: the window, in seconds, for the rates.
        minimum_calls: calls needed in the window before a rate can open the
            circuit, so one early failure does not.
        slow_call_duration: a call that takes at least this long (seconds,
            until the response headers) is slow; ``None``: off.
        slow_call_rate_threshold: open when this fraction of the calls in the
            window were slow (resilience4j's idea).
        excluded_exceptions: exception types that never count.
        included_status_codes: response statuses that count as failures.
        per_host: one independent circuit per host.
        fallback: called with the request when the circuit is open; its
            response is returned instead of raising ``CircuitBreakerOpenError``.
        on_state_change: called as ``(host, old_state, new_state)`` after every
            transition, outside any lock: the place to feed a metrics collector
            (``collector.breaker_state_changed``). Its errors are logged, never raised.
        store: a :class:`~buttress.RedisStore` to share the circuits with every
            process that uses the same store: one opens, all fail fast (see
            :class:`~buttress.stores.breaker.SharedCircuit`). ``None``: this
            process's own circuits.

    Caller mistakes (invalid URL, unsupported scheme, a full local pool,
    validation errors) never count, whatever is configured.

    Examples:
        >>> config = CircuitBreakerConfig(failure_threshold=5, reset_timeout=30.0)
        >>> config.success_threshold
        2

    Shared by a fleet of processes, one circuit per host::

        store = buttress.RedisStore("redis://127.0.0.1:6379/0", namespace="billing")
        config = CircuitBreakerConfig(failure_threshold=5, per_host=True, store=store)
    """

    failure_threshold: int = Field(default=5, ge=1)
    success_threshold: int = Field(default=2, ge=1)
    reset_timeout: float = Field(default=30.0, gt=0)
    half_open_max_calls: int = Field(default=1, ge=1)
    failure_rate_threshold: float | None = Field(default=None, gt=0, le=1)
    sampling_duration: float = Field(default=60.0, gt=0)
    minimum_calls: int = Field(default=10, ge=1)
    slow_call_duration: float | None = Field(default=None, gt=0)
    slow_call_rate_threshold: float = Field(default=1.0, gt=0, le=1)
    excluded_exceptions: AnyCollection[tuple[type[BaseException], ...]] = ()
    included_status_codes: AnyCollection[frozenset[int]] = frozenset({500, 502, 503, 504})
    per_host: bool = False
    fallback: PythonOnly[Callable[[httpx.Request], httpx.Response] | None] = None
    on_state_change: PythonOnly[Callable[[str, str, str], None] | None] = None
    store: PythonOnly[SharedStore | None] = None

    def __init__(self, **data: Any) -> None:
        if isinstance(data.get("excluded_exceptions"), Iterable):
            data["excluded_exceptions"] = tuple(data["excluded_exceptions"])
        super().__init__(**data)


@dataclass(frozen=True, slots=True)
class StateChange:
    """One transition: ``from_state`` -> ``to_state`` at epoch time ``at``, and why."""

    from_state: CircuitState
    to_state: CircuitState
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class CircuitMetrics:
    """A snapshot of a circuit's counters (cumulative since it was made).

    Examples:
        >>> breaker = CircuitBreaker(CircuitBreakerConfig())
        >>> breaker.metrics.failure_count, breaker.metrics.rejected_count
        (0, 0)
    """

    state: CircuitState
    failure_count: int
    success_count: int
    slow_call_count: int
    rejected_count: int
    last_failure_time: float | None
    consecutive_failures: int
    state_changes: tuple[StateChange, ...]


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to send one call; ``generation`` ties its result to the state it was taken in.

    A permit from a circuit shared through a store is ``shared``; a half-open
    one there holds trial ``lease`` number (``0``: none).
    """

    generation: int
    half_open: bool
    lease: int = 0
    shared: bool = False


@dataclass(frozen=True, slots=True)
class Rejection:
    """The circuit refused a call; ``retry_after`` is the time until half-open (if known).

    ``circuit`` names the circuit that refused: a host, or ``"*"`` for the one
    circuit every host shares (``per_host=False``).
    """

    retry_after: float | None
    circuit: str = "*"


@dataclass(eq=False, slots=True)
class _Tally:
    """What a circuit's metrics report: its cumulative counts and the recent state changes.

    A local :class:`Circuit` and a shared one count the same way; each guards
    its tally with its own lock.
    """

    clock: Clock
    failures: int = 0
    successes: int = 0
    slow: int = 0
    rejected: int = 0
    last_failure: float | None = None
    changes: deque[StateChange] = field(default_factory=lambda: deque(maxlen=_HISTORY))

    def count(self, *, failure: bool, slow: bool) -> None:
        """Count one call that went through: a failure or a success, and whether it was slow."""
        if failure:
            self.failures += 1
            self.last_failure = self.clock.time()
        else:
            self.successes += 1
        self.slow += slow

    def metrics(self, state: CircuitState, consecutive_failures: int) -> CircuitMetrics:
        """The counts as :class:`CircuitMetrics`, with the circuit's ``state`` and failure run."""
        return CircuitMetrics(
            state=state,
            failure_count=self.failures,
            success_count=self.successes,
            slow_call_count=self.slow,
            rejected_count=self.rejected,
            last_failure_time=self.last_failure,
            consecutive_failures=consecutive_failures,
            state_changes=tuple(self.changes),
        )


def _is_slow(config: CircuitBreakerConfig, duration: float) -> bool:
    """Whether a call that took ``duration`` seconds (until its response headers) was slow."""
    return config.slow_call_duration is not None and duration >= config.slow_call_duration


class Circuit:
    """One circuit's state machine.

    Examples:
        >>> from buttress.testing import FakeClock
        >>> clock = FakeClock()
        >>> circuit = Circuit(CircuitBreakerConfig(failure_threshold=2, reset_timeout=10), clock)
        >>> for _ in range(2):
        ...     circuit.record(circuit.acquire(), failure=True, duration=0.1)
        >>> circuit.state
        'open'
        >>> clock.advance(10)
        >>> circuit.state
        'half_open'
    """

    def __init__(
        self, config: CircuitBreakerConfig, clock: Clock = SYSTEM_CLOCK, *, name: str = "*"
    ) -> None:
        self.config = config
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state: CircuitState = "closed"
        self._forced: CircuitState | None = None
        self._generation = 0
        self._opened_at = 0.0
        self._consecutive_failures = 0
        self._half_open_in_flight = 0
        self._in_flight = 0  # permits out, whatever the state: their results still count
        self._half_open_successes = 0
        self._window: deque[tuple[float, bool, bool]] = deque()  # (time, failed, slow)
        self._window_failures = 0
        self._window_slow = 0
        self._tally = _Tally(clock)
        self._permit = Permit(self._generation, half_open=False)  # see _closed_permit
        # What every call asks of the config, as plain attributes (a model's cost far more).
        self._slow_after = config.slow_call_duration or math.inf  # None: no call is slow
        self._rated = config.failure_rate_threshold is not None or self._slow_after < math.inf

    # -- reading ---------------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """``"closed"``, ``"open"`` or ``"half_open"`` (open past its timeout reads half-open)."""
        with self._lock:
            if self._state == "open" and self._forced is None and self._timeout_passed():
                return "half_open"
            return self._state

    def open_for(self) -> float | None:
        """Seconds until this open circuit lets a call through; ``None`` unless it is open.

        ``math.inf`` while forced open.
        """
        # asked after every call: most find it closed, without taking the lock
        return self._open_for() if self._state == "open" else None

    def _open_for(self) -> float | None:
        with self._lock:
            if self._state != "open":
                return None
            if self._forced is not None:
                return math.inf
            left = self._retry_after()
            return left if left else None  # its timeout passed: a trial call may go

    @property
    def metrics(self) -> CircuitMetrics:
        """Counters and the recent state changes."""
        with self._lock:
            return self._tally.metrics(self._state, self._consecutive_failures)

    # -- calls -----------------------------------------------------------------------------

    def acquire(self) -> Permit | Rejection:
        """A permit to send a call, or the rejection (open, or half-open and full)."""
        with self._lock:
            if self._state == "closed":  # nearly every call
                self._in_flight += 1
                return self._closed_permit()
            changes: list[StateChange] = []
            if self._state == "open" and self._forced is None and self._timeout_passed():
                changes.append(self._move("half_open", "reset timeout elapsed"))
            if self._state == "half_open" and self._half_open_in_flight < (
                self.config.half_open_max_calls
            ):
                self._half_open_in_flight += 1
                self._in_flight += 1
                result: Permit | Rejection = Permit(self._generation, half_open=True)
            else:
                self._tally.rejected += 1
                result = Rejection(self._retry_after(), self.name)
        self._log(changes)
        return result

    def adopt(self) -> Permit:
        """A closed-state permit for a call another circuit let through, to :meth:`record` here.

        A shared circuit hands this process's circuit the results the store could
        not take, so they still count here.
        """
        with self._lock:
            self._in_flight += 1
            return self._closed_permit()

    def release(self, permit: Permit) -> None:
        """Give back a permit whose call did not count (cancelled, or a caller mistake)."""
        with self._lock:
            self._in_flight -= 1
            if permit.half_open and permit.generation == self._generation:
                self._half_open_in_flight -= 1

    def record(self, permit: Permit, *, failure: bool, duration: float) -> None:
        """Report how a permitted call went; it may change the state."""
        slow = duration >= self._slow_after
        with self._lock:
            self._in_flight -= 1
            self._tally.count(failure=failure, slow=slow)
            if permit.generation != self._generation:
                return  # the state moved on while this call was in flight
            if permit.half_open:
                change = self._judge_trial(failure, slow)
            elif self._state == "closed":
                change = self._judge_closed(failure, slow)
            else:
                change = None
        if change is not None:  # a closed circuit's success changes nothing: nearly every call
            self._log([change])

    # -- manual control --------------------------------------------------------------------

    def force_open(self) -> None:
        """Open the circuit and keep it open until :meth:`force_close` or :meth:`reset`."""
        with self._lock:
            self._forced = "open"
            changes = [self._move("open", "forced open")] if self._state != "open" else []
        self._log(changes)

    def force_close(self) -> None:
        """Close the circuit and keep it closed (failures count but never trip it) until reset."""
        with self._lock:
            self._forced = "closed"
            changes = [self._move("closed", "forced closed")] if self._state != "closed" else []
        self._log(changes)

    def reset(self) -> None:
        """Back to a fresh closed circuit, ending any forcing; cumulative metrics are kept."""
        with self._lock:
            self._forced = None
            changes = [self._move("closed", "reset")] if self._state != "closed" else []
            self._generation += 1
            self._clear_window()
        self._log(changes)

    def is_fresh(self, now: float, forced: Literal["open", "closed"] | None = None) -> bool:
        """Whether a new circuit (forced to ``forced``) would decide exactly as this one.

        True when closed, forced alike, with no call in flight, no consecutive
        failure and nothing left in its rate window at monotonic time ``now``.
        Only the cumulative metrics differ, so a breaker may forget it.

        Examples:
            >>> from buttress.testing import FakeClock
            >>> circuit = Circuit(CircuitBreakerConfig(), FakeClock())
            >>> circuit.is_fresh(now=0.0)
            True
            >>> circuit.record(circuit.acquire(), failure=True, duration=0.1)
            >>> circuit.is_fresh(now=0.0)
            False
        """
        with self._lock:
            window = self._window
            return (
                self._state == "closed"
                and self._forced == forced
                and self._in_flight == 0
                and self._consecutive_failures == 0
                and (not window or window[-1][0] <= now - self.config.sampling_duration)
            )

    # -- internals (called with the lock held) -----------------------------------------------

    def _closed_permit(self) -> Permit:
        """This generation's permit for a closed-state call: one for all, as a permit is frozen."""
        permit = self._permit
        if permit.generation != self._generation:
            permit = self._permit = Permit(self._generation, half_open=False)
        return permit

    def _judge_trial(self, failure: bool, slow: bool) -> StateChange | None:
        """A half-open trial call's result: the change it makes, if any."""
        self._half_open_in_flight -= 1
        if failure or slow:
            return self._move("open", "a trial call failed" if failure else "a trial call was slow")
        self._half_open_successes += 1
        if self._half_open_successes >= self.config.success_threshold:
            return self._move("closed", "trial calls succeeded")
        return None

    def _judge_closed(self, failure: bool, slow: bool) -> StateChange | None:
        """A closed-state call's result: the change it makes (opening), if any."""
        self._consecutive_failures = self._consecutive_failures + 1 if failure else 0
        why = self._add_to_window(failure, slow) if self._rated else ""
        if self._forced is not None:
            return None
        if failure and self._consecutive_failures >= self.config.failure_threshold:
            why = f"{self._consecutive_failures} consecutive failures"
        return self._move("open", why) if why else None

    def _timeout_passed(self) -> bool:
        return self._clock.monotonic() - self._opened_at >= self.config.reset_timeout

    def _retry_after(self) -> float | None:
        if self._forced == "open":
            return None
        if self._state == "half_open":
            return 0.0
        return max(self.config.reset_timeout - (self._clock.monotonic() - self._opened_at), 0.0)

    def _move(self, to: CircuitState, reason: str) -> StateChange:
        change = StateChange(self._state, to, self._clock.time(), reason)
        self._state = to
        self._generation += 1
        self._half_open_in_flight = 0
        self._half_open_successes = 0
        self._consecutive_failures = 0
        if to == "open":
            self._opened_at = self._clock.monotonic()
        if to in ("open", "closed"):
            self._clear_window()
        self._tally.changes.append(change)
        return change

    def _clear_window(self) -> None:
        self._window.clear()
        self._window_failures = self._window_slow = 0
        self._consecutive_failures = 0

    def _add_to_window(self, failed: bool, slow: bool) -> str:
        """Record a closed-state call when a rate is judged; the reason to open, else ''."""
        config = self.config
        now = self._clock.monotonic()
        window = self._window
        window.append((now, failed, slow))
        self._window_failures += failed
        self._window_slow += slow
        while window and window[0][0] <= now - config.sampling_duration:
            _, old_failed, old_slow = window.popleft()
            self._window_failures -= old_failed
            self._window_slow -= old_slow
        calls = len(window)
        if calls < config.minimum_calls:
            return ""
        rate = config.failure_rate_threshold
        if rate is not None and self._window_failures / calls >= rate:
            return f"failure rate {self._window_failures}/{calls} reached {rate:.0%}"
        slow_rate = config.slow_call_rate_threshold
        if config.slow_call_duration is not None and self._window_slow / calls >= slow_rate:
            return f"slow call rate {self._window_slow}/{calls} reached {slow_rate:.0%}"
        return ""

    def _log(self, changes: list[StateChange]) -> None:
        log_changes(self.config, self.name, changes)

    def __repr__(self) -> str:
        return f"Circuit({self.name!r}, state={self.state!r})"


def log_changes(config: CircuitBreakerConfig, name: str, changes: list[StateChange]) -> None:
    """Log each state change of circuit ``name`` and tell ``config.on_state_change``."""
    if not changes:  # nearly every call
        return
    where = "" if name == "*" else f" for {name}"
    for change in changes:
        level = logging.WARNING if change.to_state == "open" else logging.INFO
        logger.log(
            level,
            "circuit breaker%s: %s -> %s (%s)",
            where,
            change.from_state,
            change.to_state,
            change.reason,
        )
        listener = config.on_state_change
        if listener is not None:
            try:
                listener(name, change.from_state, change.to_state)
            except Exception:
                logger.exception("circuit breaker on_state_change callback failed")


class CircuitBreaker:
    """The breaker a client shares between its requests: one circuit, or one per host.

    ``state``, ``metrics`` and the manual controls act on the single circuit;
    with ``per_host=True`` use :meth:`for_host` for one host's circuit. Then
    ``state`` is the worst state over all hosts, ``metrics`` their sum, and the
    manual controls apply to every host. A host's circuit that has been unused
    for a minute and is closed with an empty window is forgotten (its counts
    stay in ``metrics``); a new one is made if the host comes back.

    With a ``store`` in the config the circuits are shared by every process
    using it (:class:`~buttress.stores.breaker.SharedCircuit`): ``state`` is
    the fleet's as this process last saw it, ``metrics`` count this process's
    calls, and the manual controls change the fleet's circuits.

    Examples:
        >>> breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=3))
        >>> breaker.state
        'closed'
        >>> breaker.force_open()
        >>> breaker.for_host("api.example.com").state
        'open'
        >>> breaker.reset()
        >>> breaker.state
        'closed'
    """

    def __init__(
        self, config: CircuitBreakerConfig | None = None, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.config = config or CircuitBreakerConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._circuits: IdleStates[str, Circuit | SharedCircuit] = IdleStates(
            lambda circuit, now: circuit.is_fresh(now, self._forced)
        )
        self._forgotten: CircuitMetrics | None = None  # the counts of circuits forgotten
        self._single = None if self.config.per_host else self._new_circuit("*")
        self._forced: Literal["open", "closed"] | None = None  # applied to hosts seen later
        # read for every call, kept plain (a config model's attribute costs far more)
        self._times_calls = self.config.slow_call_duration is not None

    def _new_circuit(self, name: str) -> Circuit | SharedCircuit:
        if self.config.store is None:
            return Circuit(self.config, self._clock, name=name)
        return self.config.store.circuit(self.config, self._clock, name=name)

    def _for_request(self, request: httpx.Request) -> Circuit | SharedCircuit:
        """The circuit that guards ``request``'s host: :meth:`for_host`, asked by request."""
        # the single circuit needs no host, which httpx works out anew on every ask
        return self._single if self._single is not None else self.for_host(request.url.host)

    def for_host(self, host: str) -> Circuit | SharedCircuit:
        """The circuit that guards ``host`` (the single shared one unless ``per_host``).

        With a ``store`` in the config it is a :class:`~buttress.stores.breaker.SharedCircuit`.
        """
        if self._single is not None:
            return self._single
        host = host.lower()
        now = self._clock.monotonic()
        # Under the lock: a circuit looked up is marked used before any tidy can see it
        # idle, so a call never takes its permit from a circuit just forgotten.
        with self._lock:
            if self._circuits.due(now):
                self._forget(self._circuits.tidy(now))
            circuit = self._circuits.get(host, now)
            if circuit is None:
                circuit = self._new_circuit(host)
                self._circuits.add(host, circuit, now)
                if self._forced is not None:
                    if isinstance(circuit, Circuit):
                        (circuit.force_open if self._forced == "open" else circuit.force_close)()
                    else:  # no store call here (a flow may be asking): with its first call
                        circuit.force_later(self._forced)
        return circuit

    def _forget(self, circuits: list[Circuit | SharedCircuit]) -> None:
        """Keep forgotten circuits' counts, so the summed metrics never go back."""
        if circuits:
            kept = [] if self._forgotten is None else [self._forgotten]
            total = _sum_metrics("closed", kept + [c.metrics for c in circuits])
            self._forgotten = replace(total, state_changes=total.state_changes[-_HISTORY:])

    @property
    def circuits(self) -> dict[str, Circuit | SharedCircuit]:
        """Every circuit kept, by host (``{"*": circuit}`` when not per host)."""
        if self._single is not None:
            return {"*": self._single}
        with self._lock:
            return dict(self._circuits.items())

    @property
    def state(self) -> CircuitState:
        """The circuit's state; per host, the worst one (open, then half_open, then closed)."""
        states = {circuit.state for circuit in self.circuits.values()}
        if "open" in states:
            return "open"
        return "half_open" if "half_open" in states else "closed"

    @property
    def metrics(self) -> CircuitMetrics:
        """The circuit's metrics; per host, summed over hosts (changes merged by time)."""
        snapshots = [circuit.metrics for circuit in self.circuits.values()]
        if self._forgotten is not None:
            snapshots.append(self._forgotten)
        return _sum_metrics(self.state, snapshots)

    def force_open(self) -> None:
        """Open every circuit (hosts seen later too) until :meth:`force_close` or :meth:`reset`."""
        self._forced = "open"
        for circuit in self.circuits.values():
            circuit.force_open()

    def force_close(self) -> None:
        """Close every circuit (hosts seen later too) and keep it closed until :meth:`reset`."""
        self._forced = "closed"
        for circuit in self.circuits.values():
            circuit.force_close()

    def reset(self) -> None:
        """Return every circuit to a fresh closed state and end any forcing."""
        self._forced = None
        for circuit in self.circuits.values():
            circuit.reset()

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self.state!r}, per_host={self.config.per_host})"


def _sum_metrics(state: CircuitState, snapshots: list[CircuitMetrics]) -> CircuitMetrics:
    """Several circuits' metrics as one: counts summed, the latest changes merged by time."""
    failures = [m.last_failure_time for m in snapshots if m.last_failure_time is not None]
    changes = sorted((c for m in snapshots for c in m.state_changes), key=lambda c: c.at)
    return CircuitMetrics(
        state=state,
        failure_count=sum(m.failure_count for m in snapshots),
        success_count=sum(m.success_count for m in snapshots),
        slow_call_count=sum(m.slow_call_count for m in snapshots),
        rejected_count=sum(m.rejected_count for m in snapshots),
        last_failure_time=max(failures) if failures else None,
        consecutive_failures=max((m.consecutive_failures for m in snapshots), default=0),
        state_changes=tuple(changes),
    )


def open_circuit_error(request: httpx.Request, rejection: Rejection) -> CircuitBreakerOpenError:
    """The error for ``request``, which an open circuit did not let through.

    Examples:
        >>> request = httpx.Request("GET", "https://x.test/")
        >>> error = open_circuit_error(request, Rejection(30, "x.test"))
        >>> error.host, error.retry_after
        ('x.test', 30)
        >>> print(error)
        circuit breaker for x.test is open: GET https://x.test/ was not sent; retry in 30s
        >>> print(open_circuit_error(request, Rejection(30)))  # the circuit of every host
        every host's circuit breaker is open: GET https://x.test/ was not sent; retry in 30s
    """
    host = request.url.host
    when = "" if rejection.retry_after is None else f"; retry in {rejection.retry_after:.3g}s"
    # the one circuit of every host opened on failures anywhere, not necessarily at host
    circuit = (
        "every host's circuit breaker"
        if rejection.circuit == "*"
        else f"circuit breaker for {host or 'this client'}"
    )
    return CircuitBreakerOpenError(
        f"{circuit} is open: {describe(request)} was not sent{when}",
        host=host,
        retry_after=rejection.retry_after,
        request=request,
    )


def breaker_flow(
    breaker: CircuitBreaker, request: httpx.Request, clock: Clock, *, hand_down: bool = False
) -> Generator[Effect, Outcome, httpx.Response]:
    """The breaker layer, written once for sync and async: judge one attempt.

    An open circuit returns the fallback's response or raises
    :class:`CircuitBreakerOpenError` without a network call. A circuit shared
    through a store is asked with flow steps (the store's calls); this
    process's own circuit is asked directly. With ``hand_down`` (a limiter
    sharing the circuit's store lies beneath), a shared circuit is asked by
    that limiter, in the same store call as it books the request's slot.
    """
    circuit = breaker._for_request(request)
    if hand_down and not isinstance(circuit, Circuit):
        return (yield from _asked_beneath(breaker, circuit, request, clock))
    permit = circuit.acquire() if isinstance(circuit, Circuit) else (yield from circuit.acquire())
    if isinstance(permit, Rejection):
        return _rejected(breaker, request, permit)
    timed = breaker._times_calls  # a call's duration only says whether it was slow
    started = clock.monotonic() if timed else 0.0
    try:
        outcome = yield Send(request)
    except GeneratorExit:  # cancelled: nothing may be asked of a store now
        if isinstance(circuit, Circuit):
            circuit.release(permit)
        else:
            circuit.abandon(permit)
        raise
    duration = clock.monotonic() - started if timed else 0.0
    assert outcome is not None  # Send never gives None
    if not isinstance(circuit, Circuit):
        return (yield from _judged(breaker, circuit, permit, request, outcome, duration))
    # this process's own circuit is told at once: no store step, so no generator to run
    failure = is_breaker_failure(breaker.config, outcome)
    if failure is None:
        circuit.release(permit)
    else:
        circuit.record(permit, failure=failure, duration=duration)
    return _passed_on(breaker, circuit, request, outcome)


def _asked_beneath(
    breaker: CircuitBreaker, circuit: SharedCircuit, request: httpx.Request, clock: Clock
) -> Generator[Effect, Outcome, httpx.Response]:
    """Hand the circuit's acquire step down with the request; judge by the verdict it got.

    The limiter beneath raises :class:`CircuitBreakerOpenError` for a rejection
    (nothing booked, nothing sent); the fallback, if any, answers here instead.
    """
    acquisition = circuit.acquisition()
    request.extensions[BREAKER_ACQUISITION] = acquisition
    try:
        outcome = yield Send(request)
    except GeneratorExit:  # cancelled: nothing may be asked of a store now
        if isinstance(acquisition.verdict, Permit):
            circuit.abandon(acquisition.verdict)
        raise
    finally:  # this attempt's: a retry asks again
        del request.extensions[BREAKER_ACQUISITION]
    permit = acquisition.verdict
    if isinstance(permit, Rejection):
        return _rejected(breaker, request, permit)
    if permit is None:  # refused before it reached the circuit (by the local limit)
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, httpx.Response)
        return outcome
    duration = clock.monotonic() - acquisition.answered_at
    assert outcome is not None  # Send never gives None
    return (yield from _judged(breaker, circuit, permit, request, outcome, duration))


def _rejected(
    breaker: CircuitBreaker, request: httpx.Request, rejection: Rejection
) -> httpx.Response:
    """The fallback's response for a request an open circuit rejected, or the error."""
    fallback = breaker.config.fallback
    if fallback is not None:
        return fallback(request)
    raise open_circuit_error(request, rejection)


def _judged(
    breaker: CircuitBreaker,
    circuit: SharedCircuit,
    permit: Permit,
    request: httpx.Request,
    outcome: httpx.Response | Exception,
    duration: float,
) -> Generator[Effect, Outcome, httpx.Response]:
    """Tell the shared ``circuit``, with store steps, how the permitted call went; pass it on."""
    failure = is_breaker_failure(breaker.config, outcome)
    if failure is None:
        yield from circuit.release(permit)
    else:
        yield from circuit.record(permit, failure=failure, duration=duration)
    return _passed_on(breaker, circuit, request, outcome)


def _passed_on(
    breaker: CircuitBreaker,
    circuit: Circuit | SharedCircuit,
    request: httpx.Request,
    outcome: httpx.Response | Exception,
) -> httpx.Response:
    """The judged call's response, or its error raised.

    A circuit left open (by this call or another) without a fallback says so on
    the request, for a retry layer above (see ``CIRCUIT_OPEN_FOR``).
    """
    # with a fallback, an open circuit still answers: the next attempt gets the fallback's
    if (open_for := circuit.open_for()) and breaker.config.fallback is None:
        request.extensions[CIRCUIT_OPEN_FOR] = open_for
    if isinstance(outcome, Exception):
        raise outcome
    return outcome
