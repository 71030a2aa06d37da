"""The Python examples in the docs run as written (each page's blocks in order).

Blocks fenced as ```python run here, offline, against the demo API; blocks that
need infrastructure the reader has and CI does not (a corporate CA file, a
remote server) are fenced as ```py and only shown.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from buttress.testing import DemoServer, FaultServer

DOCS = Path(__file__).parents[2] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every client and demo server the page creates, closed at the end of the test.

    Pages show configuration with bare ``client = Client(...)`` lines for brevity, and
    rebind names; what they leave open is closed here rather than in every snippet.
    """
    made: list[object] = []
    for cls in (httpx.Client, httpx.AsyncClient, DemoServer, FaultServer):
        monkeypatch.setattr(cls, "__init__", _recording(cls.__init__, made))
    yield made
    for value in made:
        if isinstance(value, httpx.Client):
            value.close()
        elif isinstance(value, httpx.AsyncClient) and not value.is_closed:
            asyncio.run(value.aclose())
        elif isinstance(value, (DemoServer, FaultServer)):
            value.stop()


def _recording(init: Callable[..., None], made: list[object]) -> Callable[..., None]:
    @functools.wraps(init)
    def recorded(self: object, *args: object, **kwargs: object) -> None:
        made.append(self)
        init(self, *args, **kwargs)

    return recorded


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
@pytest.mark.usefixtures("opened")
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pages write files as a reader would (downloads, disk caches): here, not in the work tree.
    monkeypatch.chdir(tmp_path)
    # A module, as a reader's script is: libraries that look classes' modules up find it.
    module = types.ModuleType(f"docs_{page.stem}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for block in BLOCK.findall(page.read_text()):
        exec(compile(block, str(page), "exec"), module.__dict__)
