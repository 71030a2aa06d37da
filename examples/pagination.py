"""Iterate over every page, sync and async, with models and metadata.

Runs as-is against the bundled demo API: ``python examples/pagination.py``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from pydantic import BaseModel

from buttress import AsyncClient, Client, OffsetLimitPagination
from buttress.testing import DemoServer


class User(BaseModel):
    id: int
    name: str
    created_at: datetime


def process(user: dict[str, object]) -> None:
    pass


async def process_user(user: User) -> None:
    pass


def main(base_url: str) -> None:
    client = Client(base_url=base_url)

    # Simple iteration over all pages
    for user in client.paginate("/users", response_model=User):
        print(f"Processing user: {user.name}")

    # Async pagination (on an AsyncClient, where paginate_async is paginate's alias)
    async def consume() -> None:
        async with AsyncClient(base_url=base_url) as async_client:
            async for user in async_client.paginate_async("/users", response_model=User):
                await process_user(user)

    asyncio.run(consume())

    # Custom pagination configuration
    pagination = OffsetLimitPagination(limit=50, results_key="data", total_key="meta.total")

    paginator = client.paginate("/users", pagination=pagination)
    for item in paginator:
        process(item)

    print(f"Processed {paginator.total_count} users across {paginator.pages_fetched} pages")

    # Early termination
    cutoff_date = datetime(2024, 1, 10, tzinfo=timezone.utc)
    for user in client.paginate("/users", response_model=User):
        if user.created_at < cutoff_date:
            break  # Stops fetching more pages

    client.close()


if __name__ == "__main__":
    with DemoServer() as server:
        main(server.url)
