"""Settings, read once from the environment (``MAEUL_*`` variables; see ``.env.example``).

The settings object is immutable and passed through the app (``keys.SETTINGS``); nothing reads
``os.environ`` after start-up.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from server.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

Getter = Callable[[str], str | None]

DEFAULT_TURN_TTL_SECONDS = 3600
TURN_TTL_RANGE = (60, 24 * 3600)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# The default trusted proxy: nginx on the same machine.
LOOPBACK_NETWORKS: tuple[IpNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


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


class IceTransportPolicy(StrEnum):
    """RTCConfiguration.iceTransportPolicy handed to the pages and kiosks."""

    ALL = "all"
    # Only relayed (TURN) candidates: for halls whose firewall lets nothing but the TURN server out.
    RELAY = "relay"


#: MAEUL_RTC_UDP_PORT when it is empty (docs/sfu.md, "One UDP port"; docs/bench-sfu.md says why).
DEFAULT_RTC_UDP_PORT: int | None = 0


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    # A static TURN password from MAEUL_ICE_SERVERS: kept out of reprs (settings get logged in tracebacks).
    credential: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    secret_key: SecretStr
    env: Environment = Environment.DEVELOPMENT
    database_url: str = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'maeul.db'}"
    # The Redis the scale-out roles (run.py web / sfu) share; None for the one-process `serve`.
    # Out of reprs: the URL may carry Redis's password (settings get logged in tracebacks).
    redis_url: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = PROJECT_ROOT / "var"
    # New media (uploads) are refused while the data directory's disk has less free space than
    # this, so what remains keeps logins, PIN checks and text requests working (0 = no guard).
    min_free_mb: int = 256
    # Cookies get the Secure flag when the request arrived over TLS; behind a TLS-terminating
    # proxy set trust_proxy so X-Forwarded-Proto is believed.
    trust_proxy: bool = False
    # With trust_proxy: the proxies whose X-Forwarded-For entries are believed. The client address
    # is the first one, reading X-Forwarded-For right to left, that is not one of these.
    trusted_proxies: tuple[IpNetwork, ...] = field(default_factory=lambda: LOOPBACK_NETWORKS)
    force_secure_cookies: bool = False
    session_hours: int = 12
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    # Requests one kiosk may file per hour (a stolen device token cannot flood the inbox or disk).
    kiosk_filings_per_hour: int = 30
    # argon2 cost; tests lower it so a suite of logins stays fast.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    enrollment_code_hours: int = 24
    # How long a kiosk's call to the official on duty rings before it offers a recorded request.
    duty_ring_seconds: int = 60
    # Open sockets one kiosk or one account may have at once (this process), and how often a
    # socket's kiosk token or login session is checked again (revocation, logout, expiry).
    sockets_per_principal: int = 4
    socket_recheck_seconds: int = 5
    default_locale: str = "ko"
    log_level: str = "INFO"
    log_json: bool = True
    seed_demo: bool = False
    # WebRTC: ICE servers handed to peers (the county's own coturn in production; none by default)
    # and the local addresses the server's ICE agent gathers on.
    ice_servers: tuple[IceServer, ...] = ()
    rtc_host_addresses: tuple[str, ...] = ()
    # One UDP socket (this port, per host address) for every peer connection of the process
    # (rtc/udp_mux.py): forwarded packets leave in one sendmmsg per batch, and the county's
    # firewall needs one rule. 0 = one shared socket on an ephemeral port; None ("off") = a
    # socket per peer connection. See docs/sfu.md.
    rtc_udp_port: int | None = DEFAULT_RTC_UDP_PORT
    # The county's coturn with the TURN REST shared secret (coturn use-auth-secret): each
    # participant gets its own short-lived credential in the join ack, never a static password.
    turn_urls: tuple[str, ...] = ()
    turn_secret: SecretStr | None = None
    # How long a minted TURN credential can open new relays. coturn checks the expiry only when a
    # session first authenticates (an established relay outlives it; tests/turn pin this), and every
    # (re)join mints a fresh one, so an hour covers a page's own ICE restarts while bounding what a
    # leaked credential is good for. See docs/turn.md.
    turn_ttl_seconds: int = DEFAULT_TURN_TTL_SECONDS
    # Weak rural links: the Opus rate asked of village-hall kiosks (bit/s; speech with in-band FEC
    # stays clear at 24 kbit/s and leaves room for video on a 300 kbit/s line), and how long a
    # peer may stop answering ICE consent checks before its call is ended (a congestion spike or a
    # short cut must not end a meeting; a dead peer is still found).
    kiosk_audio_bitrate: int = 24000
    rtc_consent_timeout_seconds: int = 60
    ice_transport_policy: IceTransportPolicy = IceTransportPolicy.ALL
    # A live meeting past its scheduled end with no official in it for this long ends by itself
    # (server/meetings/autoend.py); 0 = only the chair ends meetings.
    meeting_idle_end_minutes: int = 15
    # Bearer token a Prometheus server on another machine scrapes /metrics with (None: loopback only).
    metrics_token: SecretStr | None = None
    # SFU workers' own /metrics (docs/scale.md): worker N listens on sfu_metrics_port + N (worker
    # ids are then numbers); 0 = no listener. On sfu_metrics_host: loopback unless Prometheus runs
    # on another machine (then with metrics_token).
    sfu_metrics_port: int = 0
    sfu_metrics_host: str = "127.0.0.1"
    # A stopping SFU worker (SIGTERM) lets its meetings go on this long, taking no new ones, before
    # it moves the participants still there (docs/scale.md, "Draining"). Below systemd's
    # TimeoutStopSec (60 s in deploy/systemd/maeul-sfu@.service); 0 = stop at once.
    sfu_drain_seconds: int = 45
    # Scale-out: when a room's joins stop going to its home worker and the room spans workers
    # (docs/scale.md, "Cascade"): once a worker of the room uses room_span_cpu of a core, or holds
    # room_span_cap of the room's participants. Neither set: a room lives on one worker.
    room_span_cpu: float | None = None
    room_span_cap: int | None = None
    # Retention (server/ops/retention.py, docs/operations.md: the law behind each default); days,
    # 0 = keep forever. Recordings count from the recording, the rest from the request's closing.
    retention_recording_days: int = 1095
    retention_message_days: int = 365
    retention_contact_days: int = 90
    retention_audit_days: int = 730

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
        ice_servers = _ice_servers(get("MAEUL_ICE_SERVERS") or "")
        turn_urls = _turn_urls(get("MAEUL_TURN_URLS") or "")
        turn_secret = _turn_secret(get, env)
        _check_turn(turn_urls, turn_secret, ice_servers)
        policy = _ice_transport_policy(get("MAEUL_ICE_TRANSPORT_POLICY") or "all", turn_urls, ice_servers)
        return cls(
            secret_key=SecretStr(secret),
            env=env,
            database_url=(get("MAEUL_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'maeul.db'}"),
            redis_url=_redis_url(get("MAEUL_REDIS_URL") or ""),
            host=(get("MAEUL_HOST") or "127.0.0.1"),
            port=_int(get, "MAEUL_PORT", 8080),
            data_dir=data_dir,
            min_free_mb=_ranged(get, "MAEUL_MIN_FREE_MB", 256, 0, 1024 * 1024),
            trust_proxy=_bool(get, "MAEUL_TRUST_PROXY", False),
            trusted_proxies=_networks(get, "MAEUL_TRUSTED_PROXIES", LOOPBACK_NETWORKS),
            force_secure_cookies=_bool(get, "MAEUL_SECURE_COOKIES", False),
            session_hours=_int(get, "MAEUL_SESSION_HOURS", 12),
            login_max_failures=_int(get, "MAEUL_LOGIN_MAX_FAILURES", 5),
            login_lockout_minutes=_int(get, "MAEUL_LOGIN_LOCKOUT_MINUTES", 15),
            kiosk_filings_per_hour=_ranged(get, "MAEUL_KIOSK_FILINGS_PER_HOUR", 30, 1, 10000),
            enrollment_code_hours=_int(get, "MAEUL_ENROLLMENT_CODE_HOURS", 24),
            duty_ring_seconds=_int(get, "MAEUL_DUTY_RING_SECONDS", 60),
            sockets_per_principal=_ranged(get, "MAEUL_SOCKETS_PER_PRINCIPAL", 4, 1, 64),
            socket_recheck_seconds=_ranged(get, "MAEUL_SOCKET_RECHECK_SECONDS", 5, 1, 300),
            default_locale=(get("MAEUL_DEFAULT_LOCALE") or "ko"),
            log_level=(get("MAEUL_LOG_LEVEL") or "INFO").upper(),
            log_json=_bool(get, "MAEUL_LOG_JSON", True),
            seed_demo=_bool(get, "MAEUL_SEED_DEMO", False),
            ice_servers=ice_servers,
            rtc_host_addresses=tuple(
                a.strip() for a in (get("MAEUL_RTC_HOST_ADDRESSES") or "").split(",") if a.strip()
            ),
            rtc_udp_port=rtc_udp_port(get("MAEUL_RTC_UDP_PORT") or ""),
            turn_urls=turn_urls,
            turn_secret=turn_secret,
            turn_ttl_seconds=_turn_ttl(get),
            ice_transport_policy=policy,
            kiosk_audio_bitrate=_ranged(get, "MAEUL_KIOSK_AUDIO_BITRATE", 24000, 6000, 128000),
            rtc_consent_timeout_seconds=_ranged(get, "MAEUL_RTC_CONSENT_TIMEOUT_SECONDS", 60, 10, 600),
            meeting_idle_end_minutes=_ranged(get, "MAEUL_MEETING_IDLE_END_MINUTES", 15, 0, 24 * 60),
            metrics_token=_metrics_token(get),
            sfu_metrics_port=_ranged(get, "MAEUL_SFU_METRICS_PORT", 0, 0, 65000),
            sfu_metrics_host=(get("MAEUL_SFU_METRICS_HOST") or "127.0.0.1"),
            sfu_drain_seconds=_ranged(get, "MAEUL_SFU_DRAIN_SECONDS", 45, 0, 3600),
            room_span_cpu=_optional_cores(get, "MAEUL_ROOM_SPAN_CPU"),
            room_span_cap=_optional_ranged(get, "MAEUL_ROOM_SPAN_CAP", 1, 100_000),
            retention_recording_days=_ranged(get, "MAEUL_RETENTION_RECORDING_DAYS", 1095, 0, 36500),
            retention_message_days=_ranged(get, "MAEUL_RETENTION_MESSAGE_DAYS", 365, 0, 36500),
            retention_contact_days=_ranged(get, "MAEUL_RETENTION_CONTACT_DAYS", 90, 0, 36500),
            retention_audit_days=_ranged(get, "MAEUL_RETENTION_AUDIT_DAYS", 730, 0, 36500),
        )


def _redis_url(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            "MAEUL_REDIS_URL must be a redis://host:port/db, rediss:// (TLS) "
            "or unix:///path/to/redis.sock URL"
        )
    return value


def _metrics_token(get: Getter) -> SecretStr | None:
    value = (get("MAEUL_METRICS_TOKEN") or "").strip()
    if not value:
        return None
    if len(value) < 24:
        # A short token is guessable by anyone who can reach the port; refuse to start rather
        # than expose the metrics (room ids, kiosk counts) behind it.
        raise ConfigError("MAEUL_METRICS_TOKEN must be at least 24 characters long")
    return SecretStr(value)


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


def rtc_udp_port(raw: str) -> int | None:
    """MAEUL_RTC_UDP_PORT: empty = the default, "off" = a socket per peer connection, else a
    port in [0, 65535] (0: ephemeral) for the SFU's shared UDP socket."""
    value = raw.strip().lower()
    if not value:
        return DEFAULT_RTC_UDP_PORT
    if value == "off":
        return None
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise ConfigError(f"MAEUL_RTC_UDP_PORT must be 'off' or a port in [0, 65535], got {raw.strip()!r}")
    return int(value)


