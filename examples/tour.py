"""A tour of buttress against the bundled demo API (no internet needed).

Run it with:  uv run examples/tour.py

Each section is short; the focused examples beside this file (resilience.py,
rate_limiting.py, tls.py, logging_and_tracing.py, ...) go further, and the
tour borrows some of their scenes.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from pydantic import BaseModel

import buttress
from buttress.auth import ClientCredentials, OAuth2
from buttress.testing import DemoServer

sys.path.insert(0, str(Path(__file__).parent))  # the sibling examples, also when imported

import logging_and_tracing
import rate_limiting
import resilience
import tls


class User(BaseModel):
    id: int
    name: str
    email: str


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 60 - len(title)))


def basics(url: str) -> None:
    section("Requests, models and errors")
    with buttress.Client(base_url=url) as client:
        response = client.get("/users/1")
        print(f"GET /users/1 -> {response.status_code} {response.json()['name']}")
        user = client.get("/users/2", response_model=User)
        print(f"parsed into a model: {user!r}")
        team = client.get("/users/linked", params={"per_page": 3}, response_model=list[User])
        print(f"a list of models: {[u.name for u in team]}")
        created = client.post("/users", json={"name": "Jane", "email": "jane@example.com"})
        print(f"POST /users -> {created.status_code} id={created.json()['id']}")
        try:
            client.get("/users/999")
        except buttress.NotFoundError as error:
            print(f"NotFoundError: {error}")
        try:
            client.get("/status/429", params={"retry_after": "30"}, retry=False)
        except buttress.RateLimitError as error:
            print(f"RateLimitError: retry after {error.retry_after}s")
        print("raising off for one call:", client.get("/users/999", raise_for_status=False))


def versions(url: str) -> None:
    section("API versions")
    by_header = buttress.APIVersion(version="2024-06-01", header="X-API-Version")
    with buttress.Client(base_url=url, api_version=by_header) as client:
        sent = client.get("/echo").json()["headers"]["x-api-version"]
        print(f"sent X-API-Version: {sent}")
    by_path = buttress.APIVersion(version="v2", location="path")
    with buttress.Client(base_url=url, api_version=by_path) as client:
        print(f"path prefix: {client.build_request('GET', '/users').url}")


def streaming(url: str) -> None:
    section("Streaming a download")
    with (
        buttress.Client(base_url=url) as client,
        client.stream("GET", "/download", params={"size": 1_000_000}) as response,
    ):
        received = sum(len(chunk) for chunk in response.iter_bytes(chunk_size=65536))
        print(f"streamed {received:,} bytes without holding them in memory")


def pagination_and_events(url: str) -> None:
    section("Pagination and server-sent events")
    with buttress.Client(base_url=url) as client:
        # The strategy is detected from the first page (here a cursor).
        paginator = client.paginate("/users/cursor")
        names = [user["name"] for user in paginator]
        print(f"{len(names)} users over {paginator.pages_fetched} pages; first: {names[0]}")
        # Resumed with Last-Event-ID after the server drops the connection.
        stream = buttress.EventStream(client, "/events", params={"count": 4, "drop_after": 2})
        numbers = [event.json()["n"] for event in stream]
        print(f"events {numbers}, reconnects: {stream.reconnects}")


def caching(url: str) -> None:
    section("Caching: a miss, a hit, a revalidation, an invalidation")
    with buttress.Client(base_url=url, cache=buttress.CacheConfig()) as client:
        params = {"key": "tour"}
        print(
            "first:", "from cache" if client.get("/cacheable", params=params).from_cache else "miss"
        )
        hit = client.get("/cacheable", params=params)
        print(f"second: from cache={hit.from_cache}, age {hit.cache_age or 0:.1f}s")
        again = client.get("/cacheable", params=params, cache_control="no-cache")
        print(f"no-cache: revalidated with the server, from cache={again.from_cache}")
        print(f"invalidated {client.cache.invalidate('/cacheable')} entry")
        stats = client.cache.stats()
        print(f"hits={stats.hits} misses={stats.misses} revalidations={stats.revalidations}")


def oauth(url: str) -> None:
    section("OAuth2: a token fetched, kept and renewed by the auth")
    auth = OAuth2(
        ClientCredentials(),
        issuer=url,  # the endpoints come from /.well-known/openid-configuration
        client_id="demo-service",
        client_secret="demo-service-secret",
        scope=["users:read"],
    )
    with buttress.Client(base_url=url, auth=auth) as client:
        me = client.get("/me").json()
        print(f"GET /me as {me['client_id']}, scope {me['scope']!r}")
        client.get("/me")
        print(f"two calls, {auth.refreshes} token request; the auth prints as {auth!r}")


async def concurrency(url: str) -> None:
    section("Async: concurrent requests")
    async with buttress.AsyncClient(base_url=url) as client:
        users, page = await asyncio.gather(client.get("/users/3"), client.get("/users"))
        count = len(page.json()["data"])
        print(f"{users.json()['name']} and a page of {count} users, concurrently")


def main() -> None:
    with DemoServer() as server:
        print(f"demo API on {server.url}")
        basics(server.url)
        versions(server.url)
        section("Retries, then a circuit breaker opening and recovering")
        resilience.retry_tour(server.url)
        resilience.breaker_tour(server.url)
        section("Rate limits: pacing ourselves, reading the server's")
        rate_limiting.pacing(server.url)
        rate_limiting.server_limits(server.url)
        caching(server.url)
        oauth(server.url)
        streaming(server.url)
        pagination_and_events(server.url)
        asyncio.run(concurrency(server.url))
    section("Logging: one correlated line per request")
    logging_and_tracing.main()
    section("TLS: HTTP/2 negotiated, HTTP/1.1 fallback, mTLS")
    tls.main()


if __name__ == "__main__":
    main()
