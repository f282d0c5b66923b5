"""Recording without re-encoding: one WebM file per participant, muxed from the
RTP the SFU already receives (see docs/sfu.md, "Recording").

How it fits in:

* A :class:`RecordingSession` belongs to one room. For every participant that
  publishes, it adds a *tap* to each of the participant's
  :class:`~server.sfu.relay.InboundStream` objects. The tap runs inside the
  publisher's receive loop, next to forwarding; it only copies the packet's
  fields onto a bounded thread-safe queue (no parsing, no I/O), so forwarding
  is not slowed. If the queue is full the packet is dropped for the recording
  only (the depacketizer then sees a gap and waits for a keyframe).
* One writer thread per session drains the queue. It reassembles frames
  (VP8 per RFC 7741, Opus one packet = one frame), maps RTP timestamps to the
  file's time line and muxes ``av.Packet`` objects into a Matroska/WebM file
  with PyAV. Nothing is decoded or encoded: the streams are mux-only (the Opus
  stream has an unopened context that only carries its CodecPrivate).
* Keyframes: a PLI goes to each publisher when its recording starts, and again
  (through the SFU's throttled path) whenever the depacketizer lost a packet
  and waits for the next keyframe.
* Errors in one participant's file stop that file (with a log line); the other
  files and forwarding carry on.

Time line of a file: its origin is the moment that participant's recording
started (``start_recording`` or the participant's join). Each track anchors its
first packet at its arrival time and advances by RTP timestamp differences
(32-bit wraparound handled), so audio and video line up within network jitter
and the file lasts as long as the participant was recorded. When a track's RTP
time drifts more than :data:`RESYNC_SECONDS` from arrival time (a paused
camera, a restarted stream, a new SSRC), it re-anchors to arrival time.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import io
import json
import logging
import os
import queue
import re
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import av
import av.container
import av.stream

from rtc.codecs import opus, vp8
from rtc.keyframes import MinInterval
from rtc.recorded import Mark, RecordedFile
from rtc.rtputil import ts_diff

if TYPE_CHECKING:
    from rtc import aiortc_internals as ai

    from .participant import Participant
    from .relay import InboundStream

logger = logging.getLogger(__name__)

Kind = Literal["audio", "video"]
KINDS: tuple[Kind, ...] = ("audio", "video")

VIDEO_RATE = 90000
AUDIO_RATE = 48000
#: A track whose RTP-derived time is this far from arrival time re-anchors.
RESYNC_SECONDS = 1.0
#: A track lagging behind arrival time by more than this during a whole window
#: is moved forward (see _TrackClock).
LAG_TOLERANCE_SECONDS = 0.1
LAG_WINDOW_SECONDS = 1.0
#: How long the VP8 depacketizer waits for a missing packet (NACK retransmission)
#: before it gives up on the gap and waits for the next keyframe.
GAP_WAIT_SECONDS = 0.5
GAP_MAX_PACKETS = 400
#: How long a file with video waits for the first keyframe (its size goes into
#: the file header) before it is written without video.
HEADER_WAIT_SECONDS = 30.0
#: Minimum interval between two keyframe requests from one recorded track.
KEYFRAME_REQUEST_INTERVAL = 1.0
#: Packets waiting for the writer thread; beyond that they are dropped (recording only).
QUEUE_MAX_ITEMS = 20000


# --- RTP payload helpers (pure functions) -----------------------------------------------------


def opus_head(channels: int) -> bytes:
    """OpusHead (RFC 7845, 5.1), the CodecPrivate of an A_OPUS Matroska track.

    Pre-skip is 0: an RTP stream carries none, and we do not trim its start.
    """
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 0, AUDIO_RATE, 0, 0)


def safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:80]
    return name or "participant"


# --- per-track assembly -----------------------------------------------------------------------


@dataclass
class _Rtp:
    ssrc: int
    seq: int
    ts: int
    marker: bool
    payload: bytes
    arrival: float  # time.monotonic() when the SFU received it


@dataclass
class _Frame:
    ts: int
    data: bytes
    keyframe: bool
    arrival: float
    samples: int = 0  # audio only


class _TrackClock:
    """Maps a track's RTP timestamps to seconds on the file's time line.

    The first packet is anchored at its arrival time; later packets advance by
    RTP timestamp differences (extended over the 32-bit wrap). Two corrections
    keep the track on the wall-clock time line it was recorded on:

    * *lag*: when every packet of the last :data:`LAG_WINDOW_SECONDS` arrived
      more than :data:`LAG_TOLERANCE_SECONDS` after its RTP time (a sender that
      fell behind real time, or a clock slower than ours), the anchor moves
      forward by the smallest such lag. Jitter does not trigger it, because
      the window's least-delayed packet is near zero.
    * *jump*: a difference over :data:`RESYNC_SECONDS` either way (a paused
      camera whose timestamps froze, a restarted stream) re-anchors at once.

    The writer keeps each track's timestamps strictly increasing whatever happens here.
    """

    def __init__(self, rate: int, origin: float) -> None:
        self.rate = rate
        self.origin = origin
        self._last_ts: int | None = None
        self._ext = 0
        self._anchor_ext = 0
        self._anchor_time = 0.0
        self._lags: collections.deque[tuple[float, float]] = collections.deque()
        self.resyncs = 0

    def reset(self) -> None:
        self._last_ts = None

    def seconds(self, ts: int, arrival: float) -> float:
        if self._last_ts is None:
            self._ext = ts
            self._anchor_ext = ts
            self._anchor_time = arrival
            self._lags.clear()
        else:
            self._ext += ts_diff(ts, self._last_ts)  # extended: survives the 32-bit wrap
        self._last_ts = ts
        t = self._anchor_time + (self._ext - self._anchor_ext) / self.rate
        lag = arrival - t
        if abs(lag) > RESYNC_SECONDS:
            self._reanchor(arrival)
            t = arrival
        else:
            lags = self._lags
            lags.append((arrival, lag))
            while arrival - lags[0][0] > LAG_WINDOW_SECONDS:
                lags.popleft()
            if arrival - lags[0][0] >= LAG_WINDOW_SECONDS * 0.9:
                least = min(x for _, x in lags)
                if least > LAG_TOLERANCE_SECONDS:
                    self._anchor_time += least
                    t += least
                    # the window's lags were measured against the old anchor
                    self._lags = collections.deque((a, x - least) for a, x in lags)
        return max(0.0, t - self.origin)

    def _reanchor(self, arrival: float) -> None:
        self.resyncs += 1
        self._anchor_ext = self._ext
        self._anchor_time = arrival
        self._lags.clear()


class _Vp8Assembler:
    """RFC 7741 depacketizer: packets in sequence order -> whole VP8 frames.

    A frame starts with S=1, PID=0 and ends with the marker bit; all its packets
    carry one RTP timestamp. A missing packet (not retransmitted within
    :data:`GAP_WAIT_SECONDS`) drops the frames around it until the next keyframe.
    """

    def __init__(self) -> None:
        self.lost = 0  # gaps given up on
        self.dropped_frames = 0
        self._reset(None)

    def _reset(self, ssrc: int | None) -> None:
        self._ssrc = ssrc
        self._buf: dict[int, _Rtp] = {}
        self._next: int | None = None  # extended sequence number expected next
        self._high = 0
        self._parts: list[bytes] = []
        self._frame_ts = 0
        self._frame_arrival = 0.0
        self.need_keyframe = True

    def _extend(self, seq: int) -> int:
        if self._next is None:
            self._high = seq
            return seq
        d = (seq - (self._high & 0xFFFF)) & 0xFFFF
        if d >= 0x8000:
            d -= 0x10000
        ext = self._high + d
        self._high = max(self._high, ext)
        return ext

    def push(self, pkt: _Rtp) -> list[_Frame]:
        if pkt.ssrc != self._ssrc:
            self._reset(pkt.ssrc)  # new stream: start over
        ext = self._extend(pkt.seq)
        if self._next is None:
            self._next = ext
        if ext < self._next or ext in self._buf:
            return []  # late duplicate / retransmission we no longer need
        self._buf[ext] = pkt
        out: list[_Frame] = []
        while True:
            p = self._buf.pop(self._next, None)
            if p is None:
                if not self._buf:
                    break
                oldest = min(self._buf.values(), key=lambda b: b.arrival).arrival
                if len(self._buf) < GAP_MAX_PACKETS and pkt.arrival - oldest < GAP_WAIT_SECONDS:
                    break
                # give up on the gap: whatever frame it was in is gone
                self._next = min(self._buf)
                self.lost += 1
                self._drop_partial()
                self.need_keyframe = True
                continue
            self._next += 1
            frame = self._consume(p)
            if frame is not None:
                out.append(frame)
        return out

    def _drop_partial(self) -> None:
        if self._parts:
            self.dropped_frames += 1
        self._parts = []

    def _consume(self, p: _Rtp) -> _Frame | None:
        descriptor = vp8.PayloadDescriptor.parse(p.payload)
        if descriptor is None or descriptor.size >= len(p.payload):
            return None  # empty/padding packet
        data = p.payload[descriptor.size :]
        if descriptor.frame_start:
            if self._parts:  # the previous frame never got its marker
                self._drop_partial()
                self.need_keyframe = True
            self._parts = [data]
            self._frame_ts = p.ts
            self._frame_arrival = p.arrival
        elif self._parts and p.ts == self._frame_ts:
            self._parts.append(data)
        else:
            return None  # middle of a frame whose start we did not get
        if not p.marker:
            return None
        frame = b"".join(self._parts)
        self._parts = []
        keyframe = vp8.keyframe_size(frame) is not None
        if self.need_keyframe and not keyframe:
            self.dropped_frames += 1
            return None
        if keyframe:
            self.need_keyframe = False
        return _Frame(ts=self._frame_ts, data=frame, keyframe=keyframe, arrival=self._frame_arrival)


class _OpusAssembler:
    """One RTP packet = one Opus packet. Drops duplicates and late packets."""

    def __init__(self) -> None:
        self._ssrc: int | None = None
        self._high: int | None = None

    def push(self, pkt: _Rtp) -> list[_Frame]:
        if pkt.ssrc != self._ssrc:
            self._ssrc = pkt.ssrc
            self._high = None
        if self._high is not None:
            d = (pkt.seq - self._high) & 0xFFFF
            if d == 0 or d >= 0x8000:
                return []
        self._high = pkt.seq
        if not pkt.payload:
            return []
        return [
            _Frame(
                ts=pkt.ts,
                data=pkt.payload,
                keyframe=True,
                arrival=pkt.arrival,
                samples=opus.samples(pkt.payload),
            )
        ]


# --- one participant's file (writer thread only) ----------------------------------------------


@dataclass
class _Pending:
    kind: Kind
    data: bytes
    seconds: float
    keyframe: bool
    samples: int


class _FileWriter:
    """Muxes one participant's frames into one WebM file. Used by the writer thread only."""

    def __init__(
        self,
        *,
        participant_id: str,
        path: Path,
        kinds: tuple[Kind, ...],
        origin: float,
        started_at: datetime,
        request_keyframe: Callable[[], None],
    ) -> None:
        self.participant_id = participant_id
        self.path = path
        self.kinds = kinds
        self.origin = origin
        self.started_at = started_at
        self._request_keyframe = request_keyframe
        # the session asked for a keyframe when it attached
        self._keyframe_requests = MinInterval(KEYFRAME_REQUEST_INTERVAL, last=origin)
        self._clocks: dict[Kind, _TrackClock] = {
            "audio": _TrackClock(AUDIO_RATE, origin),
            "video": _TrackClock(VIDEO_RATE, origin),
        }
        self._vp8 = _Vp8Assembler()
        self._opus = _OpusAssembler()
        self._ssrcs: dict[Kind, int] = {}
        self._container: av.container.OutputContainer | None = None
        self._streams: dict[Kind, av.stream.Stream] = {}
        self._pending: list[_Pending] = []
        self._size: tuple[int, int] | None = None
        self._channels: int | None = None
        self._last_pts: dict[Kind, int] = {}
        self._end = 0.0  # end of the last written packet, seconds on the file's time line
        self.written: dict[Kind, int] = {"audio": 0, "video": 0}
        self.failed = False
        self.closed = False

    # -- input ---------------------------------------------------------------------------
    def on_rtp(self, kind: Kind, pkt: _Rtp) -> None:
        if self.failed or self.closed or kind not in self.kinds:
            return
        if self._ssrcs.get(kind) != pkt.ssrc:
            self._ssrcs[kind] = pkt.ssrc
            self._clocks[kind].reset()
        if kind == "video":
            frames = self._vp8.push(pkt)
            if self._vp8.need_keyframe:
                self._ask_keyframe(pkt.arrival)
        else:
            frames = self._opus.push(pkt)
        for f in frames:
            self._on_frame(kind, f)

    def _ask_keyframe(self, now: float) -> None:
        if self._keyframe_requests.allow(now):
            self._request_keyframe()

    def _on_frame(self, kind: Kind, f: _Frame) -> None:
        seconds = self._clocks[kind].seconds(f.ts, f.arrival)
        if kind == "video" and self._size is None and f.keyframe:
            self._size = vp8.keyframe_size(f.data)
        if kind == "audio" and self._channels is None:
            self._channels = 2 if f.data[0] & 0x04 else 1
        item = _Pending(kind, f.data, seconds, f.keyframe, f.samples)
        if self._container is None:
            self._pending.append(item)
            if self._ready_for_header(f.arrival):
                self._open()
            return
        self._write(item)

    def _ready_for_header(self, now: float) -> bool:
        if "video" not in self.kinds or self._size is not None:
            return True
        if now - self.origin > HEADER_WAIT_SECONDS:
            logger.warning(
                "recording %s: no keyframe after %.0f s, writing the file without video",
                self.participant_id,
                HEADER_WAIT_SECONDS,
            )
            self.kinds = tuple(k for k in self.kinds if k != "video")
            self._pending = [p for p in self._pending if p.kind != "video"]
            return True
        return False

    # -- output --------------------------------------------------------------------------
    def _open(self) -> None:
        container = av.open(str(self.path), "w", format="webm")
        try:
            if "audio" in self.kinds:
                # A mux-only stream cannot carry CodecPrivate/channels in PyAV, so the
                # Opus stream is copied from an *unopened* template stream and its
                # parameters set on that (never opened) context: nothing is encoded.
                scratch = av.open(io.BytesIO(), "w", format="webm")
                try:
                    template = scratch.add_stream("libopus", rate=AUDIO_RATE)
                    audio = container.add_stream_from_template(template)
                finally:
                    scratch.close()
                channels = self._channels or 2
                audio.codec_context.extradata = opus_head(channels)
                audio.codec_context.layout = "stereo" if channels == 2 else "mono"
                audio.codec_context.sample_rate = AUDIO_RATE
                audio.time_base = Fraction(1, AUDIO_RATE)
                self._streams["audio"] = audio
            if "video" in self.kinds:
                assert self._size is not None
                width, height = self._size
                video = container.add_mux_stream("vp8", width=width, height=height)
                video.time_base = Fraction(1, VIDEO_RATE)
                self._streams["video"] = video
            container.metadata["title"] = f"{self.participant_id}"
            container.metadata["creation_time"] = self.started_at.isoformat()
        except Exception:
            container.close()
            raise
        self._container = container
        pending, self._pending = self._pending, []
        pending.sort(key=lambda p: p.seconds)
        for item in pending:
            self._write(item)

    def _write(self, item: _Pending) -> None:
        assert self._container is not None
        stream = self._streams.get(item.kind)
        if stream is None:
            return
        rate = AUDIO_RATE if item.kind == "audio" else VIDEO_RATE
        pts = round(item.seconds * rate)
        last = self._last_pts.get(item.kind)
        if last is not None and pts <= last:
            if item.kind == "audio" and pts + item.samples <= last:
                return  # a stale audio packet: skip it rather than overlap
            pts = last + 1
        self._last_pts[item.kind] = pts
        packet = av.Packet(item.data)
        packet.stream = stream
        packet.time_base = Fraction(1, rate)
        packet.pts = pts
        packet.dts = pts
        packet.is_keyframe = item.keyframe
        if item.samples:
            packet.duration = item.samples
        self._container.mux(packet)  # PyAV rescales to the container's time base (1 ms)
        self.written[item.kind] += 1
        self._end = max(self._end, (pts + item.samples) / rate)

    def close(self, chapters: list[tuple[str, float]], duration: float) -> RecordedFile | None:
        """Finish the file; ``chapters`` are (label, offset in this file) pairs."""
        if self.closed:
            return None
        self.closed = True
        if self._container is None and self._pending and not self.failed:
            if "video" in self.kinds and self._size is None:
                logger.warning(
                    "recording %s: no video keyframe received; file has no video", self.participant_id
                )
                self.kinds = tuple(k for k in self.kinds if k != "video")
                self._pending = [p for p in self._pending if p.kind != "video"]
            if self._pending:
                self._open()
        container, self._container = self._container, None
        if container is None:
            return None
        try:
            if chapters:
                ms = Fraction(1, 1000)
                end = max(duration, self._end)
                entries = []
                for i, (label, offset) in enumerate(chapters):
                    stop = chapters[i + 1][1] if i + 1 < len(chapters) else end
                    entries.append(
                        {
                            "id": i + 1,
                            "start": round(offset * 1000),
                            "end": round(max(offset, stop) * 1000),
                            "time_base": ms,
                            "metadata": {"title": label},
                        }
                    )
                container.set_chapters(entries)  # type: ignore[arg-type]
        finally:
            container.close()
        return RecordedFile(
            participant_id=self.participant_id,
            path=self.path,
            started_at=self.started_at,
            ended_at=self.started_at + timedelta(seconds=duration),
            duration=duration,
            has_audio="audio" in self._streams and self.written["audio"] > 0,
            has_video="video" in self._streams and self.written["video"] > 0,
        )

    def abort(self) -> None:
        self.failed = True
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception:
                logger.exception(
                    "recording %s: closing %s after an error failed", self.participant_id, self.path
                )


