"""Asynchronous usage: two requests at once on an ``AsyncClient``.

The demo API has no ``/posts``; its page-numbered user list stands in for it.
Runs as-is against the bundled demo API: ``python examples/async_concurrent_requests.py``.
"""

from __future__ import annotations

import asyncio

from buttress import AsyncClient
from buttress.testing import DemoServer


async def main(base_url: str) -> None:
    async with AsyncClient(base_url=base_url) as client:
        # Concurrent requests
        users, posts = await asyncio.gather(
            client.get("/users"),
            client.get("/users/pages"),
        )

        user_data = users.json()
        post_data = posts.json()
        print(f"/users: {len(user_data['data'])} of {user_data['total']} users")
        print(f"/users/pages: page {post_data['page']} of {post_data['total_pages']}")


if __name__ == "__main__":
    with DemoServer() as server:
        asyncio.run(main(server.url))
