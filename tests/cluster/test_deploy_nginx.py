"""The shipped nginx site (deploy/nginx/maeul.conf + maeul-proxy.conf) as county IT installs it:
`nginx -t` accepts it with a real (throwaway, self-signed) certificate, and served on loopback it
redirects HTTP to HTTPS, proxies over TLS to every web process with the forwarding headers
Maeul trusts, upgrades socket.io's websocket, and turns away a body over its limit."""

from __future__ import annotations

import asyncio
import io
import os
import re
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.cluster.parts import PROJECT_ROOT, PROXY_SNIPPET, Nginx, probe_app
from tests.pg import free_port

pytestmark = pytest.mark.network

SITE = PROJECT_ROOT / "deploy" / "nginx" / "maeul.conf"


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def throwaway_cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "fullchain.pem", where / "privkey.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-days", "1", "-subj", "/CN=maeul.gangjin.example"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return Cert(cert, key)


def _replace(text: str, old: str, new: str, count: int) -> str:
    # Each edit must hit exactly where the shipped file says: a changed site fails here, loudly,
    # instead of being tested in a shape it no longer has.
    found = text.count(old)
    assert found == count, f"expected {count} x {old!r} in {SITE.name}, found {found}"
    return text.replace(old, new)


def installed_site(cert: Cert, log_dir: Path, *, http_port: int, https_port: int, backends: list[int]) -> str:
    """The shipped site with only what an installation changes: certificate paths, the snippet's
    place, the log directory; and, for a test, loopback ports and the backends' ports."""
    text = SITE.read_text()
    text = _replace(text, "/etc/ssl/maeul/fullchain.pem", str(cert.cert), 1)
    text = _replace(text, "/etc/ssl/maeul/privkey.pem", str(cert.key), 1)
    text = _replace(text, "include /etc/nginx/snippets/maeul-proxy.conf;", f"include {PROXY_SNIPPET};", 2)
    text = _replace(text, "/var/log/nginx/", f"{log_dir}/", 2)
    text = _replace(text, "listen 80;", f"listen 127.0.0.1:{http_port};", 1)
    text = _replace(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;", 1)
    # The test namespace may have no IPv6 loopback; the IPv4 listeners carry the test.
    text = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", text)
    upstream = re.findall(r"server 127\.0\.0\.1:\d+ max_fails", text)
    assert len(upstream) == 2, upstream
    for line, port in zip(upstream, backends, strict=True):
        text = text.replace(line, f"server 127.0.0.1:{port} max_fails", 1)
    return text


def test_shipped_site_passes_nginx_t(throwaway_cert: Cert, tmp_path: Path) -> None:
    site = installed_site(
        throwaway_cert, tmp_path, http_port=free_port(), https_port=free_port(), backends=[1, 2]
    )
    proxy = Nginx([], site_text=site)
    try:
        check = proxy.check_config()
    finally:
        proxy.remove()
    assert check.returncode == 0, check.stderr
    assert "test is successful" in check.stderr
    # No warning either (a duplicate or deprecated directive shows here first).
    assert "[warn]" not in check.stderr and "[emerg]" not in check.stderr, check.stderr


def test_nginx_t_fails_without_the_certificate(tmp_path: Path) -> None:
    # The check is real: with the placeholder paths left as shipped, nginx refuses the site.
    missing = Cert(tmp_path / "none.pem", tmp_path / "none.key")
    site = installed_site(missing, tmp_path, http_port=free_port(), https_port=free_port(), backends=[1, 2])
    proxy = Nginx([], site_text=site)
    try:
        check = proxy.check_config()
    finally:
        proxy.remove()
    assert check.returncode != 0
    assert "none.pem" in check.stderr


@pytest.fixture
async def two_backends() -> AsyncIterator[list[int]]:
    runners: list[web.AppRunner] = []
    ports = [free_port(), free_port()]
    for name, port in zip("ab", ports, strict=True):
        runner = web.AppRunner(probe_app(name))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
    yield ports
    for runner in runners:
        await runner.cleanup()


async def test_shipped_site_serves_tls_websocket_and_limits(
    throwaway_cert: Cert, tmp_path: Path, two_backends: list[int]
) -> None:
    http_port, https_port = free_port(), free_port()
    site = installed_site(
        throwaway_cert, tmp_path, http_port=http_port, https_port=https_port, backends=two_backends
    )
    proxy = Nginx([], port=https_port, site_text=site)
    await asyncio.to_thread(proxy.start)
    base = f"https://127.0.0.1:{https_port}"
    trust = ssl.create_default_context(cafile=str(throwaway_cert.cert))
    trust.check_hostname = False  # the certificate names the county's host, the test dials 127.0.0.1
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as session:
            async with session.get(
                f"http://127.0.0.1:{http_port}/login?next=/meetings", allow_redirects=False
            ) as resp:
                assert resp.status == 301
                assert resp.headers["Location"] == "https://127.0.0.1/login?next=/meetings"

            seen = set()
            # Requests without a room hash on their random request id (maeul.conf): spread, not in
            # turn, so ask until both answered (40 tries: 2**-39 that one backend takes them all).
            for _ in range(40):
                if seen == {"a", "b"}:
                    break
                async with session.get(f"{base}/whoami", headers={"X-Forwarded-Proto": "http"}) as resp:
                    assert resp.status == 200
                    assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
                    body = await resp.json()
                seen.add(body["backend"])
                # nginx overwrites the client's -Proto with what it saw: TLS.
                assert body["forwarded_proto"] == "https"
                assert body["forwarded_for"] == "127.0.0.1"
                assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
            assert seen == {"a", "b"}

            async with session.ws_connect(f"wss://127.0.0.1:{https_port}/socket.io/") as ws:
                await ws.send_str("ping")
                assert (await asyncio.wait_for(ws.receive_str(), 5)).endswith(":ping")

            # An upload of the largest size Maeul takes reaches a web process whole.
            size = 64 * 1024 * 1024
            async with session.post(f"{base}/upload", data=io.BytesIO(b"\0" * size)) as resp:
                assert resp.status == 200
                assert (await resp.json())["bytes"] == size
            # Past nginx's limit: refused by nginx before any of it is read or forwarded.
            async with session.post(f"{base}/upload", data=io.BytesIO(b"\0" * (66 * 1024 * 1024))) as resp:
                assert resp.status == 413
    finally:
        await asyncio.to_thread(proxy.remove)


async def _wait_healthy(base: str, process: subprocess.Popen[str], timeout: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            assert process.poll() is None, f"run.py serve exited with {process.returncode}"
            try:
                async with session.get(f"{base}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("run.py serve did not become healthy")


async def test_maeul_behind_the_shipped_site(throwaway_cert: Cert, tmp_path: Path) -> None:
    """A real Maeul process behind the shipped site: it believes nginx's -Proto (Secure cookies),
    logs under nginx's request id, speaks socket.io over wss, and answers an upload over its
    limit itself (Korean), nginx's limit being above Maeul's. The upstream's second line names a
    port nothing listens on: nginx steps over it."""
    port, http_port, https_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "MAEUL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'maeul.db'}",
        "MAEUL_DATA_DIR": str(tmp_path / "data"),
        "MAEUL_PORT": str(port),
        "MAEUL_TRUST_PROXY": "true",
        "MAEUL_TRUSTED_PROXIES": "127.0.0.1/32",
    }
    process = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, str(PROJECT_ROOT / "run.py"), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    site = installed_site(
        throwaway_cert, tmp_path, http_port=http_port, https_port=https_port, backends=[port, free_port()]
    )
    proxy = Nginx([], port=https_port, site_text=site)
    trust = ssl.create_default_context(cafile=str(throwaway_cert.cert))
    trust.check_hostname = False
    base = f"https://127.0.0.1:{https_port}"
    try:
        await _wait_healthy(f"http://127.0.0.1:{port}", process)
        await asyncio.to_thread(proxy.start)
        # unsafe: keep cookies for an IP address (the CSRF nonce the upload below needs).
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=trust), cookie_jar=jar
        ) as session:
            cookies: list[str] = []
            # Several requests: each that nginx first sends to the dead upstream line still succeeds.
            for _ in range(3):
                async with session.get(f"{base}/login", headers={"X-Request-ID": "forged"}) as resp:
                    assert resp.status == 200
                    page = await resp.text()
                    assert "로그인" in page
                    # nginx's own id replaced the client's, and Maeul answered under it.
                    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-ID"])
                    cookies += resp.headers.getall("Set-Cookie", [])
            # Maeul believed nginx's X-Forwarded-Proto: https, so its cookies are Secure.
            assert cookies and all("; Secure" in cookie for cookie in cookies), cookies

            # The engine.io handshake of a websocket-only socket.io client of a room page, through
            # nginx on a non-default port: engine.io takes only a same-origin socket, so Maeul must
            # see the Host the browser sent, port included (maeul-proxy.conf's $http_host).
            async with session.ws_connect(
                f"wss://127.0.0.1:{https_port}/socket.io/?room=1&EIO=4&transport=websocket", origin=base
            ) as ws:
                opening = await asyncio.wait_for(ws.receive_str(), 10)
                assert opening.startswith("0{") and '"sid"' in opening

            # Over Maeul's 64 MiB, under nginx's 65 MiB: Maeul's own answer, in Korean.
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token is not None
            too_big = io.BytesIO(b"x" * (64 * 1024 * 1024 + 1024))
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": token[1]}
            async with session.post(f"{base}/login", data=too_big, headers=headers) as resp:
                assert resp.status == 413
                answer = await resp.text()
            assert "nginx" not in answer
            assert re.search("[가-힣]", answer), answer[:500]
    finally:
        await asyncio.to_thread(proxy.remove)
        process.terminate()
        await asyncio.to_thread(process.wait, 30)
