"""The code stays lint-clean and type-checked (ruff + mypy with disallow_untyped_defs); a
regression shows up in `make test` rather than in review."""

from __future__ import annotations

import subprocess
import sys

from server.config import PROJECT_ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", "server", "rtc", "kiosk", "tests", "run.py", "migrations", "scripts")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_mypy_finds_nothing() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
