"""Settings from the environment, with clear start-up errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.config import PROJECT_ROOT, Environment, Settings
from server.errors import ConfigError


def test_production_without_secret_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MAEUL_SECRET_KEY"):
        Settings.from_env({"MAEUL_ENV": "production", "MAEUL_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="32 characters"):
        Settings.from_env({"MAEUL_ENV": "production", "MAEUL_SECRET_KEY": "short"})


def test_run_py_refuses_to_start_without_production_secret(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "run.py"), "serve"],
        env={"MAEUL_ENV": "production", "MAEUL_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "MAEUL_SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_development_secret_is_generated_once_and_private(tmp_path: Path) -> None:
    first = Settings.from_env({"MAEUL_DATA_DIR": str(tmp_path)})
    second = Settings.from_env({"MAEUL_DATA_DIR": str(tmp_path)})
    assert first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert "secret" not in repr(first.secret_key).lower() or "*" in repr(first.secret_key)
    assert first.secret_key.get() not in repr(first)


def test_values_are_parsed_and_checked(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "MAEUL_DATA_DIR": str(tmp_path),
            "MAEUL_PORT": "9000",
            "MAEUL_ENV": "test",
            "MAEUL_ICE_SERVERS": (
                '[{"urls": ["turn:turn.gangjin.example:3478"], "username": "u", "credential": "c"}]'
            ),
            "MAEUL_RTC_HOST_ADDRESSES": "127.0.0.1, ::1",
        }
    )
    assert settings.port == 9000 and settings.env is Environment.TEST
    assert settings.ice_servers[0].urls == ("turn:turn.gangjin.example:3478",)
    assert settings.rtc_host_addresses == ("127.0.0.1", "::1")
    assert settings.ice_servers  # only what the operator configured; no public STUN default
    assert Settings.from_env({"MAEUL_DATA_DIR": str(tmp_path)}).ice_servers == ()
    with pytest.raises(ConfigError, match="MAEUL_PORT"):
        Settings.from_env({"MAEUL_DATA_DIR": str(tmp_path), "MAEUL_PORT": "eighty"})
    with pytest.raises(ConfigError, match="MAEUL_ICE_SERVERS"):
        Settings.from_env({"MAEUL_DATA_DIR": str(tmp_path), "MAEUL_ICE_SERVERS": "stun:x"})
    with pytest.raises(ConfigError, match="MAEUL_ENV"):
        Settings.from_env({"MAEUL_ENV": "staging"})