def _ranged(get: Getter, name: str, default: int, low: int, high: int) -> int:
    value = _int(get, name, default)
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _optional_ranged(get: Getter, name: str, low: int, high: int) -> int | None:
    """An integer in [low, high], or None when the variable is empty."""
    if (get(name) or "").strip() == "":
        return None
    return _ranged(get, name, 0, low, high)


def _optional_cores(get: Getter, name: str) -> float | None:
    """A fraction of one CPU core (0.7: 70 % of a core), or None when the variable is empty."""
    raw = (get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of cores such as 0.7, got {raw!r}") from exc
    if not 0 <= value <= 64:  # (math.isnan fails this too)
        raise ConfigError(f"{name} must be between 0 and 64 cores, got {raw!r}")
    return value


def _networks(get: Getter, name: str, default: tuple[IpNetwork, ...]) -> tuple[IpNetwork, ...]:
    raw = get(name)
    if raw in (None, ""):
        return default
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in str(raw).split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be comma-separated CIDRs like 10.0.0.5/32: {exc}") from exc


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


# turn:host[:port][?transport=udp|tcp] and turns:host[:port][?transport=tcp], as browsers and
# aiortc accept them (host: a name, an IPv4 address or a bracketed IPv6 address).
_TURN_URL_RE = re.compile(
    r"(?P<scheme>turns?):(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?"
    r"(?:\?transport=(?P<transport>udp|tcp))?"
)


def _turn_urls(raw: str) -> tuple[str, ...]:
    """Parse MAEUL_TURN_URLS: comma-separated turn:/turns: URLs."""
    urls = tuple(u.strip() for u in raw.split(",") if u.strip())
    for url in urls:
        match = _TURN_URL_RE.fullmatch(url)
        if match is None or not (0 < int(match["port"] or "3478") < 65536):
            raise ConfigError(
                f"MAEUL_TURN_URLS: {url!r} is not a TURN URL; expected e.g. "
                "turn:turn.gangjin.example:3478?transport=udp, turn:turn.gangjin.example:3478?transport=tcp, "
                "turns:turn.gangjin.example:5349?transport=tcp"
            )
        if match["scheme"] == "turns" and match["transport"] == "udp":
            raise ConfigError(f"MAEUL_TURN_URLS: {url!r}: turns: (TLS) runs over TCP only")
    return urls


def _turn_secret(get: Getter, env: Environment) -> SecretStr | None:
    """MAEUL_TURN_SECRET, or MAEUL_TURN_SECRET_FILE (the same file coturn's config is built from)."""
    value = get("MAEUL_TURN_SECRET") or ""
    path = get("MAEUL_TURN_SECRET_FILE") or ""
    if value and path:
        raise ConfigError("set MAEUL_TURN_SECRET or MAEUL_TURN_SECRET_FILE, not both")
    if path:
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            # The error names the file, never its content.
            raise ConfigError(f"MAEUL_TURN_SECRET_FILE: cannot read {path}: {exc.strerror}") from exc
        if not value:
            raise ConfigError(f"MAEUL_TURN_SECRET_FILE: {path} is empty")
    if not value:
        return None
    if env is Environment.PRODUCTION and len(value) < 32:
        raise ConfigError("the TURN secret must be at least 32 characters long in production")
    return SecretStr(value)


def _check_turn(urls: tuple[str, ...], secret: SecretStr | None, ice_servers: tuple[IceServer, ...]) -> None:
    if urls and secret is None:
        raise ConfigError(
            "MAEUL_TURN_URLS is set but there is no TURN secret: set MAEUL_TURN_SECRET_FILE (or "
            "MAEUL_TURN_SECRET) to coturn's static-auth-secret"
        )
    if secret is not None and not urls:
        raise ConfigError("a TURN secret is set but MAEUL_TURN_URLS is empty: list the coturn URLs")
    if secret is not None and any(s.credential for s in ice_servers):
        # Otherwise a static TURN password would still reach every page.
        raise ConfigError(
            "MAEUL_ICE_SERVERS carries a static credential while the TURN secret is set: "
            "list the TURN server in MAEUL_TURN_URLS instead and drop the password"
        )


def _turn_ttl(get: Getter) -> int:
    ttl = _int(get, "MAEUL_TURN_TTL_SECONDS", DEFAULT_TURN_TTL_SECONDS)
    low, high = TURN_TTL_RANGE
    if not low <= ttl <= high:
        raise ConfigError(f"MAEUL_TURN_TTL_SECONDS must be between {low} and {high}, got {ttl}")
    return ttl


def _ice_transport_policy(
    raw: str, turn_urls: tuple[str, ...], ice_servers: tuple[IceServer, ...]
) -> IceTransportPolicy:
    try:
        policy = IceTransportPolicy(raw.strip().lower())
    except ValueError as exc:
        raise ConfigError(f"MAEUL_ICE_TRANSPORT_POLICY must be all or relay, got {raw!r}") from exc
    has_turn = bool(turn_urls) or any(u.startswith("turn") for s in ice_servers for u in s.urls)
    if policy is IceTransportPolicy.RELAY and not has_turn:
        raise ConfigError(
            "MAEUL_ICE_TRANSPORT_POLICY=relay needs a TURN server (MAEUL_TURN_URLS): "
            "with no relay candidate no call could connect"
        )
    return policy
