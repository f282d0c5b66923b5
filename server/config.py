"""Settings, read once from the environment (``MAEUL_*`` variables; see ``.env.example``).

The settings object is immutable and passed through the app (``keys.SETTINGS``); nothing reads
``os.environ`` after start-up.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from server.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

Getter = Callable[[str], str | None]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"
    TEST = "test"


class SecretStr:
    """A string that never shows itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class Settings:
    secret_key: SecretStr
    env: Environment = Environment.DEVELOPMENT
    database_url: str = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'maeul.db'}"
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = PROJECT_ROOT / "var"
    # Cookies get the Secure flag when the request arrived over TLS; behind a TLS-terminating
    # proxy set trust_proxy so X-Forwarded-Proto is believed.
    trust_proxy: bool = False
    force_secure_cookies: bool = False
    session_hours: int = 12
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    # argon2 cost; tests lower it so a suite of logins stays fast.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    enrollment_code_hours: int = 24
    # How long a kiosk's call to the official on duty rings before it offers a recorded request.
    duty_ring_seconds: int = 60
    default_locale: str = "ko"
    log_level: str = "INFO"
    log_json: bool = True
    seed_demo: bool = False
    # WebRTC: ICE servers handed to peers (the county's own coturn in production; none by default)
    # and the local addresses the server's ICE agent gathers on.
    ice_servers: tuple[IceServer, ...] = ()
    rtc_host_addresses: tuple[str, ...] = ()

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``MAEUL_*`` variables; raise ConfigError with a clear message."""
        env_vars = os.environ if environ is None else environ
        get: Getter = env_vars.get
        try:
            env = Environment(get("MAEUL_ENV") or Environment.DEVELOPMENT)
        except ValueError as exc:
            raise ConfigError(f"MAEUL_ENV must be one of {[e.value for e in Environment]}") from exc
        data_dir = Path(get("MAEUL_DATA_DIR") or str(PROJECT_ROOT / "var"))
        secret = get("MAEUL_SECRET_KEY") or ""
        if not secret:
            if env is Environment.PRODUCTION:
                raise ConfigError(
                    "MAEUL_SECRET_KEY is not set. In production Maeul needs a secret of at least "
                    "32 characters, e.g. from: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )
            secret = _development_secret(data_dir)
        if env is Environment.PRODUCTION and len(secret) < 32:
            raise ConfigError("MAEUL_SECRET_KEY must be at least 32 characters long in production")
        return cls(
            secret_key=SecretStr(secret),
            env=env,
            database_url=(get("MAEUL_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'maeul.db'}"),
            host=(get("MAEUL_HOST") or "127.0.0.1"),
            port=_int(get, "MAEUL_PORT", 8080),
            data_dir=data_dir,
            trust_proxy=_bool(get, "MAEUL_TRUST_PROXY", False),
            force_secure_cookies=_bool(get, "MAEUL_SECURE_COOKIES", False),
            session_hours=_int(get, "MAEUL_SESSION_HOURS", 12),
            login_max_failures=_int(get, "MAEUL_LOGIN_MAX_FAILURES", 5),
            login_lockout_minutes=_int(get, "MAEUL_LOGIN_LOCKOUT_MINUTES", 15),
            enrollment_code_hours=_int(get, "MAEUL_ENROLLMENT_CODE_HOURS", 24),
            duty_ring_seconds=_int(get, "MAEUL_DUTY_RING_SECONDS", 60),
            default_locale=(get("MAEUL_DEFAULT_LOCALE") or "ko"),
            log_level=(get("MAEUL_LOG_LEVEL") or "INFO").upper(),
            log_json=_bool(get, "MAEUL_LOG_JSON", True),
            seed_demo=_bool(get, "MAEUL_SEED_DEMO", False),
            ice_servers=_ice_servers(get("MAEUL_ICE_SERVERS") or ""),
            rtc_host_addresses=tuple(
                a.strip() for a in (get("MAEUL_RTC_HOST_ADDRESSES") or "").split(",") if a.strip()
            ),
        )


def _development_secret(data_dir: Path) -> str:
    """A per-installation secret kept in var/ so dev sessions survive restarts; never used in production."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def _int(get: Getter, name: str, default: int) -> int:
    raw = get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _bool(get: Getter, name: str, default: bool) -> bool:
    raw = get(name)
    if raw in (None, ""):
        return default
    lowered = str(raw).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _ice_servers(raw: str) -> tuple[IceServer, ...]:
    """Parse MAEUL_ICE_SERVERS: a JSON list like RTCConfiguration.iceServers."""
    if not raw.strip():
        return ()
    try:
        items = json.loads(raw)
        if not isinstance(items, list):
            raise TypeError("not a list")
        servers = []
        for item in items:
            urls = item["urls"]
            servers.append(
                IceServer(
                    urls=(urls,) if isinstance(urls, str) else tuple(urls),
                    username=item.get("username"),
                    credential=item.get("credential"),
                )
            )
        return tuple(servers)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            'MAEUL_ICE_SERVERS must be a JSON list such as [{"urls": "turn:turn.example:3478"}]'
        ) from exc
