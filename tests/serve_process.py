"""``python run.py serve`` as a child process, for the tests of the process itself (start-up,
the demo seed, the event loop choice); text output piped so a test can read the log lines."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from server.config import PROJECT_ROOT


def start_serve(
    database_url: str, data_dir: Path, port: int, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``run.py serve *args`` with JSON logs on stderr."""
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "run.py"), "serve", *args],
        env={
            **os.environ,
            "MAEUL_DATABASE_URL": database_url,
            "MAEUL_DATA_DIR": str(data_dir),
            "MAEUL_PORT": str(port),
            "MAEUL_LOG_JSON": "true",
            **(env or {}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_healthy(base: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until ``/healthz`` answers 200; fails with the process's stderr if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}: {process.communicate()[1]}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not become healthy")
