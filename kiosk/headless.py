"""``python -m kiosk headless``: a kiosk media endpoint without a browser.

For halls with a camera and a speaker but no screen, and as the load generator for benchmarks
and tests (many kiosks in one process). It asks the server which open meetings its village is
invited to, joins one like the kiosk page would (socket.io ``join`` → one offer: send audio +
video, receive slots), plays what it receives into a sink, and comes back by itself when the
meeting ends, the link drops or the server restarts.

Weak links (issue #7): the peer connection is tuned by kiosk/rtc_tuning.py (small picture and
60-800 kbit/s VP8 following REMB, throttled keyframes, limited retransmissions, paced NACKs,
a time-bounded jitter buffer, Opus at the server's rate with FEC, tolerant ICE consent). After
a drop (link cut, socket or peer connection lost) it retries fast — 0.25 s, 0.5 s, then every
second — and rejoins with a *new* peer connection (aiortc has no ICE restart); the server lists
the hall as reconnecting meanwhile and the new join replaces the stale one.

A server that stops cleanly says ``server_restarting`` first: then there is nothing to resume (the
new process knows no participant), so the kiosk drops its peer connection at once and asks for
its meeting every ``RESTART_POLL_S`` until the server answers, to be back within a second or two
of it (a killed server sends nothing: the drop path above brings the kiosk back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)

from kiosk.speaker import SpeakerMixer
from rtc.aiortc_internals import gather_on
from rtc.tuning import WeakLinkTuning, opus_bitrate_from_answer, tune_peer_connection

log = logging.getLogger(__name__)

SourceFactory = Callable[[], tuple[MediaStreamTrack | None, MediaStreamTrack | None]]

#: While the server restarts: how often to ask whether it is back (a refused connect costs nothing).
RESTART_POLL_S = 0.25


@dataclass
class HeadlessStats:
    meetings_joined: int = 0
    #: Meetings left because the link/socket/peer connection dropped (not ended by the server).
    drops: int = 0
    #: Lost sockets after which the kiosk resumed its meeting on the same peer connection.
    resumes: int = 0
    frames_received: dict[str, int] = field(default_factory=dict)  # mid -> frames
    current_room: int | None = None


class HeadlessKiosk:
    def __init__(
        self,
        server_url: str,
        token: str,
        sources: SourceFactory,
        *,
        host_addresses: Sequence[str] = (),
        poll_interval: float = 5.0,
        max_backoff: float = 30.0,
        speaker: Callable[[], SpeakerMixer] | None = None,
        tuning: WeakLinkTuning | None = None,
        reconnect_backoff: tuple[float, ...] = (0.25, 0.5, 1.0),
        reconnect_window: float = 300.0,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.token = token
        self.sources = sources
        self.host_addresses = list(host_addresses)
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.speaker = speaker
        self.tuning = tuning or WeakLinkTuning()
        self.reconnect_backoff = reconnect_backoff
        self.reconnect_window = reconnect_window
        self.stats = HeadlessStats()
        self._server_restarting = False  # told so by the server; cleared by the next join

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        backoff = 1.0
        failures = 0
        dropped_at: float | None = None  # when we last fell out of a meeting by a drop
        # Short timeouts: a request sent into a cut link must fail fast so the retry that
        # follows the link's return comes within a couple of seconds.
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=8, connect=3), cookie_jar=aiohttp.DummyCookieJar()
        ) as http:
            while not stop.is_set():
                try:
                    rooms = await self._open_rooms(http)
                    if rooms:
                        dropped = await self._meeting(rooms[0]["id"], stop)
                        backoff, failures = 1.0, 0
                        if dropped:
                            dropped_at = loop.time()
                            self.stats.drops += 1
                            wait = RESTART_POLL_S if self._server_restarting else self.reconnect_backoff[0]
                        else:
                            continue
                    else:
                        wait, dropped_at = self.poll_interval, None
                except (
                    aiohttp.ClientError,
                    TimeoutError,
                    socketio.exceptions.SocketIOError,
                    MeetingEnded,
                    ConnectionError,
                ) as exc:
                    log.warning("kiosk offline or meeting dropped; retrying", extra={"error": str(exc)})
                    if isinstance(exc, MeetingEnded) and exc.args and exc.args[0] != "already_joined":
                        dropped_at = None  # refused by the server: no hurry
                    if self._server_restarting and dropped_at is not None:
                        wait = RESTART_POLL_S
                    elif dropped_at is not None and loop.time() - dropped_at < self.reconnect_window:
                        # Just lost a meeting: come back as soon as the link does.
                        wait = self.reconnect_backoff[min(failures, len(self.reconnect_backoff) - 1)]
                        failures += 1
                    else:
                        wait, backoff = backoff, min(backoff * 2, self.max_backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)

    async def _open_rooms(self, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
        async with http.get(
            f"{self.server_url}/api/v1/rooms/mine", headers={"Authorization": f"Bearer {self.token}"}
        ) as response:
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message="room list refused"
                )
            return list((await response.json())["rooms"])

    async def _meeting(self, room_id: int, stop: asyncio.Event) -> bool:
        """Join one meeting and stay until it ends, the link fails, or we are told to stop.
        Returns True if we fell out by a drop (socket or peer connection lost), False if
        the meeting ended, we were removed, or we were told to stop."""
        sock = self._socket()
        ended = asyncio.Event()
        closed_by_server = asyncio.Event()
        # Only signaling lost (a congested or cut link): the media connection is left alone and
        # the socket is brought back to resume it (the server keeps us meanwhile).
        socket_lost = asyncio.Event()

        def on_closed(data: object = None) -> None:
            closed_by_server.set()
            ended.set()

        # The server is stopping (SIGTERM): its successor will know nothing to resume.
        restarting = asyncio.Event()
        sock.on("server_restarting", lambda *args: restarting.set())
        sock.on("disconnect", lambda *args: socket_lost.set())
        sock.on("room_closed", on_closed)
        sock.on("left", on_closed)
        pc: RTCPeerConnection | None = None
        tasks: list[asyncio.Task[None]] = []
        mixer = self.speaker() if self.speaker is not None else None
        mixer_stop = asyncio.Event()
        if mixer is not None:
            tasks.append(asyncio.create_task(mixer.run(mixer_stop)))
        try:
            await sock.connect(
                _room_url(self.server_url, room_id),
                auth={"token": self.token},
                transports=["websocket"],
                wait_timeout=8,
            )
            ack = await sock.call("join", {"room_id": room_id}, timeout=15)
            if "error" in ack:
                raise MeetingEnded(ack["error"]["code"])
            pc = self._peer(ack)
            peer = pc

            @peer.on("connectionstatechange")
            def _state() -> None:
                if peer.connectionState in ("failed", "closed"):
                    log.info(
                        "headless kiosk's media connection %s",
                        peer.connectionState,
                        extra={"room_id": room_id, "ice": peer.iceConnectionState},
                    )
                    ended.set()

            @peer.on("track")
            def _track(track: MediaStreamTrack) -> None:
                if mixer is not None and track.kind == "audio":
                    mixer.add(track)  # the voices go to the hall's loudspeaker
                else:
                    tasks.append(asyncio.create_task(self._consume(peer, track)))

            offer = await pc.createOffer()
            if ack.get("ice_transport_policy") != "relay":
                gather_on(pc, self.host_addresses)  # relay-only halls offer no host candidates
            await pc.setLocalDescription(offer)
            answer = await sock.call("offer", {"sdp": pc.localDescription.sdp, "type": "offer"}, timeout=15)
            if "error" in answer:
                raise MeetingEnded(answer["error"]["code"])
            # The server's Opus rate for this hall (its answer's maxaveragebitrate), if lower.
            asked = opus_bitrate_from_answer(answer["sdp"])
            if asked is not None:
                self.tuning.opus_bitrate = min(asked, WeakLinkTuning().opus_bitrate)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
            self.stats.meetings_joined += 1
            self.stats.current_room = room_id
            self._server_restarting = False
            log.info("headless kiosk joined", extra={"room_id": room_id})
            token = str(ack.get("resume_token") or "")
            while True:
                await _first_of(stop, ended, socket_lost)
                if stop.is_set() or ended.is_set():
                    break
                socket_lost.clear()
                if restarting.is_set():
                    self._server_restarting = True
                    ended.set()  # the media connection dies with the server: start over
                    break
                log.info("headless kiosk lost its socket; resuming", extra={"room_id": room_id})
                if not token or not await self._resume(sock, room_id, token, stop, ended):
                    ended.set()  # nothing to resume: start over with a new peer connection
                    break
            dropped = ended.is_set() and not closed_by_server.is_set() and not stop.is_set()
            if dropped:
                log.warning(
                    "headless kiosk dropped out of the meeting; rejoining", extra={"room_id": room_id}
                )
            return dropped
        finally:
            self.stats.current_room = None
            mixer_stop.set()
            for task in tasks[1:] if mixer is not None else tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if pc is not None:
                await pc.close()
            if sock.connected:
                with contextlib.suppress(Exception):
                    await sock.call("leave", {}, timeout=2)
                await sock.disconnect()

    def _socket(self) -> socketio.AsyncClient:
        # We reconnect ourselves (to resume, or to start over), never behind the meeting's back.
        return socketio.AsyncClient(reconnection=False)

    async def _resume(
        self,
        sock: socketio.AsyncClient,
        room_id: int,
        token: str,
        stop: asyncio.Event,
        ended: asyncio.Event,
    ) -> bool:
        """Bring the socket back and bind it to our participant again (its media connection is
        untouched); False if the server has nothing to resume or the link stays down too long."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_window
        attempt = 0
        while not (stop.is_set() or ended.is_set()) and loop.time() < deadline:
            try:
                if not sock.connected:
                    await sock.connect(
                        _room_url(self.server_url, room_id),
                        auth={"token": self.token},
                        transports=["websocket"],
                        wait_timeout=8,
                    )
                ack = await sock.call("join", {"room_id": room_id, "resume": token}, timeout=8)
            except (socketio.exceptions.SocketIOError, TimeoutError, ConnectionError, aiohttp.ClientError):
                wait = self.reconnect_backoff[min(attempt, len(self.reconnect_backoff) - 1)]
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first_of(stop, ended), wait)
                continue
            if ack.get("resumed"):
                self.stats.resumes += 1
                log.info("headless kiosk resumed its meeting", extra={"room_id": room_id})
                return True
            if "error" in ack:
                why = str(ack["error"].get("code"))
            else:
                why = "the server no longer held its media"
                with contextlib.suppress(Exception):
                    await sock.call("leave", {}, timeout=2)  # it joined us anew: undo, start over
            break
        else:
            why = "told to stop" if stop.is_set() or ended.is_set() else "the link stayed down"
        # Why the meeting is made again with a new peer connection (the hall's media stops for a
        # few seconds): the county's IT reads this in the kiosk's journal.
        log.warning("headless kiosk could not resume its meeting: %s", why, extra={"room_id": room_id})
        return False

    def _peer(self, ack: dict[str, Any]) -> RTCPeerConnection:
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in ack.get("ice_servers", [])
        ]
        # Our own configuration always: aiortc adds a public STUN server when given none. A county
        # whose halls may only reach its TURN server sets the relay policy (MAEUL_ICE_TRANSPORT_POLICY).
        relay = ack.get("ice_transport_policy") == "relay"
        policy = RTCIceTransportPolicy.RELAY if relay else RTCIceTransportPolicy.ALL
        config = RTCConfiguration(
            iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE, iceTransportPolicy=policy
        )
        pc = RTCPeerConnection(config)
        audio, video = self.sources()
        plan = ack.get("slot_plan", {"audio": 3, "video": 2})
        if audio is not None:
            pc.addTransceiver(audio, direction="sendonly")
        for _ in range(int(plan.get("audio", 3))):
            pc.addTransceiver("audio", direction="recvonly")
        if video is not None:
            pc.addTransceiver(video, direction="sendonly")
        for _ in range(int(plan.get("video", 2))):
            pc.addTransceiver("video", direction="recvonly")
        tune_peer_connection(pc, self.tuning)
        return pc

    async def _consume(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        """Receive (decode) what the hall should hear; a speaker sink plugs in here."""
        mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None) or "?"
        with contextlib.suppress(Exception):
            while True:
                await track.recv()
                self.stats.frames_received[mid] = self.stats.frames_received.get(mid, 0) + 1


class MeetingEnded(Exception):
    """The server refused the join/offer or ended the meeting; try again later."""


def _room_url(server_url: str, room_id: int) -> str:
    """The socket's URL with the room in its query: nginx hashes ``room`` so every socket of one
    meeting reaches the web process that holds its participants (docs/scale.md), as the pages do."""
    return f"{server_url}?room={room_id}"


async def _first_of(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
