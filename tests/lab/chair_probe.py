"""The county end of the lab: the meeting's chair (an official) as a real aiortc participant,
through the real login API and socket.io signaling, publishing a bursting tone and the test
pattern and noting what it decodes per publisher. Run inside the county namespace:

    LAB_PASSWORD=P python -m tests.lab.chair_probe --server URL --username official --room R \
        --host-address 198.18.0.1 --out F

Prints a JSON status line every 0.5 s (with the participant list as the chair sees it); on
SIGTERM writes everything it saw to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

import aiohttp
import socketio
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from kiosk.media import TestPatternVideo
from rtc.aiortc_internals import gather_on
from rtc.tuning import WeakLinkTuning, opus_bitrate_from_answer, tune_peer_connection
from tests.lab.media_probe import BurstAudio, ProbeLog


class Chair:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.log = ProbeLog("chair")
        self.slots: dict[str, str | None] = {}  # mid -> publisher id
        self.participants: list[dict[str, Any]] = []
        self.pc_state = "none"
        self.pid: str | None = None
        self.microphone = BurstAudio()
        self.sock = socketio.AsyncClient(reconnection=False)
        self.pc: RTCPeerConnection | None = None
        self.tasks: list[asyncio.Task[None]] = []
        # In production the chair is a browser, whose sender follows REMB down to ~30 kbit/s,
        # throttles keyframes and bounds retransmissions; stock aiortc does none of that (VP8
        # floor 250 kbit/s), so the chair gets the kiosk's weak-link tuning to stand in for it.
        self.tuning = WeakLinkTuning()

    async def login(self) -> str:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            response = await http.post(
                f"{self.args.server}/api/v1/session",
                json={"username": self.args.username, "password": os.environ["LAB_PASSWORD"]},
            )
            if response.status != 201:
                raise SystemExit(f"login refused: {response.status}")
            return str(response.cookies["maeul_session"].value)

    async def join(self) -> None:
        cookie = await self.login()
        self.sock.on("slot", self._slot)
        self.sock.on("participants", self._participants)
        self.sock.on("disconnect", lambda *a: self.log.event("socket_disconnect"))
        for name in ("left", "room_closed", "error"):
            self.sock.on(name, self._recorder(name))
        await self.sock.connect(
            self.args.server,
            headers={"Cookie": f"maeul_session={cookie}"},
            transports=["websocket"],
            wait_timeout=15,
        )
        ack = await self.sock.call("join", {"room_id": self.args.room}, timeout=15)
        if "error" in ack:
            raise SystemExit(f"join refused: {ack['error']}")
        self.pid = ack["participant_id"]
        self.log.event("join", {"participant_id": self.pid})
        if "participants" in ack:
            await self._participants({"participants": ack["participants"]})
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in ack.get("ice_servers", [])
        ]
        # Always our own configuration: aiortc adds a public STUN server when given none.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.pc = pc
        plan = ack.get("slot_plan", {"audio": 3, "video": 2})
        pc.addTransceiver(self.microphone, direction="sendonly")
        for _ in range(int(plan.get("audio", 3))):
            pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver(TestPatternVideo(), direction="sendonly")
        for _ in range(int(plan.get("video", 2))):
            pc.addTransceiver("video", direction="recvonly")
        tune_peer_connection(pc, self.tuning)

        @pc.on("connectionstatechange")
        def _state() -> None:
            self.pc_state = pc.connectionState
            self.log.event("pc_state", {"state": pc.connectionState})

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None) or "?"
            self.tasks.append(asyncio.create_task(self._consume(mid, track)))

        offer = await pc.createOffer()
        gather_on(pc, self.args.host_address)
        await pc.setLocalDescription(offer)
        answer = await self.sock.call("offer", {"sdp": pc.localDescription.sdp, "type": "offer"}, timeout=15)
        if "error" in answer:
            raise SystemExit(f"offer refused: {answer['error']}")
        asked = opus_bitrate_from_answer(answer["sdp"])
        if asked is not None:
            self.tuning.opus_bitrate = min(asked, self.tuning.opus_bitrate)
        for mid, publisher in answer.get("slots", {}).items():
            self.slots[mid] = publisher
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def _consume(self, mid: str, track: MediaStreamTrack) -> None:
        # Frames are filed under the publisher the slot carries *now*: slots move between publishers.
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.log.track(f"{self.slots.get(mid) or '-'}/{track.kind}", track.kind).add(frame)

    async def _slot(self, data: dict[str, Any]) -> None:
        self.slots[data["mid"]] = data["publisher_id"]
        self.log.event("slot", data)

    async def _participants(self, data: dict[str, Any]) -> None:
        self.participants = [
            {"id": p["id"], "state": p.get("state"), "kind": p.get("kind"), "link": p.get("link")}
            for p in data["participants"]
        ]
        self.log.event("participants", self.participants)

    def _recorder(self, name: str) -> Any:
        async def record(data: Any = None) -> None:
            self.log.event(name, data)

        return record

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.pc is not None:
            await self.pc.close()
        if self.sock.connected:
            with contextlib.suppress(Exception):
                await self.sock.call("leave", {}, timeout=5)
            await self.sock.disconnect()

    def video_target(self) -> int | None:
        """The bitrate the chair's VP8 encoder is at now (follows the SFU's REMB)."""
        for t in self.pc.getTransceivers() if self.pc is not None else []:
            encoder = getattr(t.sender, "_RTCRtpSender__encoder", None)
            if t.kind == "video" and encoder is not None:
                return int(encoder.target_bitrate)
        return None

    def dump(self) -> None:
        self.log.event("tuning", dict(self.tuning.stats))
        self.log.bursts_sent = list(self.microphone.bursts_sent)
        self.log.dump(self.args.out)


async def main(args: argparse.Namespace) -> int:
    chair = Chair(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await chair.join()
    while not stop.is_set():
        print(
            chair.log.status(
                pid=chair.pid,
                pc=chair.pc_state,
                participants=chair.participants,
                tuning=chair.tuning.stats,
                video_target=chair.video_target(),
            ),
            flush=True,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    chair.dump()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(chair.close(), 15)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--room", type=int, required=True)
    parser.add_argument("--host-address", action="append", required=True)
    parser.add_argument("--out", required=True)
    sys.exit(asyncio.run(main(parser.parse_args())))
