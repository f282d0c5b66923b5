"""A throw-away PostgreSQL server for the test run: initdb + pg_ctl in a temp dir, on a free
loopback port, removed afterwards. Needs Debian's ``postgresql`` package (``make test`` installs
it). As root, the server runs as the ``postgres`` user, since PostgreSQL refuses to run as root."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL is not installed: run `make test` (it installs Debian's postgresql)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class PostgresServer:
    """One throw-away server: ``init`` once, then ``start`` and ``stop`` as often as a test needs
    (the fault tests stop it mid-run and start it again on the same port and data directory).

    For speed, commits are acknowledged before their WAL is written; ``durable_commits`` waits for
    the write, so an immediate stop (a crash as far as PostgreSQL knows) loses no acknowledged
    commit. fsync stays off: the machine does not lose power in a test.
    """

    def __init__(self, *, durable_commits: bool = False) -> None:
        self.durable_commits = durable_commits
        # This server has no TLS: asyncpg's default ("prefer") would ask for it on every connection,
        # and a connection closed during that exchange leaves an unretrieved ConnectionError behind.
        os.environ.setdefault("PGSSLMODE", "disable")
        self.bin_dir = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="maeul-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.env = {**os.environ, "LC_ALL": "C.UTF-8"}
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        """The base URL ``postgresql+asyncpg://postgres@127.0.0.1:PORT`` (no database part)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}"

    def _run(self, *args: str, check: bool = True) -> None:
        subprocess.run(_as_server_user(list(args)), check=check, capture_output=True, env=self.env)

    def init(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
        if not self.durable_commits:
            options += " -c synchronous_commit=off"
        self.start_with(options)

    def start_with(self, options: str) -> None:
        """``pg_ctl start`` with these server options, logging to the server's own log file."""
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "immediate", *, check: bool = False) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=check)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_postgres(*, durable_commits: bool = False) -> Iterator[PostgresServer]:
    """A started server, stopped and removed afterwards."""
    server = PostgresServer(durable_commits=durable_commits)
    try:
        server.init()
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        server.remove()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a base URL ``postgresql+asyncpg://postgres@127.0.0.1:PORT`` (no database part)."""
    with running_postgres() as server:
        yield server.url
