"""Download a large file with progress, then the same with the helpers.

Runs as-is against the bundled demo API: ``python examples/streaming.py``.
"""

from __future__ import annotations

import os
import tempfile

from buttress import Client, EventStream
from buttress.testing import DemoServer


def main(base_url: str, folder: str) -> None:
    client = Client(base_url=base_url)
    os.chdir(folder)

    # Download a large file with progress (the demo's /download endpoint)
    with client.stream("GET", "/download", params={"size": 200_000}) as response:
        total = int(response.headers.get("content-length", 0))
        downloaded = 0

        with open("large-file.zip", "wb") as f:
            for chunk in response.iter_bytes(chunk_size=8192):
                f.write(chunk)
                downloaded += len(chunk)
                print(f"Progress: {downloaded}/{total} bytes")

    # The same in one call: a temporary file renamed into place, nothing left on failure
    def report(done: int, total: int | None) -> None:
        print(f"download(): {done}/{total} bytes")

    client.download("/download", "other-file.zip", params={"size": 200_000}, progress=report)

    # Server-sent events that survive a dropped connection (resumes with Last-Event-ID)
    for event in EventStream(client, "/events", params={"count": 5, "drop_after": 2}):
        print(f"event {event.id}: {event.event} {event.json()}")

    client.close()


if __name__ == "__main__":
    with DemoServer() as server, tempfile.TemporaryDirectory() as folder:
        main(server.url, folder)
