"""Request priorities: the accepted values, and the line of places the pool gate hands out."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import buttress
from buttress._options import RequestOptions
from buttress.policies.priority import AGEING, Places, Priority, level, place
from buttress.testing import DemoServer, FakeClock

from ..conftest import Either

pytestmark = pytest.mark.anyio

ALLOWED = "'high', 'normal', 'low' or an int from -10 to 10"


def eventually(condition: Callable[[], bool]) -> None:
    """Wait for ``condition``, which another thread makes true without notifying anyone."""
    for _ in range(10_000):  # 10 s at most
        if condition():
            return
        time.sleep(0.001)
    raise AssertionError("the condition never became true")


@pytest.mark.parametrize(
    ("priority", "expected"),
    [("high", 1), ("normal", 0), ("low", -1), (None, 0), (10, 10), (-10, -10), (0, 0)],
)
def test_named_levels_and_integers(priority: Priority | None, expected: int) -> None:
    assert level(priority) == expected


@pytest.mark.parametrize(
    ("bad", "shown"),
    [("urgent", "str"), ("HIGH", "str"), (1.5, "1.5"), (True, "True"), (11, "11"), (-11, "-11")],
)
def test_a_bad_priority_is_refused_with_the_allowed_values(bad: Any, shown: str) -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        buttress.options(priority=bad)
    assert str(caught.value) == f"request option priority=... takes {ALLOWED} or None, not {shown}"
    with pytest.raises(
        buttress.ConfigurationError, match=re.escape(f"priority takes {ALLOWED}, not {shown}")
    ):
        level(bad)


def test_options_carry_the_priority() -> None:
    with buttress.Client() as client:
        request = client.build_request(
            "GET", "https://api.example.com", extensions=buttress.options(priority="low")
        )
        assert RequestOptions.of(request).priority == "low"
        request = client.build_request("GET", "https://api.example.com", priority=3)
        assert RequestOptions.of(request).priority == 3


async def test_a_call_with_a_bad_priority_raises_before_sending(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    either = make_client(base_url=demo.url)
    before = demo.app.hits["/users/1"]
    with pytest.raises(buttress.ConfigurationError, match=re.escape(ALLOWED)):
        await either.get("/users/1", priority="urgent")
    with pytest.raises(buttress.ConfigurationError, match=r"not 2\.0"):
        await either.get("/users/1", priority=2.0)
    assert demo.app.hits["/users/1"] == before
    response = await either.get("/users/1", priority="high")
    assert RequestOptions.of(response.request).priority == "high"


def test_place_orders_by_level_then_arrival_with_ageing() -> None:
    assert place(5.0, "high") < place(5.0, None) == place(5.0, "normal") < place(5.0, "low")
    assert place(0.0, "low") < place(2 * AGEING + 0.1, "high")  # aged past two levels
    assert place(0.0, "low") > place(2 * AGEING - 0.1, "high")
    assert place(0.0, "low", ageing=1.0) < place(2.5, "high", ageing=1.0)


# --- the line of places, for threads and for tasks ----------------------------------------

# (seconds after the previous arrival, priority): a "low" that waits past two levels
# goes before the "high" that comes 2 * AGEING seconds after it.
ARRIVALS: list[tuple[float, Priority]] = [
    (0.0, "low"),
    (0.0, "normal"),
    (0.0, "high"),
    (0.0, "normal"),
    (2 * AGEING + 1, "high"),
    (0.0, 5),
]
ORDER = [5, 2, 1, 3, 0, 4]  # level 5, high, the normals, then the aged low before the late high


async def test_tasks_are_given_places_by_priority_then_arrival() -> None:
    clock = FakeClock()
    places, order = Places(1, clock), []
    assert await places.acquire_async(None, None)

    async def wait_for_place(n: int, priority: Priority) -> None:
        assert await places.acquire_async(priority, None)
        order.append(n)
        places.release()

    async with anyio.create_task_group() as group:
        for n, (after, priority) in enumerate(ARRIVALS):
            clock.advance(after)
            group.start_soon(wait_for_place, n, priority)
            while places.waiting <= n:
                await anyio.sleep(0)
        places.release()
    assert order == ORDER


def test_threads_are_given_places_by_priority_then_arrival() -> None:
    clock = FakeClock()
    places, order = Places(1, clock), []
    assert places.acquire(None, None)

    def wait_for_place(n: int, priority: Priority) -> None:
        assert places.acquire(priority, 10)
        order.append(n)
        places.release()

    threads = []
    for n, (after, priority) in enumerate(ARRIVALS):
        clock.advance(after)
        threads.append(threading.Thread(target=wait_for_place, args=(n, priority)))
        threads[-1].start()
        eventually(lambda n=n: places.waiting > n)  # type: ignore[misc]
    places.release()
    for thread in threads:
        thread.join(timeout=10)
    assert order == ORDER


async def test_a_wait_past_its_timeout_leaves_the_line() -> None:
    places = Places(1, FakeClock())
    assert await places.acquire_async(None, None)
    assert not await places.acquire_async("high", 0.0)
    assert not places.acquire("high", 0.0)
    assert places.waiting == 0
    places.release()  # nobody waits: the place is free again
    assert places.acquire("low", 0.0)


async def test_a_cancelled_waiter_leaves_the_line() -> None:
    places = Places(1, FakeClock())
    assert await places.acquire_async(None, None)
    got: list[str] = []
    scopes: dict[str, anyio.CancelScope] = {}

    async def wait(name: str) -> None:
        with anyio.CancelScope() as scopes[name]:
            assert await places.acquire_async(None, None)
            got.append(name)
            places.release()

    async with anyio.create_task_group() as group:
        for n, name in enumerate(["cancelled", "next"], start=1):
            group.start_soon(wait, name)
            while places.waiting < n:
                await anyio.sleep(0)
        scopes["cancelled"].cancel()
        while places.waiting > 1:
            await anyio.sleep(0)
        places.release()  # to the next still waiting
    assert got == ["next"]
    assert places.waiting == 0
    assert places.acquire(None, 0.0)  # "next" gave the place back
