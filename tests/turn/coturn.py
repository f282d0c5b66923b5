"""A real coturn (``/usr/bin/turnserver``) for the TURN tests: started on free ports with a random
shared secret per run (``use-auth-secret``, the scheme Maeul mints credentials for), logs and pid
in a temp dir, killed afterwards. Usable inside a lab namespace through ``command_prefix``."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

TURNSERVER = "/usr/bin/turnserver"
REALM = "maeul.test"


@dataclass(frozen=True)
class Coturn:
    host: str
    port: int
    secret: str
    realm: str
    relay_ports: tuple[int, int]
    log_path: Path

    def url(self, transport: str) -> str:
        return f"turn:{self.host}:{self.port}?transport={transport}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on ``host`` (TURN listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free TCP+UDP port")


def relay_range() -> tuple[int, int]:
    # A random block per server so parallel test workers rarely share one; coturn skips busy ports.
    low = 20000 + secrets.randbelow(400) * 100
    return low, low + 99


def _ready(server: Coturn, probe: bool) -> bool:
    if probe:
        with contextlib.suppress(OSError), socket.create_connection((server.host, server.port), timeout=0.5):
            return True
        return False
    # In another namespace this process cannot connect; coturn logs each listener it opens.
    log = server.log()
    where = f"{server.host}:{server.port}"
    return f"TCP listener opened on : {where}" in log and f"UDP listener opened on: {where}" in log


@contextlib.contextmanager
def coturn(
    workdir: Path,
    *,
    host: str = "127.0.0.1",
    allow_loopback_peers: bool = True,
    command_prefix: Sequence[str] = (),
    port: int | None = None,
    extra_args: Sequence[str] = (),
    config_text: str | None = None,
) -> Iterator[Coturn]:
    """Start coturn. With ``config_text`` (a whole turnserver.conf, e.g. the production one from
    docs/turn.md) only the secret is added to it; ``host``/``port``
    must then match its listeners and its log-file must be ``workdir/turnserver.log``."""
    workdir.mkdir(parents=True, exist_ok=True)
    if port is None:
        # Inside a lab namespace the port cannot be probed from here; the namespace is ours alone.
        port = 3478 if command_prefix else free_port(host)
    low, high = relay_range()
    if config_text is not None:
        low = int(_option(config_text, "min-port"))
        high = int(_option(config_text, "max-port"))
    server = Coturn(
        host=host,
        port=port,
        secret=secrets.token_urlsafe(32),
        realm=REALM if config_text is None else _option(config_text, "realm"),
        relay_ports=(low, high),
        log_path=workdir / "turnserver.log",
    )
    # The secret goes through a config file (mode 0600), not argv: argv is world-readable in /proc.
    config = workdir / "turnserver.conf"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        if config_text is not None:
            # No userdb: as in production, the default (Debian's /var/lib/turn/turndb, which the
            # turnserver user can open after proc-user drops privileges) serves the secret mode.
            handle.write(config_text + "\n")
        handle.write(f"static-auth-secret={server.secret}\n")
    # --verbose: coturn then logs each listener it opens (the readiness check reads them).
    args = [*command_prefix, TURNSERVER, "-c", str(config), "--verbose"]
    if config_text is None:
        args += _test_args(server, workdir, allow_loopback_peers)
    args += list(extra_args)
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not _ready(server, probe=not command_prefix):
            if proc.poll() is not None:
                stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"turnserver exited with {proc.returncode}: {stderr}\n{server.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"turnserver did not listen on {host}:{port}\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _option(config_text: str, name: str) -> str:
    for line in config_text.splitlines():
        key, _, value = line.strip().partition("=")
        if key == name:
            return value.strip()
    raise ValueError(f"no {name} in the coturn configuration")


def _test_args(server: Coturn, workdir: Path, allow_loopback_peers: bool) -> list[str]:
    """A test coturn: loopback-friendly, no TLS, private logs/pid/database."""
    low, high = server.relay_ports
    return [
        f"--listening-ip={server.host}",
        f"--relay-ip={server.host}",
        f"--listening-port={server.port}",
        f"--min-port={low}",
        f"--max-port={high}",
        "--use-auth-secret",
        f"--realm={server.realm}",
        "--fingerprint",
        "--no-cli",
        "--no-tls",
        "--no-dtls",
        "--no-multicast-peers",
        "--no-stdout-log",
        "--simple-log",
        f"--log-file={server.log_path}",
        f"--pidfile={workdir / 'turnserver.pid'}",
        # Its own (empty) user database instead of the system's /var/lib/turn/turndb.
        f"--db={workdir / 'turndb'}",
        *(["--allow-loopback-peers"] if allow_loopback_peers else []),
    ]
