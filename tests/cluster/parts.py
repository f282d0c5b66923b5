"""Real parts for the scale-out tests: a redis-server and an nginx (Debian packages, installed by
``scripts/install-system-deps.sh``), each a child process of the test, on a unix socket or a free
loopback port, with its files in a temp dir. PostgreSQL comes from ``tests/pg.py``.

Both are plain objects with ``start``/``stop``/``kill``/``restart`` so failure tests can take a
part down in the middle of a run and bring it back on the same address.

Maeul's own processes: :class:`Proc` (one ``run.py`` process, ``sfu_worker_env`` for a worker),
:func:`start_in_process_worker` (an SFU worker as a task of the test), and :class:`Cascade` (the
``cascade`` fixture's workers, planes and aiortc clients, with :class:`Arrivals` timing what each
client receives).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from redis.asyncio import Redis

from rtc.codecs import vp8
from server.cluster.registry import Registry, SpanPolicy, WorkerInfo, connect, worker_key
from server.cluster.remote import RemoteHandle, RemoteSfu
from server.cluster.worker import SfuWorker
from server.sfu import Sfu, SfuConfig
from tests.pg import free_port
from tests.sfu.sfu_testkit import LOOPBACK, Client

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = "/usr/bin/redis-server"
NGINX = "/usr/sbin/nginx"
# The proxy rules of the shipped site; the tests' nginx includes the same file.
PROXY_SNIPPET = PROJECT_ROOT / "deploy" / "nginx" / "maeul-proxy.conf"


def _short_dir(prefix: str) -> Path:
    # A unix socket path must fit in 108 bytes; pytest's tmp_path can be longer than that.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def _stop_process(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float = 10) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RedisServer:
    """A redis-server on a unix socket (and, if asked, a loopback TCP port), persistence off.

    ``url`` is what MAEUL_REDIS_URL would hold. ``stop`` is a clean SHUTDOWN (SIGTERM), ``kill``
    a crash (SIGKILL); either way ``start`` brings it back, empty (nothing is persisted), on the
    same socket and port, which is what a Redis restart looks like to Maeul.
    """

    def __init__(
        self, *, tcp: bool = False, extra_args: Sequence[str] = (), command_prefix: Sequence[str] = ()
    ) -> None:
        self.extra_args = tuple(extra_args)
        self.root = _short_dir("maeul-redis-")
        self.socket_path = self.root / "redis.sock"
        self.port = free_port() if tcp else 0
        self.log_path = self.root / "redis.log"
        self.command_prefix = tuple(command_prefix)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``unix:///…/redis.sock`` (redis-py's form for a unix socket)."""
        return f"unix://{self.socket_path}"

    @property
    def tcp_url(self) -> str:
        if not self.port:
            raise RuntimeError("this RedisServer was made without tcp=True")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("redis-server is not started")
        return self._proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 10) -> None:
        if self.running:
            raise RuntimeError("redis-server is already running")
        args = [
            *self.command_prefix,
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            # Persistence off: a restart starts empty, as the failure tests want, and nothing
            # is written outside the temp dir.
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.root),
            "--logfile",
            str(self.log_path),
            "--daemonize",
            "no",
            *self.extra_args,
        ]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer on {self.socket_path}:\n{self.log()}")
            time.sleep(0.05)

    def ping(self) -> bool:
        """A raw RESP PING on the socket (no client library, so it also proves the library)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1)
                sock.connect(str(self.socket_path))
                sock.sendall(b"PING\r\n")
                # -NOAUTH (a server with requirepass) also proves it is up and answering.
                return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: redis-server runs SHUTDOWN)."""
        if self._proc is not None:
            _stop_process(self._proc, signal.SIGTERM)
        self._proc = None

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown."""
        if self._proc is not None:
            _stop_process(self._proc, signal.SIGKILL)
        self._proc = None
        # A killed redis-server leaves its socket file behind; the next start replaces it.

    def restart(self, *, crash: bool = False) -> None:
        if crash:
            self.kill()
        else:
            self.stop()
        self.start()

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_redis(*, tcp: bool = False, extra_args: Sequence[str] = ()) -> Iterator[RedisServer]:
    server = RedisServer(tcp=tcp, extra_args=extra_args)
    try:
        server.start()
        yield server
    finally:
        server.remove()


def backend_address(target: str | Path | int) -> str:
    """An nginx upstream ``server`` address: a unix socket path, a loopback port, or host:port."""
    if isinstance(target, Path):
        return f"unix:{target}"
    if isinstance(target, int):
        return f"127.0.0.1:{target}"
    return target


class Nginx:
    """An nginx in front of N Maeul web processes: an upstream of ``backends`` (unix socket paths
    or loopback ports), websocket upgrade, the shipped proxy rules (``deploy/nginx/
    maeul-proxy.conf``), plain HTTP on a free loopback port (TLS is proven by the shipped site's
    own test, tests/cluster/test_deploy_nginx.py).

    Run in the foreground (``daemon off``) as a child of the test. ``set_backends`` rewrites the
    upstream and reloads (SIGHUP), the way an operator adds a web process.
    """

    def __init__(
        self,
        backends: Sequence[str | Path | int],
        *,
        port: int | None = None,
        client_max_body_size: str = "65m",
        site_text: str | None = None,
    ) -> None:
        """``site_text``: an http-context site (upstream, servers) used instead of the generated
        one, e.g. the shipped deploy/nginx/maeul.conf; ``port`` must then be one it listens on."""
        self.site_text = site_text
        self.root = _short_dir("maeul-nginx-")
        self.port = port if port is not None else free_port()
        self.backends = [backend_address(b) for b in backends]
        self.client_max_body_size = client_max_body_size
        self.conf_path = self.root / "nginx.conf"
        self.error_log_path = self.root / "error.log"
        self.access_log_path = self.root / "access.log"
        self.pid_path = self.root / "nginx.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def error_log(self) -> str:
        return self.error_log_path.read_text(errors="replace") if self.error_log_path.exists() else ""

    def render(self) -> str:
        """The whole nginx.conf: this runner's main and http settings around the site."""
        site = self.site_text if self.site_text is not None else self._site()
        temp = self.root / "temp"
        # As root (the test namespace), workers would switch to `nobody`, which cannot reach the
        # backends' sockets in the test's temp dirs (and in a user namespace cannot be switched to).
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return f"""{user}worker_processes 1;
events {{ worker_connections 1024; }}
http {{
    access_log {self.access_log_path};
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{site}
}}
"""

    def _site(self) -> str:
        if not self.backends:
            raise ValueError("nginx needs at least one backend")
        servers = "\n".join(f"        server {b} max_fails=1 fail_timeout=2s;" for b in self.backends)
        return f"""    map $http_upgrade $maeul_connection_upgrade {{
        default upgrade;
        ''      '';
    }}
    # As the shipped site (deploy/nginx/maeul.conf): the sockets of one room (`?room=`) all go to
    # one web process, which holds the room's participants; other requests spread.
    map $arg_room $maeul_balance_key {{
        ''      $request_id;
        default room:$arg_room;
    }}
    upstream maeul_web {{
        hash $maeul_balance_key consistent;
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        client_max_body_size {self.client_max_body_size};
        location / {{
            include {PROXY_SNIPPET};
            proxy_pass http://maeul_web;
        }}
        location /socket.io/ {{
            include {PROXY_SNIPPET};
            proxy_read_timeout 1h;
            proxy_buffering off;
            proxy_pass http://maeul_web;
        }}
    }}"""

    def check_config(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t`` on the rendered config (parses it, loads certificates, opens logs)."""
        (self.root / "temp").mkdir(exist_ok=True)
        self.conf_path.write_text(self.render())
        return subprocess.run(self._args("-t"), capture_output=True, text=True)

    def _args(self, *extra: str) -> list[str]:
        directives = f"daemon off; pid {self.pid_path}; error_log {self.error_log_path} info;"
        return [
            NGINX,
            *("-p", str(self.root), "-e", str(self.error_log_path), "-c", str(self.conf_path)),
            *("-g", directives, *extra),
        ]

    def _write(self) -> None:
        check = self.check_config()
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused its config:\n{check.stderr}\n{self.conf_path.read_text()}")

    def start(self, timeout: float = 10) -> None:
        if self.running:
            raise RuntimeError("nginx is already running")
        self._write()
        # Its own process group, so `kill` takes the workers down with the master.
        self._proc = subprocess.Popen(
            self._args(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while not self._listening():
            if self._proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self._proc.returncode}:\n{self.error_log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"nginx did not listen on {self.port}:\n{self.error_log()}")
            time.sleep(0.05)

    def _listening(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True
        return False

    def set_backends(self, backends: Sequence[str | Path | int]) -> None:
        """Rewrite the upstream and reload: old workers finish their requests, new ones use it."""
        self.backends = [backend_address(b) for b in backends]
        self._write()
        if self._proc is not None and self.running:
            self._proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """Graceful stop (SIGQUIT: finish open requests)."""
        if self._proc is not None:
            _stop_process(self._proc, signal.SIGQUIT)
        self._proc = None

    def kill(self) -> None:
        if self._proc is not None:
            # SIGKILL to the whole group: orphaned workers would go on serving the listen socket.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_nginx(backends: Sequence[str | Path | int], *, port: int | None = None) -> Iterator[Nginx]:
    proxy = Nginx(backends, port=port)
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.remove()


def probe_app(name: str) -> web.Application:
    """A tiny stand-in for a web process: says who it is and what headers nginx sent; echoes on a
    websocket at /socket.io/ (where nginx upgrades)."""

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "backend": name,
                "forwarded_for": request.headers.get("X-Forwarded-For"),
                "forwarded_proto": request.headers.get("X-Forwarded-Proto"),
                "host": request.headers.get("Host"),
                "request_id": request.headers.get("X-Request-ID"),
            }
        )

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(f"{name}:{message.data}")
        return ws

    async def upload(request: web.Request) -> web.Response:
        return web.json_response({"backend": name, "bytes": len(await request.read())})

    app = web.Application(client_max_size=65 * 1024 * 1024)
    app.router.add_get("/whoami", whoami)
    app.router.add_post("/upload", upload)
    app.router.add_get("/socket.io/", echo)
    return app


async def heartbeat(
    registry: Registry, worker_id: str, cpu: float | None, count: int, *, draining: bool = False
) -> None:
    """What a worker's heartbeat writes: its record (measured CPU, participants + rooms, draining)."""
    info = WorkerInfo(worker_id, f"boot-{worker_id}", (), count, cpu=cpu, draining=draining)
    await registry.register(info, {})


@dataclass
class Proc:
    """One ``run.py`` process of the deployment, its output in a log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "run.py", *self.args], cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=log
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def sfu_worker_env(redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``run.py sfu`` worker under test: this Redis, loopback media, a
    database URL that points at nothing (a worker needs none), and no drain on SIGTERM (tests of
    the drain set ``MAEUL_SFU_DRAIN_SECONDS`` in ``extra``)."""
    return (
        {k: v for k, v in os.environ.items() if not k.startswith("MAEUL_")}
        | {
            "MAEUL_ENV": "test",
            "MAEUL_SECRET_KEY": "sfu-worker-test-secret-not-for-production",
            "MAEUL_DATA_DIR": str(data_dir),
            "MAEUL_DATABASE_URL": "postgresql+asyncpg://maeul:nope@127.0.0.1:9/maeul",
            "MAEUL_REDIS_URL": redis_url,
            "MAEUL_RTC_HOST_ADDRESSES": "127.0.0.1",
            "MAEUL_LOG_LEVEL": "WARNING",
            "MAEUL_LOG_JSON": "false",
            "MAEUL_SFU_DRAIN_SECONDS": "0",
        }
        | extra
    )


@dataclass
class RunningWorker:
    """An :class:`SfuWorker` running as a task in the test's own process, on its own Redis client."""

    worker: SfuWorker
    task: asyncio.Task[None]
    redis: Redis

    async def stop(self) -> None:
        """Stop it as SIGTERM would (drain, if it has one) and close its client."""
        if not self.task.done():
            self.worker.stop.set()
            await asyncio.wait_for(self.task, 15)
        await self.redis.aclose()


async def start_in_process_worker(
    redis_url: str,
    worker_id: str,
    *,
    sfu: Sfu | None = None,
    registered: Callable[[WorkerInfo], bool] | None = None,
    **options: Any,
) -> RunningWorker:
    """Start an SFU worker in the test's own process (loopback media; ``options``: SfuWorker's,
    such as a ``cpu_meter``), and return once its record is in Redis and satisfies
    ``registered``, or once it stopped (a worker refused at start: its task holds the error);
    AssertionError if it does neither within 5 s."""
    redis = connect(redis_url)
    sfu = sfu or Sfu(SfuConfig(host_addresses=tuple(LOOPBACK), ice_servers=()))
    worker = SfuWorker(sfu, redis, worker_id, tuple(LOOPBACK), **options)
    task = asyncio.create_task(worker.run())
    probe = connect(redis_url)
    running = RunningWorker(worker, task, redis)
    try:
        for _ in range(100):
            if task.done():
                break
            raw = await probe.get(worker_key(worker_id))
            if raw is not None and (registered is None or registered(WorkerInfo.from_json(raw))):
                break
            await asyncio.sleep(0.05)
        else:
            await running.stop()
            raise AssertionError(f"worker {worker_id} did not register within 5 s")
    finally:
        await probe.aclose()
    return running


@contextlib.asynccontextmanager
async def in_process_worker(redis_url: str, worker_id: str) -> AsyncIterator[SfuWorker]:
    """An SFU worker in the test's own process (its real CPU meter, loopback media), registered on
    the test's Redis before it is yielded, and stopped after."""
    running = await start_in_process_worker(redis_url, worker_id)
    try:
        assert not running.task.done(), "the worker did not start"
        yield running.worker
    finally:
        await running.stop()


class Arrivals:
    """When each RTP packet reached a client's receiving slots (before decoding), per kind, and
    which video packets began a keyframe: the media gaps and keyframes the tests measure."""

    def __init__(self, client: Client) -> None:
        self.times: dict[str, list[float]] = {"audio": [], "video": []}
        self.ssrc: dict[str, int] = {}
        self.keyframes: list[float] = []
        for transceiver in client.pc.getTransceivers():
            if transceiver.direction == "recvonly":
                self._tap(transceiver.receiver, transceiver.kind)

    def _tap(self, receiver: Any, kind: str) -> None:
        handle = receiver._handle_rtp_packet

        async def tapped(packet: Any, arrival_time_ms: int) -> None:
            now = time.monotonic()
            self.times[kind].append(now)
            self.ssrc[kind] = packet.ssrc
            if kind == "video" and vp8.is_keyframe_start(packet.payload):
                self.keyframes.append(now)
            await handle(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = tapped

    def count(self, kind: str, since: float) -> int:
        return sum(t >= since for t in self.times[kind])

    def longest_gap(self, kind: str, start: float, end: float) -> float:
        """The longest time without a packet of ``kind`` between ``start`` and ``end``."""
        marks = [start, *(t for t in self.times[kind] if start < t < end), end]
        return max(b - a for a, b in zip(marks, marks[1:], strict=False))


@dataclass
class Cascade:
    """Two or more ``run.py sfu`` workers on one Redis (the ``cascade`` fixture), web-side planes
    and aiortc clients in the test's process; :meth:`join` admits a client to :attr:`room`."""

    redis: RedisServer
    workers: dict[str, Proc]
    tmp: Path
    room: str = "briefing"
    clients: list[Client] = field(default_factory=list)
    planes: list[RemoteSfu] = field(default_factory=list)
    redises: list[Redis] = field(default_factory=list)

    async def plane(self, span: SpanPolicy) -> RemoteSfu:
        redis = connect(self.redis.url)
        self.redises.append(redis)
        plane = RemoteSfu(redis, span=span)
        await plane.start()
        self.planes.append(plane)
        return plane

    async def join(self, plane: RemoteSfu, name: str, **kw: Any) -> tuple[Client, RemoteHandle, Arrivals]:
        client = Client(name, **kw)
        self.clients.append(client)
        arrivals = Arrivals(client)
        handle = await plane.admit(self.room, name)
        await client.connect(handle)  # type: ignore[arg-type]
        return client, handle, arrivals
