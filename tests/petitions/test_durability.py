"""An acknowledged (201) petition and its recorded message survive a SIGKILL of the server."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.petitions.live import PASSWORD, LiveServer, prepare


async def _file(server: LiveServer, clip: bytes) -> tuple[int, Any]:
    form = aiohttp.FormData()
    fields = {"petition_type": "grievance", "phone": "010-2222-3333", "title": "정전 후에도 남아야 합니다"}
    form.add_field("petition", json.dumps(fields), content_type="application/json")
    form.add_field("media", io.BytesIO(clip), filename="m.webm", content_type="audio/webm")
    headers = {"Authorization": f"Bearer {server.seeded.kiosk_token}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.base_url + "/api/v1/kiosk/petitions", data=form, headers=headers
        ) as response:
            return response.status, await response.json()


async def _read_back(server: LiveServer, petition_id: int) -> tuple[Any, bytes]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            server.base_url + "/api/v1/session", json={"username": "admin", "password": PASSWORD}
        ) as response:
            assert response.status == 201, await response.text()
        async with http.get(f"{server.base_url}/api/v1/petitions/{petition_id}") as response:
            assert response.status == 200, await response.text()
            petition = (await response.json())["petition"]
        async with http.get(server.base_url + petition["media"][0]["url"]) as response:
            assert response.status == 200
            return petition, await response.read()


def test_acknowledged_petition_and_media_survive_sigkill(tmp_path: Path, voice_clip: bytes) -> None:
    server = prepare(tmp_path)
    server.start()
    try:
        status, body = asyncio.run(_file(server, voice_clip))
        server.kill()  # right after the 201: no graceful shutdown, no chance to flush anything
        assert status == 201, body
        server.start()
        petition, media = asyncio.run(_read_back(server, body["petition"]["id"]))
    finally:
        server.stop()
    assert petition["receipt_no"] == body["petition"]["receipt_no"]
    assert petition["title"] == "정전 후에도 남아야 합니다"
    assert media == voice_clip
    stored = [p for p in (server.media_dir / "petitions").rglob("*") if p.is_file()]
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in stored] == [
        hashlib.sha256(voice_clip).hexdigest()
    ]
    # No temporary upload is left behind either.
    assert not any((server.media_dir / "tmp").iterdir())
