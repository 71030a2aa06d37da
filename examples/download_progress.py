"""Download a file with a progress bar: ``download()``'s ``progress`` callback drives tqdm.

tqdm is not a buttress dependency: ``pip install tqdm`` to use this recipe. rich works
the same way: ``progress.update(task, completed=done, total=total)`` in the callback.
The file goes to a temporary name and is renamed into place once whole, so an
interrupted download leaves nothing behind.
Runs as-is against the bundled demo API: ``python examples/download_progress.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tqdm import tqdm

from buttress import Client
from buttress.testing import DemoServer


def download_with_bar(client: Client, url: str, target: Path, **kwargs: Any) -> Path:
    """``client.download(...)`` with a tqdm bar on stderr, in bytes."""
    with tqdm(desc=target.name, unit="B", unit_scale=True, unit_divisor=1024) as bar:

        def progress(done: int, total: int | None) -> None:
            bar.total = total  # None for a body of unknown size: the bar counts without an end
            bar.update(done - bar.n)  # done is the bytes written so far

        return client.download(url, target, progress=progress, **kwargs)


def main(base_url: str, folder: Path) -> None:
    with Client(base_url=base_url) as client:
        saved = download_with_bar(
            client, "/download", folder / "dataset.bin", params={"size": 5_000_000}
        )
        print(f"saved {saved.name}: {saved.stat().st_size:,} bytes")


if __name__ == "__main__":
    with DemoServer() as server, tempfile.TemporaryDirectory() as folder:
        main(server.url, Path(folder))
