"""Meeting participants for the signaling tests: a real ``socketio.AsyncClient`` talking to the
real app, plus (once it publishes) a real aiortc peer connection gathering on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio
from aiohttp.test_utils import TestClient
from aiortc import RTCSessionDescription

from rtc import aiortc_internals as ai
from tests.conftest import TEST_PASSWORD, World, login
from tests.sfu.sfu_testkit import LOOPBACK, Client, close_to, wait_until

__all__ = ["Admin", "Participant", "wait_until"]


def base_url(client: TestClient) -> str:
    return str(client.make_url("/")).rstrip("/")


class Admin:
    """The administrator, logged in through the real form, driving the rooms/kiosks API."""

    def __init__(self, client: TestClient, world: World) -> None:
        self.client = client
        self.world = world
        self.csrf = ""

    async def login(self) -> Admin:
        self.csrf = await login(self.client, "admin")
        return self

    async def post(self, path: str, body: dict[str, Any] | None = None, status: int = 200) -> dict[str, Any]:
        response = await self.client.post(path, json=body or {}, headers={"X-CSRF-Token": self.csrf})
        assert response.status == status, await response.text()
        return dict(await response.json())

    async def kiosk(self, label: str, village: int = 0) -> tuple[int, str]:
        """Create and enroll a kiosk; returns (kiosk id, device token)."""
        created = await self.post(
            "/api/v1/admin/kiosks",
            {"village_id": self.world.village_ids[village], "label": label},
            status=201,
        )
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
            response = await agent.post(
                self.client.make_url("/api/v1/kiosk/enroll"), json={"code": created["enrollment_code"]}
            )
            assert response.status == 201
            token = (await response.json())["token"]
        return int(created["kiosk"]["id"]), str(token)

    async def room(self, title: str, account_ids: list[int] = [], kiosk_ids: list[int] = []) -> int:  # noqa: B006
        body = await self.post(
            "/api/v1/admin/rooms",
            {"title": title, "account_ids": list(account_ids), "kiosk_ids": list(kiosk_ids)},
            status=201,
        )
        return int(body["room"]["id"])


async def session_cookie(client: TestClient, username: str) -> str:
    """Log an official in through the JSON API from a separate cookie-less agent."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        response = await agent.post(
            client.make_url("/api/v1/session"), json={"username": username, "password": TEST_PASSWORD}
        )
        assert response.status == 201, await response.text()
        return str(response.cookies["maeul_session"].value)


@dataclass
class Participant:
    """One meeting participant: socket + (optional) aiortc peer."""

    name: str
    client: TestClient
    token: str | None = None  # kiosk device token
    cookie: str | None = None  # official session cookie
    sock: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(reconnection=False))
    events: list[tuple[str, Any]] = field(default_factory=list)
    slots: dict[str, str | None] = field(default_factory=dict)  # mid -> publisher id (from `slot`)
    participants: list[dict[str, Any]] = field(default_factory=list)
    peer: Client | None = None
    pid: str | None = None
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self) -> Participant:
        for name in (
            "error",
            "participants",
            "active_speaker",
            "slot",
            "video_demand",
            "layers",
            "left",
            "room_closed",
            "recording",
            "lobby",
            "admitted",
            "removed",
            "replaced",
            "hands",
            "agenda",
            "chair_mute",
            "ask_unmute",
            "link_quality",
            "stills_wanted",
        ):
            self.sock.on(name, self._recorder(name))
        self.sock.on("disconnect", lambda *args: self.disconnected.set())
        headers = {"Cookie": f"maeul_session={self.cookie}"} if self.cookie else {}
        auth = {"token": self.token} if self.token else None
        await self.sock.connect(
            base_url(self.client), auth=auth, headers=headers, transports=["websocket"], wait_timeout=10
        )
        return self

    def _recorder(self, name: str) -> Any:
        async def record(data: Any = None) -> None:
            self.events.append((name, data))
            if name == "slot":
                self.slots[data["mid"]] = data["publisher_id"]
            elif name == "participants":
                self.participants = list(data["participants"])

        return record

    def got(self, event: str) -> list[Any]:
        """The payloads of every ``event`` received so far."""
        return [data for name, data in self.events if name == event]

    def errors(self) -> list[str]:
        return [data["code"] for name, data in self.events if name == "error"]

    async def call(self, event: str, data: Any = None) -> Any:
        return await self.sock.call(event, data, timeout=15)

    async def join(self, room_id: int) -> dict[str, Any]:
        ack = await self.call("join", {"room_id": room_id})
        assert "error" not in ack, ack
        self.pid = ack["participant_id"]
        return dict(ack)

    async def publish(
        self, luma: int, amplitude: int, video_slots: int = 2, audio_slots: int = 3
    ) -> dict[str, Any]:
        """Make one offer (send audio + video, N receive slots) through signaling; apply the answer."""
        self.peer = Client(
            self.name, luma=luma, amplitude=amplitude, video_slots=video_slots, audio_slots=audio_slots
        )
        offer = await self.peer.pc.createOffer()
        ai.gather_on(self.peer.pc, LOOPBACK)
        await self.peer.pc.setLocalDescription(offer)
        ack = await self.call("offer", {"sdp": self.peer.pc.localDescription.sdp, "type": "offer"})
        assert "error" not in ack, ack
        self.slots.update(ack["slots"])
        await self.peer.pc.setRemoteDescription(RTCSessionDescription(sdp=ack["sdp"], type="answer"))
        return dict(ack)

    def _slot(self, publisher: str, kind: str) -> str | None:
        assert self.peer is not None
        kinds = {t.mid: t.kind for t in self.peer.pc.getTransceivers()}
        return next(
            (mid for mid, pub in self.slots.items() if pub == publisher and kinds.get(mid) == kind), None
        )

    def video_frames(self, publisher: str) -> int:
        assert self.peer is not None
        return self.peer.log(self._slot(publisher, "video")).frames

    def audio_frames(self, publisher: str) -> int:
        assert self.peer is not None
        return self.peer.log(self._slot(publisher, "audio")).frames

    def sees(self, publisher: str, luma: int) -> bool:
        assert self.peer is not None
        log = self.peer.log(self._slot(publisher, "video"))
        return (
            log.frames >= 3 and log.size == (640, 360) and bool(log.lumas) and close_to(log.lumas[-1], luma)
        )

    def hears(self, publisher: str) -> bool:
        return self.audio_frames(publisher) >= 25

    async def close_peer(self) -> None:
        if self.peer is not None:
            await self.peer.close()
            self.peer = None

    async def close(self) -> None:
        await self.close_peer()
        if self.sock.connected:
            await self.sock.disconnect()


async def media_keeps_flowing(a: Participant, b: Participant, within: float = 15.0) -> None:
    """Both directions decode *new* video frames and audio from now on."""
    pa, pb = a.pid, b.pid
    assert pa and pb
    va, vb, aa, ab = a.video_frames(pb), b.video_frames(pa), a.audio_frames(pb), b.audio_frames(pa)
    await wait_until(
        lambda: (
            a.video_frames(pb) >= va + 5
            and b.video_frames(pa) >= vb + 5
            and a.audio_frames(pb) >= aa + 25
            and b.audio_frames(pa) >= ab + 25
        ),
        within,
        "media to keep flowing both ways",
    )
