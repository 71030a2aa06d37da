"""``import buttress`` stays light: optional dependencies load only when used."""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = ["aiohttp", "httpx_aiohttp", "h2", "httpx_socks", "orjson", "opentelemetry", "uvicorn"]


def test_optional_dependencies_are_imported_lazily() -> None:
    code = f"import sys, buttress; print(','.join(m for m in {OPTIONAL!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, text=True
    ).stdout.strip()
    assert loaded == ""
