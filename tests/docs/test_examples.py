"""Every script in examples/ runs as-is against the bundled demo API."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.py"))

SHOWS = {  # what an example is there to show, in its output (a progress bar goes to stderr)
    "download_progress.py": ["saved dataset.bin: 5,000,000 bytes", "100%|"],
    "tls.py": ["certificate verify failed: unable to get local issuer certificate"],
}
UNROUNDED = re.compile(r"(?<![\d:])\d+\.\d{4,}")  # 1.3142595291137695s; not 12:00:01.123456


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "an example should show what it does"
    for text in SHOWS.get(script.name, []):
        assert text in result.stdout + result.stderr
    assert not UNROUNDED.findall(result.stdout), "durations and ages print rounded"


def test_the_logging_example_logs_with_the_request_id_it_sent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = next(path for path in EXAMPLES if path.name == "logging_and_tracing.py")
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    request_id = re.search(r"saw X-Request-ID (\S+)", out)
    assert request_id
    assert f"[{request_id.group(1)}] GET" in out  # the log line carries the same id
    assert "never-logged" not in out
