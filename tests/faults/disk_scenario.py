"""The full-disk scenario, run by ``test_disk_full.py`` as ``unshare -m python -m
tests.faults.disk_scenario WORKDIR``: in a mount namespace of its own it mounts a small tmpfs as the
data directory of a real server process (SQLite database and media), fills it step by step and
prints what the server answered as one JSON line. The assertions are in the test."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.petitions.conftest import BASIC, write_voice_clip
from tests.petitions.live import PASSWORD, LiveServer, prepare

TMPFS_MB = 64
MIN_FREE_MB = 16
MIB = 1024 * 1024


def _free(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def fill_to(folder: Path, free_bytes: int) -> None:
    """Grow or shrink the filler file so that about ``free_bytes`` stay free."""
    filler = folder / "filler"
    current = filler.stat().st_size if filler.exists() else 0
    target = max(0, current + _free(folder) - free_bytes)
    if target < current:
        os.truncate(filler, target)
        return
    with open(filler, "ab", buffering=0) as out:
        while out.tell() < target:
            try:
                out.write(b"\0" * min(MIB, target - out.tell()))
                out.flush()
            except OSError:
                break


def fill_all(folder: Path) -> None:
    fill_to(folder, 0)
    with open(folder / "filler", "ab", buffering=0) as out:  # tmpfs rounds to pages: take the last bytes too
        try:
            while True:
                out.write(b"\0" * 4096)
                out.flush()
        except OSError:
            pass


def multipart(fields: dict[str, Any], media: bytes | None) -> tuple[bytes, str]:
    boundary = "maeul-disk-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="petition"; filename="petition.json"\r\n'
        f"Content-Type: application/json\r\n\r\n".encode()
        + json.dumps(fields).encode()
        + b"\r\n"
    ]
    if media is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="media"; filename="message.webm"\r\n'
            f"Content-Type: audio/webm\r\n\r\n".encode()
            + media
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Kiosk:
    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {server.seeded.kiosk_token}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
            http.request(method, self.server.base_url + path, **kwargs) as response,
        ):
            raw = await response.read()
            body = json.loads(raw) if response.content_type == "application/json" else raw.decode()[:300]
            return {"status": response.status, "body": body}

    async def file(self, media: bytes | None = None) -> dict[str, Any]:
        body, content_type = multipart(BASIC, media)
        headers = {**self.headers, "Content-Type": content_type}
        return await self.call("POST", "/api/v1/kiosk/petitions", data=body, headers=headers)

    async def status(self, receipt_no: str, pin: str) -> dict[str, Any]:
        return await self.call(
            "POST",
            "/api/v1/kiosk/petitions/status",
            json={"receipt_no": receipt_no, "pin": pin},
            headers=self.headers,
        )

    async def concurrent_uploads(self, media: bytes) -> list[dict[str, Any]]:
        """Two media filings of the same size at once: the first has sent half its body (so its
        room is reserved and its bytes are being written) when the second arrives."""
        body, content_type = multipart(BASIC, media)
        first_half_sent, second_done = asyncio.Event(), asyncio.Event()

        async def slow_body() -> Any:
            yield body[: len(body) // 2]
            first_half_sent.set()
            await second_done.wait()
            yield body[len(body) // 2 :]

        headers = {**self.headers, "Content-Type": content_type, "Content-Length": str(len(body))}
        first = asyncio.ensure_future(
            self.call("POST", "/api/v1/kiosk/petitions", data=slow_body(), headers=headers)
        )
        await first_half_sent.wait()
        await asyncio.sleep(0.5)  # the server has the first request's headers and half its body
        second = await self.file(media)
        second_done.set()
        return [await first, second]


def set_up(workdir: Path) -> tuple[LiveServer, Path]:
    """A server migrated and seeded on the real disk, its database then moved onto the tmpfs."""
    server = prepare(workdir)
    small = workdir / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs", str(small)], check=True)
    shutil.copy(server.data_dir / "maeul.db", small / "maeul.db")
    server.env.update(
        MAEUL_DATA_DIR=str(small),
        MAEUL_DATABASE_URL=f"sqlite+aiosqlite:///{small / 'maeul.db'}",
        MAEUL_MIN_FREE_MB=str(MIN_FREE_MB),
        MAEUL_KIOSK_FILINGS_PER_HOUR="1000",
        MAEUL_LOG_LEVEL="INFO",
    )
    return server, small


async def exercise(server: LiveServer, small: Path, clip: bytes) -> dict[str, Any]:
    noise = os.urandom(6 * MIB)
    kiosk, seen = Kiosk(server), {}
    await asyncio.to_thread(server.start)
    seen["media_with_room"] = await kiosk.file(clip)

    fill_to(small, (MIN_FREE_MB - 4) * MIB)
    seen["readyz_low"] = await kiosk.call("GET", "/readyz")
    seen["media_low"] = await kiosk.file(clip)
    seen["text_low"] = text = await kiosk.file()
    petition = text["body"]["petition"] if text["status"] == 201 else {"receipt_no": "none"}
    seen["pin_low"] = await kiosk.status(petition["receipt_no"], text["body"].get("pin", "0000"))
    seen["login_low"] = await kiosk.call(
        "POST", "/api/v1/session", json={"username": "official", "password": PASSWORD}
    )

    fill_to(small, MIN_FREE_MB * MIB + len(noise) * 3 // 2)  # room for one noise upload, not two
    seen["concurrent"] = await kiosk.concurrent_uploads(noise)

    fill_all(small)
    seen["free_when_full"] = _free(small)
    seen["text_full"] = await kiosk.file()
    seen["readyz_full"] = await kiosk.call("GET", "/readyz")

    await asyncio.to_thread(server.stop)  # without the guard an upload meets the full disk itself
    server.env["MAEUL_MIN_FREE_MB"] = "0"
    fill_to(small, 3 * MIB)
    await asyncio.to_thread(server.start)
    seen["media_enospc"] = await kiosk.file(noise)
    seen["temp_files_left"] = sorted(p.name for p in (small / "media" / "tmp").glob("*"))

    await asyncio.to_thread(server.stop)
    server.env["MAEUL_MIN_FREE_MB"] = str(MIN_FREE_MB)
    (small / "filler").unlink()
    await asyncio.to_thread(server.start)
    seen["media_after"] = await kiosk.file(clip)
    seen["text_after"] = await kiosk.file()
    seen["readyz_after"] = await kiosk.call("GET", "/readyz")
    return seen


def main(workdir: Path) -> dict[str, Any]:
    server, small = set_up(workdir)
    clip = write_voice_clip(workdir / "voice.webm", 30.0).read_bytes()
    try:
        seen = asyncio.run(exercise(server, small, clip))
    finally:
        server.stop()
        subprocess.run(["umount", str(small)], check=False)
    log = (server.data_dir / "server.log").read_text()
    seen["log_500s"] = log.count("status=500")
    seen["log_internal_errors"] = log.count("internal_error") + log.count("unhandled error")
    seen["log"] = log[-20000:]
    return seen


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), ensure_ascii=False))
