"""The shipped systemd units (deploy/systemd/) parse, name the right commands, and keep the
hardening and the shared environment file; deploy/maeul.env.example names only settings Maeul
reads. `systemd-analyze verify` (Debian's systemd) checks the units as systemd itself would,
with /opt/maeul pointed at this checkout so the ExecStart binary exists."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from run import build_parser
from server.config import Settings
from tests.cluster.parts import PROJECT_ROOT

UNITS = PROJECT_ROOT / "deploy" / "systemd"
ENV_EXAMPLE = PROJECT_ROOT / "deploy" / "maeul.env.example"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
    "SystemCallFilter": "@system-service",
}


def _directives(path: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values, keeping repeated keys (systemd allows them; configparser does not)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if match := re.fullmatch(r"\[(\w+)\]", line):
            current = sections.setdefault(match[1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}: not a directive: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.parametrize(
    ("unit", "command"),
    [
        ("maeul-web@.service", "/opt/maeul/.venv/bin/python run.py web"),
        ("maeul-sfu@.service", "/opt/maeul/.venv/bin/python run.py sfu --worker-id %i"),
    ],
)
def test_unit_structure(unit: str, command: str) -> None:
    sections = _directives(UNITS / unit)
    service = sections["Service"]
    assert service["ExecStart"] == [command]
    assert service["EnvironmentFile"] == ["/etc/maeul/maeul.env"]
    assert service["Restart"] == ["on-failure"]
    assert service["User"] == ["maeul"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], f"{unit}: {key}"
    assert sections["Unit"]["PartOf"] == ["maeul.target"]
    assert sections["Install"]["WantedBy"] == ["maeul.target"]


def test_web_unit_takes_its_port_from_the_instance() -> None:
    service = _directives(UNITS / "maeul-web@.service")["Service"]
    assert "MAEUL_PORT=%i" in service["Environment"]
    # Only nginx on this machine reaches a web process.
    assert "MAEUL_HOST=127.0.0.1" in service["Environment"]


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/maeul", str(PROJECT_ROOT)))
    instances = ["maeul-web@8081.service", "maeul-sfu@1.service", "maeul.target"]
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in instances)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    # verify exits 0 on unknown keys and bad values too: any line about our units is a failure.
    complaints = [line for line in result.stderr.splitlines() if "maeul" in line]
    assert result.returncode == 0, result.stderr
    assert complaints == []


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    # The check above is real: a misspelt key and a missing binary are reported.
    text = (UNITS / "maeul-web@.service").read_text()
    broken = text.replace("/opt/maeul", "/nonexistent").replace("NoNewPrivileges=", "NoNewPrivilege=")
    (tmp_path / "maeul-web@.service").write_text(broken)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "maeul-web@8081.service")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert "NoNewPrivilege" in result.stderr
    assert "/nonexistent/.venv/bin/python" in result.stderr


def test_env_example_names_only_real_settings() -> None:
    config_source = (PROJECT_ROOT / "server" / "config.py").read_text()
    read = set(re.findall(r'"(MAEUL_[A-Z0-9_]+)"', config_source))
    names = re.findall(r"^(MAEUL_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE)
    assert names, "no settings in the example"
    assert set(names) <= read, set(names) - read
    # What the scale-out roles cannot start without.
    assert {"MAEUL_DATABASE_URL", "MAEUL_REDIS_URL", "MAEUL_SECRET_KEY", "MAEUL_ENV"} <= set(names)
    # The file overrides the units' Environment= lines: a port here would give every web unit the
    # same port, and a host would move them off loopback.
    assert "MAEUL_PORT" not in names and "MAEUL_HOST" not in names


def test_env_example_builds_settings_once_filled_in() -> None:
    values = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line.startswith("MAEUL_")
    )
    values["MAEUL_SECRET_KEY"] = "k" * 48
    settings = Settings.from_env(values)
    assert settings.is_production
    assert settings.redis_url == "unix:///run/redis/redis-server.sock"
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.trust_proxy


@pytest.mark.parametrize("unit", ["maeul-web@.service", "maeul-sfu@.service"])
def test_exec_start_is_a_command_run_py_knows(unit: str) -> None:
    (command,) = _directives(UNITS / unit)["Service"]["ExecStart"]
    program, script, *args = shlex.split(command.replace("%i", "3"))
    assert (program, script) == ("/opt/maeul/.venv/bin/python", "run.py")
    parsed = build_parser().parse_args(args)
    assert parsed.command == args[0]
    if args[0] == "sfu":
        assert str(parsed.worker_id) == "3"
