"""Fixtures and checks shared by the reliability tests (faults, hygiene, soak).

The central check is :func:`assert_buttress_outcome`: whatever the network did,
a facade call ends either in a response or in an exception from buttress's tree,
never in a raw h11, httpcore, anyio, ssl or socket exception.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import buttress
from buttress.testing import FaultServer


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A fresh fault server per test (its queues, routes and records are the test's own)."""
    with FaultServer() as server:
        yield server


def assert_buttress_outcome(outcome: object) -> None:
    """``outcome`` (a call's result or the exception it raised) is success or buttress's error."""
    if isinstance(outcome, BaseException):
        assert isinstance(outcome, buttress.ClientError), (
            f"a raw {type(outcome).__module__}.{type(outcome).__qualname__} escaped the facade: "
            f"{outcome!r}"
        )
    else:
        assert isinstance(outcome, buttress.Response), f"unexpected result {outcome!r}"


def open_fds() -> int:
    """How many file descriptors this process holds (Linux: /proc/self/fd)."""
    return len(os.listdir("/proc/self/fd"))


needs_proc_fd = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counting descriptors needs /proc/self/fd (Linux)"
)
