"""Simple synchronous usage: a GET, a POST with a JSON body, then close.

Runs as-is against the bundled demo API: ``python examples/sync_get_and_post.py``.
"""

from __future__ import annotations

from buttress import Client
from buttress.testing import DemoServer


def main(base_url: str) -> None:
    client = Client(base_url=base_url, auth=("api_key", "your-api-key"), timeout=30.0)

    # GET request
    response = client.get("/users/42")
    user = response.json()
    print(f"GET /users/42 -> {response.status_code}: {user['name']} <{user['email']}>")

    # POST request with JSON body
    new_user = client.post("/users", json={"name": "John Doe", "email": "john@example.com"})
    print(f"POST /users -> {new_user.status_code}: {new_user.json()}")

    # Always close the client when done (or use context manager)
    client.close()
    print(f"client closed: {client.is_closed}")


if __name__ == "__main__":
    with DemoServer() as server:
        main(server.url)
