"""Issue 12 item 13 (part): the data directory is owner-only, and the demo never runs in production."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from server.config import PROJECT_ROOT


def run_py(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAEUL_")}
    environ.update(MAEUL_DATA_DIR=str(data_dir), MAEUL_LOG_JSON="false", **env)
    return subprocess.run(
        [sys.executable, "run.py", *args],
        cwd=PROJECT_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_data_directories_are_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    (data_dir / "media").mkdir(mode=0o755)  # an older installation's
    os.chmod(data_dir, 0o755)
    os.chmod(data_dir / "media", 0o755)

    done = run_py("migrate", data_dir=data_dir)

    assert done.returncode == 0, done.stderr
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "media") == 0o700 and mode(data_dir / "recordings") == 0o700
    database = data_dir / "maeul.db"
    assert mode(database) == 0o600
    for side in (data_dir / "maeul.db-wal", data_dir / "maeul.db-shm", data_dir / "secret_key"):
        if side.exists():
            assert mode(side) == 0o600, side


def test_files_the_server_writes_later_are_owner_only(tmp_path: Path) -> None:
    # What the media store, the recorder and SQLite create after start-up inherits the umask.
    script = (
        "import sys; from pathlib import Path; from server.db import make_private\n"
        "d = Path(sys.argv[1]); make_private(d, 'postgresql+asyncpg://x@127.0.0.1/x')\n"
        "(d / 'recordings' / '7').mkdir(); (d / 'recordings' / '7' / 'a.webm').write_bytes(b'x')\n"
        "(d / 'media' / 'm.webm').write_bytes(b'x')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "var")], cwd=PROJECT_ROOT, check=True)
    assert mode(tmp_path / "var" / "recordings" / "7") == 0o700
    assert mode(tmp_path / "var" / "recordings" / "7" / "a.webm") == 0o600
    assert mode(tmp_path / "var" / "media" / "m.webm") == 0o600


def test_serve_demo_refuses_production(tmp_path: Path) -> None:
    refused = run_py(
        "serve",
        "--demo",
        data_dir=tmp_path / "var",
        MAEUL_ENV="production",
        MAEUL_SECRET_KEY="s" * 48,
        MAEUL_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}",
    )
    assert refused.returncode == 2
    assert "--demo is refused with MAEUL_ENV=production" in refused.stderr
    assert not (tmp_path / "prod.db").exists()
    assert not (tmp_path / "var" / "demo_logins.json").exists()


def test_create_official_can_grant_triage(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    assert run_py("migrate", data_dir=data_dir).returncode == 0
    for username, extra in (("lee", ["--triage"]), ("park", [])):
        made = run_py(
            "create-official", "--username", username, "--name", "이민원", *extra,
            data_dir=data_dir, MAEUL_NEW_PASSWORD="long enough password",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    db = sqlite3.connect(data_dir / "maeul.db")
    try:
        rows = dict(db.execute("SELECT username, can_triage FROM auth_accounts").fetchall())
    finally:
        db.close()
    assert rows == {"lee": 1, "park": 0}
