"""`run.py serve --demo` as an operator runs it: migrates, seeds once, prints logins and kiosk
links, and serves /healthz and a Korean login page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from server.config import PROJECT_ROOT
from tests.pg import free_port


def _wait_healthy(base: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not become healthy")


def _serve(db_url: str, data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MAEUL_DATABASE_URL": db_url,
        "MAEUL_DATA_DIR": str(data_dir),
        "MAEUL_PORT": str(port),
        "MAEUL_LOG_JSON": "true",
    }
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "run.py"), "serve", "--demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_demo_from_an_empty_database(empty_db_url: str, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = _serve(empty_db_url, tmp_path, port)
    try:
        _wait_healthy(base, first)
        with urllib.request.urlopen(f"{base}/login", timeout=5) as response:
            page = response.read().decode()
        assert '<html lang="ko">' in page and "로그인" in page
    finally:
        first.terminate()
        out, err = first.communicate(timeout=30)
    assert re.search(r"admin\s+admin\s+password: \S+", out)
    assert out.count("/kiosk/enroll?code=") == 3
    # Logs are JSON lines and never carry the demo passwords or codes.
    password = re.search(r"admin\s+admin\s+password: (\S+)", out).group(1)  # type: ignore[union-attr]
    assert password not in err
    assert (tmp_path / "demo_logins.json").stat().st_mode & 0o777 == 0o600

    # A second start seeds nothing new and prints the same logins.
    second = _serve(empty_db_url, tmp_path, port)
    try:
        _wait_healthy(base, second)
    finally:
        second.terminate()
        out2, _ = second.communicate(timeout=30)
    assert password in out2
