"""A full disk under a real server process (``disk_scenario.py`` in a mount namespace of its own,
its data directory on a 64 MiB tmpfs the scenario fills): media are refused with 507 and a Korean
message before the disk is full, so text requests, PIN checks and logins keep working; a text
request on a really full disk says the disk is full (507), not that the database is unreachable;
/readyz reports low disk; freeing space is enough to recover, without a restart of the guard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from server.config import PROJECT_ROOT


def _scenario(workdir: Path) -> dict[str, Any]:
    done = subprocess.run(
        ["unshare", "-m", sys.executable, "-m", "tests.faults.disk_scenario", str(workdir)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return seen


def _error(reply: dict[str, Any]) -> tuple[int, str, str]:
    error = reply["body"]["error"]
    return reply["status"], error["code"], error.get("display", "")


def test_full_disk_is_a_clear_507_and_small_writes_keep_working(tmp_path: Path) -> None:
    seen = _scenario(tmp_path)
    assert seen["media_with_room"]["status"] == 201

    # Below MAEUL_MIN_FREE_MB: media refused, everything small still works.
    status, code, display = _error(seen["media_low"])
    assert (status, code) == (507, "media_storage_low")
    assert "저장 공간이 부족" in display
    assert seen["text_low"]["status"] == 201
    assert seen["pin_low"]["status"] == 200
    assert seen["login_low"]["status"] == 201
    assert seen["readyz_low"]["status"] == 503
    assert seen["readyz_low"]["body"]["disk"]["status"] == "low"
    assert seen["readyz_low"]["body"]["database"] == "ok"

    # Two uploads at once where only one fits: the guard reserves, so the second is refused even
    # though the first has not finished writing (the first is random bytes: refused as not media).
    first, second = seen["concurrent"]
    assert first["status"] == 400 and first["body"]["error"]["code"] == "media_not_media"
    assert _error(second)[:2] == (507, "media_storage_low")

    # A really full disk: the database cannot write either, and says so.
    assert seen["free_when_full"] == 0
    status, code, display = _error(seen["text_full"])
    assert (status, code) == (507, "disk_full")
    assert "저장 공간이 가득" in display
    assert seen["readyz_full"]["body"]["disk"]["free_mb"] == 0

    # Without the guard an upload runs into the full disk itself: 507, and its temporary file goes.
    assert _error(seen["media_enospc"])[:2] == (507, "disk_full")
    assert seen["temp_files_left"] == []

    # Space freed: media, text and readiness are back.
    assert seen["media_after"]["status"] == 201
    assert seen["text_after"]["status"] == 201
    assert seen["readyz_after"]["status"] == 200

    assert seen["log_500s"] == 0 and seen["log_internal_errors"] == 0, seen["log"][-3000:]
