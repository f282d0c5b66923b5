"""`run.py serve --demo` as an operator runs it: migrates, seeds once, prints logins and kiosk
links, and serves /healthz and a Korean login page."""

from __future__ import annotations

import re
import subprocess
import urllib.request
from pathlib import Path

from tests.pg import free_port
from tests.serve_process import start_serve, wait_healthy


def _serve(db_url: str, data_dir: Path, port: int) -> subprocess.Popen[str]:
    return start_serve(db_url, data_dir, port, "--demo")


def test_serve_demo_from_an_empty_database(empty_db_url: str, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = _serve(empty_db_url, tmp_path, port)
    try:
        wait_healthy(base, first)
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
        wait_healthy(base, second)
    finally:
        second.terminate()
        out2, _ = second.communicate(timeout=30)
    assert password in out2