# --- the session ------------------------------------------------------------------------------


@dataclass
class _Attached:
    key: int
    participant: Participant
    streams: dict[Kind, InboundStream]
    taps: dict[Kind, Callable[[InboundStream, ai.RtpPacket], None]] = field(default_factory=dict)


class RecordingSession:
    """A room's recording. Created by :meth:`server.sfu.Sfu.start_recording`."""

    def __init__(self, room_id: str, directory: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.room_id = room_id
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.started_at = datetime.now(UTC)
        self._origin = time.monotonic()
        stamp = self.started_at.strftime("%Y%m%dT%H%M%SZ")
        self._reserved: set[Path] = set()  # file names handed out by this session
        self.sidecar_path = self._unique(f"{safe_name(room_id)}-{stamp}", ".json")
        self._reserved.add(self.sidecar_path)
        self._loop = loop
        # Unbounded so control messages never block the event loop; RTP items are
        # bounded by _enqueued - _dequeued (each counter written by one thread only).
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._enqueued = 0  # RTP items put by the taps (event loop)
        self._dequeued = 0  # RTP items taken by the writer thread
        self._attached: dict[str, _Attached] = {}  # participant id -> taps (event loop only)
        self._keys = 0
        self.marks: list[Mark] = []
        self._files: list[RecordedFile] = []  # appended by the writer thread
        self.dropped_packets = 0
        self.active = True
        self.failed = False
        self._done: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._run, name=f"sfu-recorder-{room_id}", daemon=True)
        self._thread.start()

    @property
    def files(self) -> list[RecordedFile]:
        """Files finished so far (participants who left, or all after stop)."""
        return list(self._files)

    def _unique(self, stem: str, suffix: str) -> Path:
        path = self.directory / f"{stem}{suffix}"
        n = 1
        while path.exists() or path in self._reserved:
            n += 1
            path = self.directory / f"{stem}-{n}{suffix}"
        return path

    # -- called by the room (event loop) -------------------------------------------------
    def attach(self, p: Participant) -> None:
        """Start recording ``p`` (it publishes something); a file from now on."""
        if not self.active or self.failed or p.id in self._attached or not p.inbound:
            return
        self._keys += 1
        key = self._keys
        streams = dict(p.inbound)
        att = _Attached(key, p, streams)
        kinds: tuple[Kind, ...] = tuple(k for k in KINDS if k in streams)
        path = self._unique(f"{safe_name(p.id)}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}", ".webm")
        self._reserved.add(path)
        self._put(("open", key, p.id, path, kinds, time.monotonic(), datetime.now(UTC)))
        for kind, stream in streams.items():
            tap = self._make_tap(key, kind)
            att.taps[kind] = tap
            stream.taps.append(tap)
        self._attached[p.id] = att
        if "video" in streams:
            streams["video"].request_keyframe()  # the SFU's throttled PLI path
        logger.info("room %s: recording %s to %s", self.room_id, p.id, path)

    def detach(self, participant_id: str) -> None:
        """Stop recording a participant (it left): its file is closed."""
        att = self._attached.pop(participant_id, None)
        if att is None:
            return
        for kind, tap in att.taps.items():
            stream = att.streams[kind]
            if tap in stream.taps:
                stream.taps.remove(tap)
        self._put(("close", att.key, time.monotonic()))

    def mark(self, label: str) -> Mark:
        if not self.active:
            raise RuntimeError("recording stopped")
        now = time.monotonic()
        m = Mark(label=label, at=datetime.now(UTC), offset=now - self._origin)
        self.marks.append(m)
        self._put(("mark", m, now))
        return m

    async def stop(self) -> list[RecordedFile]:
        """Close every file and the sidecar; returns all files of the session."""
        if self.active:
            self.active = False
            for pid in list(self._attached):
                self.detach(pid)
            self._put(("stop", datetime.now(UTC), time.monotonic()))
        await asyncio.shield(self._done)
        # The writer signalled completion as its last step; the join only waits
        # for the thread function to return (microseconds).
        self._thread.join(timeout=1.0)
        return self.files

    # -- taps (event loop, inside the publisher's receive loop) ---------------------------
    def _make_tap(self, key: int, kind: Kind) -> Callable[[InboundStream, ai.RtpPacket], None]:
        put = self._queue.put

        def tap(stream: InboundStream, packet: ai.RtpPacket) -> None:
            if self._enqueued - self._dequeued >= QUEUE_MAX_ITEMS:
                # the writer is stuck (disk stall): drop for the recording only
                self.dropped_packets += 1
                return
            self._enqueued += 1
            put(
                (
                    "rtp",
                    key,
                    kind,
                    _Rtp(
                        packet.ssrc,
                        packet.sequence_number,
                        packet.timestamp,
                        bool(packet.marker),
                        packet.payload,
                        time.monotonic(),
                    ),
                )
            )

        return tap

    def _put(self, item: tuple[Any, ...]) -> None:
        self._queue.put(item)  # control messages: never dropped, never blocking

    def _request_keyframe(self, key: int) -> None:
        for att in self._attached.values():
            if att.key == key and "video" in att.streams:
                att.streams["video"].request_keyframe()

    def _on_writer_failed(self, key: int | None) -> None:
        if key is None:
            self.failed = True
            for pid in list(self._attached):
                self.detach(pid)
            return
        for pid, att in list(self._attached.items()):
            if att.key == key:
                self.detach(pid)

    def _call_soon(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed
            pass

    # -- writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        writers: dict[int, _FileWriter] = {}
        marks: list[tuple[Mark, float]] = []  # marks the writer has seen, with their monotonic time
        file_marks: dict[int, list[tuple[str, float]]] = {}
        ended_at: datetime | None = None
        try:
            while True:
                item = self._queue.get()
                op = item[0]
                if op == "rtp":
                    self._dequeued += 1
                    _, key, kind, pkt = item
                    w = writers.get(key)
                    if w is None or w.failed or w.closed:
                        continue
                    try:
                        w.on_rtp(kind, pkt)
                    except Exception:
                        logger.exception(
                            "room %s: recording of %s failed; its file stops here, forwarding continues",
                            self.room_id,
                            w.participant_id,
                        )
                        w.abort()
                        self._call_soon(self._on_writer_failed, key)
                elif op == "open":
                    _, key, pid, path, kinds, origin, started_at = item
                    writers[key] = _FileWriter(
                        participant_id=pid,
                        path=path,
                        kinds=kinds,
                        origin=origin,
                        started_at=started_at,
                        request_keyframe=functools.partial(self._call_soon, self._request_keyframe, key),
                    )
                    # the agenda item in progress when this participant joined starts its file
                    file_marks[key] = [(m.label, 0.0) for m, _ in marks[-1:]]
                elif op == "close":
                    _, key, now = item
                    w = writers.pop(key, None)
                    if w is not None:
                        self._close_writer(w, file_marks.pop(key, []), now)
                        self._write_sidecar(writers, [m for m, _ in marks], None)
                elif op == "mark":
                    _, m, now = item
                    marks.append((m, now))
                    for key, w in writers.items():
                        file_marks.setdefault(key, []).append((m.label, max(0.0, now - w.origin)))
                    self._write_sidecar(writers, [m for m, _ in marks], None)
                elif op == "stop":
                    _, ended_at, now = item
                    for key, w in list(writers.items()):
                        self._close_writer(w, file_marks.pop(key, []), now)
                    writers.clear()
                    self._write_sidecar(writers, [m for m, _ in marks], ended_at)
                    return
        except Exception:
            logger.exception("room %s: recording writer failed; recording stopped", self.room_id)
            for w in writers.values():
                w.abort()
            self._call_soon(self._on_writer_failed, None)
        finally:
            self._call_soon(self._set_done)

    def _set_done(self) -> None:
        self.active = False
        if not self._done.done():
            self._done.set_result(None)

    def _close_writer(self, w: _FileWriter, chapters: list[tuple[str, float]], now: float) -> None:
        if w.failed:
            return
        try:
            result = w.close(chapters, max(0.0, now - w.origin))
        except Exception:
            logger.exception("room %s: closing the recording of %s failed", self.room_id, w.participant_id)
            w.abort()
            return
        if result is not None:
            self._files.append(result)
            logger.info(
                "room %s: recorded %s: %s (%.1f s)", self.room_id, w.participant_id, w.path, result.duration
            )

    def _write_sidecar(
        self, writers: dict[int, _FileWriter], marks: list[Mark], ended_at: datetime | None
    ) -> None:
        doc = {
            "room_id": self.room_id,
            "started_at": self.started_at.isoformat(),
            "ended_at": ended_at.isoformat() if ended_at else None,
            "marks": [
                {"label": m.label, "at": m.at.isoformat(), "offset": round(m.offset, 3)} for m in marks
            ],
            "files": [
                {
                    "participant_id": f.participant_id,
                    "file": f.path.name,
                    "started_at": f.started_at.isoformat(),
                    "ended_at": f.ended_at.isoformat(),
                    "duration": round(f.duration, 3),
                    "has_audio": f.has_audio,
                    "has_video": f.has_video,
                    # where each mark falls in this file (seconds; negative: before it started)
                    "marks": [
                        {"label": m.label, "offset": round((m.at - f.started_at).total_seconds(), 3)}
                        for m in marks
                    ],
                }
                for f in self._files
            ],
            "recording": [
                {"participant_id": w.participant_id, "file": w.path.name} for w in writers.values()
            ],
        }
        tmp = self.sidecar_path.with_suffix(".json.tmp")
        try:
            tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
            os.replace(tmp, self.sidecar_path)
        except OSError:
            logger.exception("room %s: writing %s failed", self.room_id, self.sidecar_path)
