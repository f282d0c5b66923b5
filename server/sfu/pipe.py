"""A pipe between two SFUs: one room's publishers sent once, as plain RTP over one UDP socket,
to another SFU that shows them to its own subscribers (the media half of the cascade, issue 17
item 4; mediasoup's PipeTransport / ``pipeToRouter``, Jitsi's Octo).

Each end of a pipe is a :class:`Pipe`: one UDP socket bound on an internal address, connected
to exactly one peer address (the other end's socket). A pipe is symmetric: either end may send
publishers (:meth:`Pipe.send_publisher`), and each end shows what the other sends as publishers
of its own room. On the wire (all in one socket, told apart by the first octet, RFC 7983 style):

* **RTP** (first octet 128..191, second octet not 192..223): every packet an
  :class:`~.relay.InboundStream` accepts from the publisher (every simulcast layer, audio and
  video, decrypted, before any subscriber's rewriting; :attr:`InboundStream.relays`), with the
  publisher's own sequence number, timestamp and marker, but a **pipe SSRC** chosen per track
  (per layer) by the sending end, payload type :data:`PIPE_OPUS_PT` / :data:`PIPE_VP8_PT`, and
  two header extensions with fixed ids: :data:`EXT_AUDIO_LEVEL` (RFC 6464, so the receiving
  SFU's loudest-speaker choice hears the publisher) and :data:`EXT_RID` (the layer's rid, RFC
  8852, as a browser's simulcast would send it: the receiving end's
  :class:`~.simulcast_inbound.SimulcastInbound` tells layers apart as it does for a browser).
* **RTCP** (second octet 192..223, RFC 5761): what the receiving end's streams send "to the
  publisher": PLI and NACK, which the sending end maps back by pipe SSRC (a PLI asks the real
  publisher for a keyframe of that layer, throttled as ever; a NACK is answered from the
  sending end's packet cache of that layer; what is not there the sending end has already
  NACKed of the publisher itself, and the retransmission then crosses like any packet), and
  REMB (the far end's subscribers' estimate, a cap on a single-layer publisher as a local
  subscriber's is). Receiver reports are read and left alone.
* **Announcements** (first octet ``{``): a JSON object, every :data:`ANNOUNCE_INTERVAL_S`, and
  within :data:`CHECK_INTERVAL_S` when what is sent or wanted changes: ``{"type": "announce",
  "v": 1, "room": ..., "publishers": {id: {"audio": ssrc | null, "video": [ssrc per layer,
  lowest first], "rids": [...]}}, "wants": {id: [layers]}}``. An end that gets RTP of an SSRC
  no announcement named adds ``"resend": true`` to its own, and the peer announces again at
  once: an announcement lost on the way (or sent before this end was connected) costs a round
  trip, not :data:`ANNOUNCE_INTERVAL_S`.
  It names the pipe SSRCs of each publisher's tracks, and it is the pipe's keepalive: an end
  that hears nothing from its peer for ``timeout`` seconds closes, and the publishers it
  received leave its room as a publisher leaving would. ``{"type": "bye"}`` closes at once.

On the receiving end each announced publisher is admitted to the room
(:meth:`~.room.Room.admit_piped`) with streams started with no transport, whose RTCP goes back
into the pipe (:attr:`InboundStream.rtcp_sink`): to the room it is an ordinary publisher, so
slots, layer choice, keyframe waits, NACKs from its own subscribers (answered from its own
cache) and the three loudest voices apply unchanged.

Plain RTP, not SRTP: both ends are SFUs of one deployment on loopback or the internal network
(peer addresses must be loopback or private; :func:`check_internal_address`), and the media was
decrypted at the edge anyway. On a network that others share this would need SRTP with keys
handed over by the control plane (no DTLS: both ends are ours), as Octo and mediasoup's
``enableSrtp`` do.

Bad input: a datagram from any address but the peer's is dropped and counted
(``stray_datagrams``); a datagram from the peer that does not parse, or an announcement that
does not validate, is dropped and counted (``malformed``); nothing here raises into the loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
    RTCRtpReceiveParameters,
)

from rtc import aiortc_internals as ai

from .config import SfuConfig
from .errors import AlreadyJoined, InvalidRequest, SfuError
from .relay import InboundStream, Kind
from .simulcast import MAX_LAYERS, RID_URI, SimulcastOffer
from .simulcast_inbound import SimulcastInbound

if TYPE_CHECKING:
    from .participant import Participant
    from .room import Room

logger = logging.getLogger(__name__)

#: Payload types on the pipe (each end maps to its subscribers' own, as for any publisher).
PIPE_OPUS_PT = 111
PIPE_VP8_PT = 96
#: Header extension ids on the pipe.
EXT_AUDIO_LEVEL = 1
EXT_RID = 2
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
#: How often each end announces what it sends (also the keepalive), seconds.
ANNOUNCE_INTERVAL_S = 1.0
#: How often an end looks for a change to announce at once (what it sends, what it wants).
CHECK_INTERVAL_S = 0.25
#: An end that hears nothing from its peer for this long closes (seconds).
DEFAULT_TIMEOUT_S = 5.0
#: Datagrams waiting for the pipe's reader; more are dropped and counted.
MAX_QUEUE = 4096
#: Publishers one announcement may name, and the longest announcement read.
#: (one datagram: a county briefing's 300 halls with short ids fit; more, or long ids, would
#: need the announcement split over several datagrams, not built)
MAX_PUBLISHERS = 400
MAX_ANNOUNCEMENT_BYTES = 65_000

_RTCP_PSFB = 206
_RTCP_RTPFB = 205
_FMT_PLI = 1
_FMT_FIR = 4
_FMT_APP = 15  # (REMB)
_FMT_NACK = 1


def _extensions() -> list[RTCRtpHeaderExtensionParameters]:
    return [
        RTCRtpHeaderExtensionParameters(id=EXT_AUDIO_LEVEL, uri=AUDIO_LEVEL_URI),
        RTCRtpHeaderExtensionParameters(id=EXT_RID, uri=RID_URI),
    ]


def _codec(kind: Kind) -> RTCRtpCodecParameters:
    if kind == "audio":
        return RTCRtpCodecParameters(
            mimeType="audio/opus", clockRate=48000, channels=2, payloadType=PIPE_OPUS_PT
        )
    return RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=PIPE_VP8_PT)


def check_internal_address(host: object, port: object) -> tuple[str, int]:
    """``(host, port)`` of a pipe end, or InvalidRequest: an IP literal (no name lookup) on
    loopback or a private network, since the pipe carries plain RTP."""
    if not isinstance(host, str) or not isinstance(port, int) or isinstance(port, bool):
        raise InvalidRequest("a pipe address is (ip, port)")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError as exc:
        raise InvalidRequest(f"a pipe address must be an IP literal, not {host!r}") from exc
    if not (ip.is_loopback or ip.is_private) or ip.is_unspecified:
        raise InvalidRequest(f"a pipe carries plain RTP: {host} is not a loopback or internal address")
    if not 1 <= port <= 65535:
        raise InvalidRequest(f"bad pipe port {port}")
    return str(ip), port


@dataclass(frozen=True)
class Announced:
    """One publisher as an announcement names it."""

    audio: int | None
    video: tuple[int, ...]
    rids: tuple[str, ...]


@dataclass(frozen=True)
class Announcement:
    """What one end sends (``publishers``) and which video layers its subscribers take of
    what it receives (``wants``: publisher id -> layers, 0 for a single-layer track)."""

    publishers: dict[str, Announced]
    wants: dict[str, frozenset[int]]
    #: The sender got RTP of an SSRC it has no announcement for, and asks for ours at once.
    resend: bool = False


def parse_announcement(data: bytes, room_id: str) -> Announcement | None:
    """The announcement (None: a bye), or ValueError when it is not a valid announcement for
    ``room_id``."""
    if len(data) > MAX_ANNOUNCEMENT_BYTES:
        raise ValueError("announcement too long")
    msg = json.loads(data.decode("utf-8"))
    if not isinstance(msg, dict):
        raise ValueError("not an object")
    if msg.get("type") == "bye":
        return None
    if msg.get("type") != "announce" or msg.get("v") != 1:
        raise ValueError("unknown message type or version")
    if msg.get("room") != room_id:
        raise ValueError(f"announcement for room {msg.get('room')!r}, not {room_id!r}")
    publishers = msg.get("publishers")
    if not isinstance(publishers, dict) or len(publishers) > MAX_PUBLISHERS:
        raise ValueError("publishers must be an object")
    result: dict[str, Announced] = {}
    seen: set[int] = set()
    for pid, entry in publishers.items():
        if not pid or len(pid) > 200 or not isinstance(entry, dict):
            raise ValueError("bad publisher entry")
        audio, video, rids = entry.get("audio"), entry.get("video", []), entry.get("rids", [])
        if audio is not None and not _is_ssrc(audio):
            raise ValueError("bad audio ssrc")
        if not isinstance(video, list) or len(video) > MAX_LAYERS or not all(_is_ssrc(s) for s in video):
            raise ValueError("bad video ssrcs")
        if not isinstance(rids, list) or not all(
            isinstance(r, str) and 0 < len(r) <= 16 and r.isascii() and r.isalnum() for r in rids
        ):
            raise ValueError("bad rids")
        if rids and (len(rids) != len(video) or len(set(rids)) != len(rids)):
            raise ValueError("one rid per video layer")
        if not rids and len(video) > 1:
            raise ValueError("several video ssrcs without rids")
        ssrcs = ([audio] if audio is not None else []) + video
        if seen & set(ssrcs) or len(set(ssrcs)) != len(ssrcs):
            raise ValueError("an ssrc named twice")
        seen.update(ssrcs)
        result[pid] = Announced(audio, tuple(video), tuple(rids))
    wants = msg.get("wants", {})
    if not isinstance(wants, dict) or len(wants) > MAX_PUBLISHERS:
        raise ValueError("wants must be an object")
    for layers in wants.values():
        if not isinstance(layers, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < MAX_LAYERS for i in layers
        ):
            raise ValueError("bad wanted layers")
    resend = msg.get("resend", False)
    if not isinstance(resend, bool):
        raise ValueError("resend must be true or false")
    return Announcement(result, {pid: frozenset(layers) for pid, layers in wants.items()}, resend)


def _is_ssrc(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 0xFFFFFFFF


def parse_feedback(data: bytes) -> tuple[list[int], dict[int, list[int]], dict[int, int]]:
    """From a compound RTCP packet: the media SSRCs asked for a keyframe (PLI, FIR), per media
    SSRC the sequence numbers NACKed, and per media SSRC the REMB (bit/s). Other packets are
    skipped; ValueError when the compound does not parse."""
    keyframes: list[int] = []
    nacks: dict[int, list[int]] = {}
    rembs: dict[int, int] = {}
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise ValueError("truncated RTCP header")
        first, pt, length = struct.unpack_from("!BBH", data, pos)
        end = pos + 4 * (length + 1)
        if first >> 6 != 2 or end > len(data):
            raise ValueError("bad RTCP packet")
        fmt = first & 0x1F
        body = data[pos + 4 : end]
        if pt == _RTCP_PSFB and fmt == _FMT_PLI and len(body) >= 8:
            keyframes.append(struct.unpack_from("!L", body, 4)[0])
        elif pt == _RTCP_PSFB and fmt == _FMT_FIR and len(body) >= 16:
            for at in range(8, len(body) - 7, 8):
                keyframes.append(struct.unpack_from("!L", body, at)[0])
        elif pt == _RTCP_PSFB and fmt == _FMT_APP and body[8:12] == b"REMB":
            bitrate, ssrcs = ai.unpack_remb_fci(body[8:])
            rembs.update(dict.fromkeys(ssrcs, bitrate))
        elif pt == _RTCP_RTPFB and fmt == _FMT_NACK and len(body) >= 12:
            lost = nacks.setdefault(struct.unpack_from("!L", body, 4)[0], [])
            for at in range(8, len(body) - 3, 4):
                pid, blp = struct.unpack_from("!HH", body, at)
                lost.append(pid)
                lost.extend((pid + i + 1) & 0xFFFF for i in range(16) if blp >> i & 1)
        pos = end
    return keyframes, nacks, rembs


@dataclass(frozen=True)
class PipeStats:
    pipe_id: str
    room_id: str
    local: tuple[str, int] | None
    peer: tuple[str, int] | None
    #: Publishers this end sends, and those it receives (admitted to its room).
    sending: tuple[str, ...]
    receiving: tuple[str, ...]
    packets_sent: int
    bytes_sent: int
    packets_received: int
    #: Packets resent from the cache for the peer's NACKs, and NACKed ones no longer there.
    retransmitted: int
    nack_misses: int
    #: Keyframe requests (PLI/FIR) the peer sent for our publishers.
    keyframe_requests: int
    #: Dropped: from an address that is not the peer's; from the peer but not parsing (or
    #: an invalid announcement); RTP of an SSRC no announcement named (yet); queue full.
    stray_datagrams: int
    malformed: int
    unknown_ssrc: int
    overflow: int
    #: Announced publishers whose id is already in this room (a local participant).
    refused_publishers: int
    closed: str | None


class _Outgoing:
    """One stream (a track, or one simulcast layer) this end sends: the relay on it."""

    __slots__ = ("pipe", "stream", "ssrc", "pt", "rid")

    def __init__(self, pipe: Pipe, stream: InboundStream, ssrc: int, rid: str | None) -> None:
        self.pipe = pipe
        self.stream = stream
        self.ssrc = ssrc
        self.pt = PIPE_OPUS_PT if stream.kind == "audio" else PIPE_VP8_PT
        self.rid = rid

    def __call__(self, stream: InboundStream, packet: ai.RtpPacket) -> None:
        self.pipe._send_rtp(self, packet)


class _OutPublisher:
    """A publisher this end sends: the streams it relays (rebuilt when the publisher's tracks
    change, e.g. it published after the pipe was asked for it)."""

    def __init__(self) -> None:
        self.sources: tuple[InboundStream, ...] = ()
        self.outgoing: list[_Outgoing] = []

    def announced(self) -> dict[str, Any]:
        audio = next((o.ssrc for o in self.outgoing if o.stream.kind == "audio"), None)
        video = [o for o in self.outgoing if o.stream.kind == "video"]
        return {
            "audio": audio,
            "video": [o.ssrc for o in video],
            "rids": [o.rid for o in video if o.rid is not None],
        }


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.pipe._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # (ICMP port unreachable while the peer is not up yet: the timeout decides)
        logger.debug("pipe %s: %s", self.pipe.id, exc)


class Pipe:
    """One end of a pipe between two SFUs for one room; see the module doc. Made by
    :meth:`~.sfu.Sfu.open_pipe`."""

    def __init__(
        self,
        room: Room,
        pipe_id: str,
        config: SfuConfig,
        timeout: float = DEFAULT_TIMEOUT_S,
        on_closed: Callable[[Pipe], None] = lambda pipe: None,
    ) -> None:
        self.id = pipe_id
        self.room = room
        self._config = config
        self._timeout = timeout
        self._on_closed = on_closed
        self._transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] | None = None
        self.peer: tuple[str, int] | None = None
        self._queue: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue(MAX_QUEUE)
        self._tasks: list[asyncio.Task[None]] = []
        self._last_heard = 0.0
        #: RTCP sender SSRC of the streams this end receives.
        self._rtcp_ssrc = random.randint(1, 0xFFFFFFFF)
        # sending
        self._wanted: set[str] = set()
        self._out: dict[str, _OutPublisher] = {}
        self._out_by_ssrc: dict[int, _Outgoing] = {}
        self._ext_map = ai.HeaderExtensionsMap()
        self._ext_map.configure(RTCRtpParameters(headerExtensions=_extensions()))
        self._announced_out: tuple[dict[str, Any], dict[str, list[int]]] | None = None
        # receiving
        #: When this end last asked the peer to announce again (RTP of an unknown SSRC).
        self._asked_at = 0.0
        self._in: dict[str, Announced] = {}
        #: ... and the room's participant each became (to tell it from one that took its id since)
        self._in_participants: dict[str, Participant] = {}
        self._in_by_ssrc: dict[int, InboundStream] = {}
        self.closed: str | None = None
        # counters
        self.packets_sent = 0
        self.bytes_sent = 0
        self.packets_received = 0
        self.retransmitted = 0
        self.nack_misses = 0
        self.keyframe_requests = 0
        self.stray_datagrams = 0
        self.malformed = 0
        self.unknown_ssrc = 0
        self.overflow = 0
        self.refused_publishers = 0

    # -- lifecycle -----------------------------------------------------------------------------
    async def open(self, host: str, port: int = 0) -> tuple[str, int]:
        """Bind the pipe's socket; returns its address, for the other end's :meth:`connect`."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=(host, port))
        self._transport = transport
        sockname = transport.get_extra_info("sockname")
        self.local = (str(sockname[0]), int(sockname[1]))
        self._tasks.append(loop.create_task(self._read(), name=f"sfu-pipe-read-{self.id}"))
        return self.local

    def connect(self, peer: tuple[str, int]) -> None:
        """Take datagrams from ``peer`` only, send there, and start announcing."""
        if self.peer is not None:
            raise InvalidRequest(f"pipe {self.id!r} is already connected to {self.peer}")
        self.peer = check_internal_address(*peer)
        self._last_heard = time.monotonic()
        self._tasks.append(
            asyncio.get_running_loop().create_task(self._run(), name=f"sfu-pipe-tick-{self.id}")
        )

    def send_publisher(self, publisher_id: str) -> None:
        """Send ``publisher_id``'s tracks through the pipe (from when it publishes, until it
        leaves this room or :meth:`stop_publisher`)."""
        if publisher_id not in self._wanted and len(self._wanted) >= MAX_PUBLISHERS:
            raise InvalidRequest(f"a pipe carries at most {MAX_PUBLISHERS} publishers")
        self._wanted.add(publisher_id)
        self._sync_out()

    def stop_publisher(self, publisher_id: str) -> None:
        self._wanted.discard(publisher_id)
        self._sync_out()

    def receives(self, publisher_id: str) -> bool:
        """``publisher_id`` in this room came through this pipe."""
        return publisher_id in self._in

    async def close(self, reason: str = "closed") -> None:
        """Stop sending, tell the peer, and remove the publishers received (as leaving)."""
        if self.closed is not None:
            return
        self.closed = reason
        if reason == "closed":
            self._send_control({"type": "bye"})
        for pid in list(self._out):
            self._detach(pid)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in self._tasks if t is not current), return_exceptions=True)
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for pid in list(self._in):
            await self._remove_in(pid, "left" if reason == "peer-closed" else f"pipe-{reason}")
        self._on_closed(self)

    def stats(self) -> PipeStats:
        return PipeStats(
            pipe_id=self.id,
            room_id=self.room.id,
            local=self.local,
            peer=self.peer,
            sending=tuple(sorted(pid for pid, out in self._out.items() if out.outgoing)),
            receiving=tuple(sorted(self._in)),
            packets_sent=self.packets_sent,
            bytes_sent=self.bytes_sent,
            packets_received=self.packets_received,
            retransmitted=self.retransmitted,
            nack_misses=self.nack_misses,
            keyframe_requests=self.keyframe_requests,
            stray_datagrams=self.stray_datagrams,
            malformed=self.malformed,
            unknown_ssrc=self.unknown_ssrc,
            overflow=self.overflow,
            refused_publishers=self.refused_publishers,
            closed=self.closed,
        )

    async def _run(self) -> None:
        announced_at = 0.0
        while True:
            try:
                now = time.monotonic()
                if self._sync_out(announce_anyway=now - announced_at >= ANNOUNCE_INTERVAL_S):
                    announced_at = now
            except Exception:
                logger.exception("pipe %s: announcing failed", self.id)
            if time.monotonic() - self._last_heard > self._timeout:
                logger.warning(
                    "pipe %s: nothing from %s for %.1f s; closing", self.id, self.peer, self._timeout
                )
                await self.close("timeout")
                return
            await asyncio.sleep(CHECK_INTERVAL_S)

    # -- sending ------------------------------------------------------------------------------
    def _sync_out(self, announce_anyway: bool = False, ask: bool = False) -> bool:
        """Relay the wanted publishers' current streams; announce on a change of what this end
        sends or wants (or when asked; ``ask``: the announcement asks the peer for its own at
        once). True if it announced."""
        if self.closed is not None:
            return False
        for pid in list(self._out):
            if pid not in self._wanted:
                self._detach(pid)
        for pid in self._wanted:
            p = self.room.participants.get(pid)
            sources = tuple(p.inbound.values()) if p is not None and not p.closed else ()
            out = self._out.get(pid)
            if out is not None and out.sources == sources:
                continue
            self._detach(pid)
            out = self._out[pid] = _OutPublisher()
            out.sources = sources
            for track in sources:
                layers = track.layers if isinstance(track, SimulcastInbound) else [track]
                rids = track.simulcast.rids if isinstance(track, SimulcastInbound) else None
                for i, stream in enumerate(layers):
                    outgoing = _Outgoing(self, stream, self._new_ssrc(), rids[i] if rids else None)
                    self._out_by_ssrc[outgoing.ssrc] = outgoing
                    stream.relays.append(outgoing)
                    out.outgoing.append(outgoing)
                if track.kind == "video":
                    # wanted there until the other end says otherwise (as a publisher starts
                    # with every layer sent), so nothing is paused before its first word
                    track.remote_layers[self.id] = frozenset(range(track.layer_count))
                track.request_keyframe()  # the other end's subscribers start at a keyframe
            self.room._update_demand()
        announcement = {pid: out.announced() for pid, out in self._out.items() if out.outgoing}
        wants = self._wants()
        if not announce_anyway and (announcement, wants) == self._announced_out:
            return False
        # (a subscriber here starting to watch a publisher whose camera was paused for want of
        # watchers is told to its SFU within CHECK_INTERVAL_S, not at the next keepalive)
        self._announced_out = (announcement, wants)
        message: dict[str, Any] = {"type": "announce", "v": 1, "room": self.room.id}
        message |= {"publishers": announcement, "wants": wants}
        self._send_control(message | {"resend": True} if ask else message)
        return True

    def _wants(self) -> dict[str, list[int]]:
        """The video layers this room's subscribers take of each publisher received."""
        wants: dict[str, list[int]] = {}
        for pid in self._in:
            p = self.room.participants.get(pid)
            video = p.inbound.get("video") if p is not None else None
            if isinstance(video, SimulcastInbound):
                wants[pid] = sorted(self.room.layers_wanted.get(pid, ())) if video.wanted else []
            elif video is not None:
                wants[pid] = [0] if video.wanted else []
        return wants

    def _detach(self, publisher_id: str) -> None:
        out = self._out.pop(publisher_id, None)
        if out is None:
            return
        for track in out.sources:
            track.remote_layers.pop(self.id, None)
            track.remote_remb.pop(self.id, None)
        if out.sources and not self.room.closed:
            self.room._update_demand()
        for outgoing in out.outgoing:
            self._out_by_ssrc.pop(outgoing.ssrc, None)
            if outgoing in outgoing.stream.relays:
                outgoing.stream.relays.remove(outgoing)

    def _new_ssrc(self) -> int:
        while True:
            ssrc = random.randint(1, 0xFFFFFFFF)
            if ssrc not in self._out_by_ssrc:
                return ssrc

    def _send_rtp(self, outgoing: _Outgoing, packet: ai.RtpPacket) -> None:
        out = ai.RtpPacket(
            payload_type=outgoing.pt,
            marker=packet.marker,
            sequence_number=packet.sequence_number,
            timestamp=packet.timestamp,
            ssrc=outgoing.ssrc,
            payload=packet.payload,
        )
        out.padding_size = packet.padding_size
        out.extensions.audio_level = packet.extensions.audio_level
        out.extensions.rtp_stream_id = outgoing.rid
        self._sendto(out.serialize(self._ext_map))

    def _send_control(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":")).encode()
        if len(data) > MAX_ANNOUNCEMENT_BYTES:
            # the peer would refuse it and time out: say why here
            logger.error("pipe %s: announcement of %d bytes is too long; not sent", self.id, len(data))
            return
        self._sendto(data)

    def _send_rtcp(self, data: bytes) -> None:
        self._sendto(data)

    def _sendto(self, data: bytes) -> None:
        if self._transport is None or self.peer is None or self._transport.is_closing():
            return
        self._transport.sendto(data, self.peer)
        self.packets_sent += 1
        self.bytes_sent += len(data)

    # -- receiving ----------------------------------------------------------------------------
    def _datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.peer is None or (addr[0], addr[1]) != self.peer:
            self.stray_datagrams += 1
            return
        self._last_heard = time.monotonic()
        try:
            self._queue.put_nowait((data, int(time.monotonic() * 1000)))
        except asyncio.QueueFull:
            self.overflow += 1

    async def _read(self) -> None:
        while self.closed is None:  # (a bye closes the pipe from inside this loop)
            data, arrival_ms = await self._queue.get()
            self.packets_received += 1
            try:
                await self._handle(data, arrival_ms)
            except (ValueError, KeyError, TypeError, UnicodeDecodeError, struct.error):
                self.malformed += 1
            except Exception:  # never let one datagram end the pipe
                self.malformed += 1
                logger.exception("pipe %s: a datagram failed", self.id)

    async def _handle(self, data: bytes, arrival_ms: int) -> None:
        if not data:
            raise ValueError("empty datagram")
        first = data[0]
        if first == 0x7B:  # "{"
            await self._on_announcement(parse_announcement(data, self.room.id))
        elif 128 <= first <= 191 and len(data) >= 2 and 192 <= data[1] <= 223:
            self._on_feedback(data)
        elif 128 <= first <= 191:
            packet = ai.RtpPacket.parse(data, self._ext_map)
            stream = self._in_by_ssrc.get(packet.ssrc)
            if stream is None:
                self.unknown_ssrc += 1
                self._ask_for_announcement()
                return
            await stream._handle_rtp_packet(packet, arrival_ms)
        else:
            raise ValueError("neither RTP, RTCP nor an announcement")

    def _ask_for_announcement(self) -> None:
        """RTP came that no announcement named: the one that names it was lost (UDP), most
        often because it was sent before this end connected (the two ends of a new pipe are
        connected by two requests at once). Ask for it again at once rather than drop a
        publisher's media until the peer's next periodic announcement; at most once every
        :data:`CHECK_INTERVAL_S`, so a stream of unknown packets costs a few datagrams."""
        now = time.monotonic()
        if now - self._asked_at < CHECK_INTERVAL_S:
            return
        self._asked_at = now
        self._sync_out(announce_anyway=True, ask=True)

    def _on_feedback(self, data: bytes) -> None:
        keyframes, nacks, rembs = parse_feedback(data)
        now = time.monotonic()
        for ssrc, bitrate in rembs.items():
            outgoing = self._out_by_ssrc.get(ssrc)
            if outgoing is not None:
                # the far end's subscribers' estimate: caps a single-layer publisher as a local
                # subscriber's would (a simulcast track takes no cap: relay/simulcast_inbound)
                outgoing.stream.track.remote_remb[self.id] = (bitrate, now)
        for ssrc in keyframes:
            outgoing = self._out_by_ssrc.get(ssrc)
            if outgoing is not None:
                self.keyframe_requests += 1
                outgoing.stream.request_keyframe()
                # a keyframe request is demand: a slot there starts (or resumes) this layer;
                # the next announcement's wants confirm or withdraw it
                track, layer = outgoing.stream.track, outgoing.stream.layer or 0
                wants = track.remote_layers.get(self.id, frozenset())
                if track.kind == "video" and layer not in wants:
                    track.remote_layers[self.id] = wants | {layer}
                    self.room._update_demand()
        for ssrc, lost in nacks.items():
            outgoing = self._out_by_ssrc.get(ssrc)
            if outgoing is None:
                continue
            for seq in lost:
                packet = outgoing.stream.cached(seq)
                if packet is None:
                    self.nack_misses += 1
                    continue
                self.retransmitted += 1
                self._send_rtp(outgoing, packet)

    async def _on_announcement(self, announcement: Announcement | None) -> None:
        if announcement is None:
            logger.info("pipe %s: the peer closed", self.id)
            await self.close("peer-closed")
            return
        for pid, out in self._out.items():
            video = next((t for t in out.sources if t.kind == "video"), None)
            wants = announcement.wants.get(pid)
            if video is not None and wants is not None and video.remote_layers.get(self.id) != wants:
                # (a publisher not named is not admitted there yet: it keeps the default)
                video.remote_layers[self.id] = wants
                self.room._update_demand()
        if announcement.resend:
            self._sync_out(announce_anyway=True)  # (never asks back: no ping-pong)
        publishers = announcement.publishers
        for pid, known in list(self._in.items()):
            # changed, or removed from the room by someone else (the announcement is the truth:
            # it comes back)
            if (
                publishers.get(pid) != known
                or self.room.participants.get(pid) is not self._in_participants[pid]
            ):
                await self._remove_in(pid, "left")
        for pid, announced in publishers.items():
            if pid not in self._in:
                await self._admit_in(pid, announced)

    async def _admit_in(self, publisher_id: str, announced: Announced) -> None:
        if publisher_id in self.room.participants:
            # a participant of this SFU with that id (or one another pipe brought): refused
            self.refused_publishers += 1
            return
        inbound: dict[Kind, InboundStream] = {}
        ssrcs: dict[int, InboundStream] = {}
        if announced.audio is not None:
            audio = self._new_stream("audio", publisher_id)
            inbound["audio"] = audio
            ssrcs[announced.audio] = audio
        if announced.rids:
            offer = SimulcastOffer(
                mid="pipe", rids=announced.rids, paused=frozenset(), rid_ext_id=EXT_RID, repaired_ext_id=None
            )
            track = SimulcastInbound(
                simulcast=offer,
                publisher_id=publisher_id,
                rtcp_ssrc=self._rtcp_ssrc,
                config=self._config,
                on_disconnect=_nothing,
            )
            for stream in [track, *track.layers]:
                stream.rtcp_sink = self._send_rtcp
            inbound["video"] = track
            ssrcs.update(dict.fromkeys(announced.video, track))
        elif announced.video:
            video = self._new_stream("video", publisher_id)
            inbound["video"] = video
            ssrcs[announced.video[0]] = video
        for kind, stream in inbound.items():
            await stream.start(
                None, RTCRtpReceiveParameters(codecs=[_codec(kind)], headerExtensions=_extensions())
            )
        try:
            participant = self.room.admit_piped(publisher_id, inbound)
        except (AlreadyJoined, SfuError):
            self.refused_publishers += 1
            for stream in inbound.values():
                await stream.stop()
            return
        self._in[publisher_id] = announced
        self._in_participants[publisher_id] = participant
        self._in_by_ssrc.update(ssrcs)
        logger.info("pipe %s: %s arrives from %s", self.id, publisher_id, self.peer)

    def _new_stream(self, kind: Kind, publisher_id: str) -> InboundStream:
        stream = InboundStream(
            kind=kind,
            publisher_id=publisher_id,
            rtcp_ssrc=self._rtcp_ssrc,
            config=self._config,
            on_disconnect=_nothing,
        )
        stream.rtcp_sink = self._send_rtcp
        return stream

    async def _remove_in(self, publisher_id: str, reason: str) -> None:
        announced = self._in.pop(publisher_id, None)
        participant = self._in_participants.pop(publisher_id, None)
        if announced is None:
            return
        for ssrc in ([announced.audio] if announced.audio is not None else []) + list(announced.video):
            self._in_by_ssrc.pop(ssrc, None)
        if (
            not self.room.closed
            and participant is not None
            and self.room.participants.get(publisher_id) is participant
        ):
            await self.room.remove(publisher_id, reason)


def _nothing() -> None:
    """A piped stream has no DTLS transport to report a disconnect: the pipe's timeout does."""
