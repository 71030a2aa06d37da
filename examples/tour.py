"""A short tour of buttress against the bundled demo API: ``python examples/tour.py``."""

from __future__ import annotations

from buttress import Client, EventStream
from buttress.testing import DemoServer


def tour(base_url: str) -> None:
    with Client(base_url=base_url) as client:
        # Pagination: the strategy is detected from the first page (here a cursor).
        paginator = client.paginate("/users/cursor")
        names = [user["name"] for user in paginator]
        print(f"{len(names)} users over {paginator.pages_fetched} pages; first: {names[0]}")

        # Server-sent events, resumed with Last-Event-ID after a dropped connection.
        stream = EventStream(client, "/events", params={"count": 4, "drop_after": 2})
        print("events:", [event.json()["n"] for event in stream], "reconnects:", stream.reconnects)


if __name__ == "__main__":
    with DemoServer() as server:
        tour(server.url)
