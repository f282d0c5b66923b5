"""What the kiosk machine keeps between runs: the server URL and the device token.

The token file is created owner-only (0600) before anything is written to it, replaced
atomically, and its content is never printed or logged.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/maeul-kiosk")
TOKEN_FILE = "device_token"  # noqa: S105 — a file name, not a secret
CONFIG_FILE = "agent.json"


def state_dir(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("MAEUL_KIOSK_STATE_DIR") or DEFAULT_STATE_DIR)


@dataclass(frozen=True)
class AgentState:
    server_url: str
    kiosk_id: int
    label: str
    village: str


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an old tmp file may have had other bits
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def save(directory: Path, state: AgentState, token: str) -> None:
    _write_private(directory / TOKEN_FILE, token.encode())
    _write_private(directory / CONFIG_FILE, json.dumps(state.__dict__, ensure_ascii=False).encode())


def load(directory: Path) -> tuple[AgentState, str]:
    config_path, token_path = directory / CONFIG_FILE, directory / TOKEN_FILE
    if not token_path.exists() or not config_path.exists():
        raise FileNotFoundError(f"not enrolled: run `python -m kiosk enroll` first ({directory})")
    if token_path.stat().st_mode & 0o077:
        raise PermissionError(f"{token_path} must be readable by its owner only (chmod 600)")
    state = AgentState(**json.loads(config_path.read_text(encoding="utf-8")))
    return state, token_path.read_text().strip()
