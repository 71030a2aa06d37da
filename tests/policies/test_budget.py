"""The retry budget: ratio on top of first attempts, the floor, the window, concurrency."""

from __future__ import annotations

import threading

import anyio
import pytest

from buttress.policies.budget import InMemoryRetryBudget


def test_retries_are_capped_at_the_ratio_of_first_attempts() -> None:
    budget = InMemoryRetryBudget(ratio=0.2, min_per_second=0, window=10)
    for _ in range(50):
        budget.record_request("a.test", now=0.0)
    granted = sum(budget.try_withdraw("a.test", now=1.0) for _ in range(20))
    assert granted == 10
    assert budget.exhausted_count == 10


def test_the_floor_allows_retries_without_traffic() -> None:
    budget = InMemoryRetryBudget(ratio=0.2, min_per_second=1, window=5)
    granted = sum(budget.try_withdraw("a.test", now=0.0) for _ in range(10))
    assert granted == 5  # 1 per second over a 5 second window


def test_hosts_have_separate_budgets() -> None:
    budget = InMemoryRetryBudget(ratio=1.0, min_per_second=0, window=10)
    budget.record_request("a.test", now=0.0)
    assert budget.try_withdraw("a.test", now=0.0)
    assert not budget.try_withdraw("b.test", now=0.0)


def test_old_traffic_leaves_the_window() -> None:
    budget = InMemoryRetryBudget(ratio=1.0, min_per_second=0, window=10)
    budget.record_request("a.test", now=0.0)
    assert budget.try_withdraw("a.test", now=1.0)
    budget.record_request("a.test", now=2.0)
    # at t=15 both the first attempts and the retry are older than the window
    assert not budget.try_withdraw("a.test", now=15.0)
    budget.record_request("a.test", now=15.0)
    assert budget.try_withdraw("a.test", now=15.5)


def test_traffic_within_one_second_leaves_the_window_together() -> None:
    budget = InMemoryRetryBudget(ratio=1.0, min_per_second=0, window=10)
    for now in (0.1, 0.5, 0.9):
        budget.record_request("a.test", now=now)
    assert sum(budget.try_withdraw("a.test", now=0.95) for _ in range(4)) == 3
    budget.record_request("a.test", now=10.2)  # second 0 has left the window
    assert budget.try_withdraw("a.test", now=10.6)
    assert not budget.try_withdraw("a.test", now=10.9)


def test_budget_accounting_is_exact_under_100_threads() -> None:
    budget = InMemoryRetryBudget(ratio=0.2, min_per_second=0, window=10)
    granted: list[bool] = []
    barrier = threading.Barrier(100, timeout=10)

    def worker() -> None:
        budget.record_request("a.test", now=0.0)
        barrier.wait()  # every first attempt is in before anyone retries
        granted.append(budget.try_withdraw("a.test", now=0.0))

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sum(granted) == 20
    assert budget.exhausted_count == 80


@pytest.mark.anyio
async def test_budget_accounting_is_exact_under_100_tasks() -> None:
    budget = InMemoryRetryBudget(ratio=0.2, min_per_second=0, window=10)
    granted: list[bool] = []
    recorded: list[None] = []
    all_in = anyio.Event()

    async def worker() -> None:
        budget.record_request("a.test", now=0.0)
        recorded.append(None)
        if len(recorded) == 100:
            all_in.set()
        await all_in.wait()
        granted.append(budget.try_withdraw("a.test", now=0.0))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(worker)
    assert sum(granted) == 20
    assert budget.exhausted_count == 80
