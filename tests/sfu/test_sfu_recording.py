"""Recording (server/sfu/recording.py): real aiortc peers through the real SFU on
127.0.0.1; the files written are opened and decoded here, in the test."""

from __future__ import annotations

import asyncio
import gc
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import aiortc.codecs
import aiortc.rtcrtpreceiver
import av
import pytest
from aiortc.codecs.vpx import Vp8Encoder

from rtc import aiortc_internals as ai
from rtc.codecs import vp8
from server.sfu import InvalidState, RecordedFile, Sfu, recording
from tests.sfu.sfu_testkit import LUMA, Client, join, sees_video, server_pcs, wait_until

pytestmark = pytest.mark.network

#: Tolerance for "the file lasts as long as it was recorded".
SECOND = 1.0


def recorder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sfu-recorder-")]


@dataclass
class FileInfo:
    audio_codec: str
    video_codec: str
    extradata: bytes | None
    duration: float
    chapters: list[str]
    video_sizes: list[tuple[int, int]] = field(default_factory=list)
    audio_samples: int = 0
    starts: dict[str, float] = field(default_factory=dict)
    ends: dict[str, float] = field(default_factory=dict)


def inspect(path: Path, video_frames: int = 5) -> FileInfo:
    """Open a recording with av and decode a few frames of each stream (in the test)."""
    with av.open(str(path)) as c:
        assert [s.type for s in c.streams] == ["audio", "video"], c.streams
        audio, video = c.streams.audio[0], c.streams.video[0]
        info = FileInfo(
            audio_codec=audio.codec_context.name,
            video_codec=video.codec_context.name,
            extradata=audio.codec_context.extradata,
            duration=(c.duration or 0) / 1_000_000,
            chapters=[ch["metadata"].get("title", "") for ch in c.chapters()],
        )
        for vframe in c.decode(video=0):
            info.video_sizes.append((vframe.width, vframe.height))
            if len(info.video_sizes) >= video_frames:
                break
        c.seek(0)
        for aframe in c.decode(audio=0):
            info.audio_samples += aframe.samples
            if info.audio_samples >= 48000:
                break
    with av.open(str(path)) as c:  # a fresh pass over every packet (a seek would land on a keyframe)
        for packet in c.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            t = float(packet.pts * packet.time_base)
            info.starts.setdefault(packet.stream.type, t)
            info.ends[packet.stream.type] = t
    return info


def sfu_tasks(tasks: set[asyncio.Task[object]]) -> list[asyncio.Task[object]]:
    """Tasks running SFU code (the clients' aiortc threads start their own short tasks)."""
    sfu_dir = str(Path(recording.__file__).parent)
    found = []
    for task in tasks:
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and code.co_filename.startswith(sfu_dir):
            found.append(task)
    return found


def by_participant(files: list[RecordedFile]) -> dict[str, RecordedFile]:
    assert len({f.participant_id for f in files}) == len(files)
    return {f.participant_id: f for f in files}


async def test_meeting_is_recorded_to_valid_webm_files_with_marks(
    sfu: Sfu, make_client: Callable[..., Client], tmp_path: Path
) -> None:
    sfu.open_room("r")
    a = await join(sfu, make_client, "a", luma=LUMA["a"], amplitude=8000, video_slots=2, audio_slots=2)
    b = await join(sfu, make_client, "b", luma=LUMA["b"], amplitude=3000, video_slots=2, audio_slots=2)
    await wait_until(lambda: sees_video(a, "b") and sees_video(b, "a"), 10, "a and b see each other")
    tasks_before = set(asyncio.all_tasks())

    t_start = time.monotonic()
    session = sfu.start_recording("r", tmp_path)
    with pytest.raises(InvalidState):
        sfu.start_recording("r", tmp_path)
    assert recorder_threads()
    await asyncio.sleep(1.5)
    first = sfu.mark("r", "1. 마을회관 보수 공사")
    await asyncio.sleep(1.5)
    second = sfu.mark("r", "2. Budget")
    await asyncio.sleep(1.5)
    t_stop = time.monotonic()  # files end when stop is asked for
    files = await sfu.stop_recording("r")
    recorded = t_stop - t_start

    # stopping closed everything: no writer thread, no task left behind, files complete
    assert not recorder_threads()
    assert sfu_tasks(set(asyncio.all_tasks()) - tasks_before) == []
    assert sfu.recording("r") is None
    with pytest.raises(InvalidState):
        await sfu.stop_recording("r")
    with pytest.raises(InvalidState):
        sfu.mark("r", "too late")

    got = by_participant(files)
    assert set(got) == {"a", "b"}
    for pid, f in got.items():
        assert f.path.parent == tmp_path and f.path.suffix == ".webm" and f.path.exists()
        assert f.has_audio and f.has_video
        assert abs(f.duration - recorded) < SECOND
        assert f.ended_at > f.started_at
        info = inspect(f.path)
        print(pid, info)
        assert info.audio_codec == "opus" and info.video_codec == "vp8"
        assert info.extradata is not None and info.extradata.startswith(b"OpusHead")
        assert info.video_sizes == [(640, 360)] * 5
        assert info.audio_samples >= 48000
        # the file lasts as long as the participant was recorded
        assert abs(info.duration - recorded) < SECOND
        # audio and video share one time line: both start near the start and end near the stop
        starts, ends = info.starts, info.ends
        assert starts["audio"] < 0.5  # audio flowed already: it starts right away
        assert starts["video"] < 1.5  # at the keyframe the recording asked for
        assert abs(ends["audio"] - ends["video"]) < 0.5
        assert info.chapters == [first.label, second.label]

    # the sidecar JSON next to the files has the marks and the files
    assert session.sidecar_path.parent == tmp_path
    doc = json.loads(session.sidecar_path.read_text(encoding="utf-8"))
    assert doc["room_id"] == "r" and doc["ended_at"] is not None
    assert [m["label"] for m in doc["marks"]] == [first.label, second.label]
    assert 1.0 < doc["marks"][0]["offset"] < doc["marks"][1]["offset"] < recorded
    assert {f["participant_id"]: f["file"] for f in doc["files"]} == {
        pid: f.path.name for pid, f in got.items()
    }

    # forwarding went on all along, and still does
    frames = a.log(a.slot_of("b", "video")).frames
    await wait_until(lambda: a.log(a.slot_of("b", "video")).frames > frames + 5, 10, "a still sees b")


async def test_late_joiner_and_leaver_get_their_own_files(
    sfu: Sfu, make_client: Callable[..., Client], tmp_path: Path
) -> None:
    sfu.open_room("r")
    await join(sfu, make_client, "a", luma=LUMA["a"], amplitude=5000, video_slots=2)
    b = await join(sfu, make_client, "b", luma=LUMA["b"], amplitude=5000, video_slots=2)
    # a receive-only participant publishes nothing, so it gets no file
    await join(sfu, make_client, "watcher", video_slots=1, audio_slots=1)
    await wait_until(lambda: sees_video(b, "a"), 10, "b sees a")
    t_start = time.monotonic()
    session = sfu.start_recording("r", tmp_path)
    await asyncio.sleep(1.5)

    t_join = time.monotonic()
    c = await join(sfu, make_client, "c", luma=LUMA["c"], amplitude=5000, video_slots=2)
    t_joined = time.monotonic()  # c's file starts when its offer is answered, in between
    sfu.mark("r", "c joined")
    await wait_until(lambda: sees_video(c, "a"), 10, "c sees a")
    await asyncio.sleep(1.5)

    t_leave = time.monotonic()
    assert b.handle is not None
    await b.handle.leave()
    await wait_until(lambda: any(f.participant_id == "b" for f in session.files), 10, "b's file is closed")
    await asyncio.sleep(1.0)
    t_stop = time.monotonic()
    files = by_participant(await sfu.stop_recording("r"))

    assert set(files) == {"a", "b", "c"}
    assert abs(files["a"].duration - (t_stop - t_start)) < SECOND
    assert abs(files["b"].duration - (t_leave - t_start)) < SECOND
    assert t_stop - t_joined - 0.1 < files["c"].duration < t_stop - t_join + 0.1
    assert files["c"].started_at > files["a"].started_at
    for pid, f in files.items():
        info = inspect(f.path, video_frames=3)
        assert info.video_sizes == [(640, 360)] * 3, pid
        assert abs(info.duration - f.duration) < SECOND, pid
    # the late joiner's file starts with the mark made at its join; b left before it
    assert inspect(files["c"].path).chapters == ["c joined"]
    assert inspect(files["b"].path).chapters == ["c joined"]


async def test_recording_decodes_nothing_on_the_server(
    sfu: Sfu, make_client: Callable[..., Client], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients that count RTP instead of decoding: while the SFU forwards and
    records, nothing in this process creates or opens a decoder."""
    created: list[str] = []
    for module in (aiortc.rtcrtpreceiver, aiortc.codecs):
        real = module.get_decoder

        def spy(codec: object, real: Callable[[object], object] = real) -> object:
            created.append(str(codec))
            return real(codec)

        monkeypatch.setattr(module, "get_decoder", spy)

    sfu.open_room("r")
    a = await join(
        sfu, make_client, "a", luma=LUMA["a"], amplitude=5000, video_slots=1, audio_slots=1, decode=False
    )
    b = await join(
        sfu, make_client, "b", luma=LUMA["b"], amplitude=5000, video_slots=1, audio_slots=1, decode=False
    )
    session = sfu.start_recording("r", tmp_path)
    await wait_until(
        lambda: all(len(c.rtp_packets) == 2 and min(c.rtp_packets.values()) > 50 for c in (a, b)),
        10,
        "forwarded audio and video RTP at both clients",
    )
    await asyncio.sleep(1.0)

    # no decoder anywhere: not aiortc's, no decoder thread, no open av decoder context
    assert created == []
    assert not [t for t in threading.enumerate() if t.name.endswith("-decoder")]
    for pc in server_pcs(sfu, "r"):
        for t in pc.getTransceivers():
            assert not ai.decoder_thread_started(t.receiver)
    open_decoders = [
        o for o in gc.get_objects() if isinstance(o, av.CodecContext) and o.is_decoder and o.is_open
    ]
    assert open_decoders == []
    # the recorder's own output streams: mux-only (no codec context), or an unopened
    # encoder-side context that only carries the Opus parameters (CodecPrivate)
    writers = [o for o in gc.get_objects() if isinstance(o, recording._FileWriter)]
    assert {w.participant_id for w in writers} == {"a", "b"}
    for w in writers:
        assert set(w._streams) == {"audio", "video"}
        assert w._streams["video"].codec_context is None
        ctx = w._streams["audio"].codec_context
        assert ctx is not None and not ctx.is_open and not ctx.is_decoder

    files = await sfu.stop_recording("r")
    assert created == []
    assert session.dropped_packets == 0
    # the files are real: decode them here, in the test
    assert {f.participant_id for f in files} == {"a", "b"}
    for f in files:
        info = inspect(f.path, video_frames=2)
        assert info.video_sizes == [(640, 360)] * 2


async def test_closing_the_room_finishes_the_recording(
    sfu: Sfu, make_client: Callable[..., Client], tmp_path: Path
) -> None:
    sfu.open_room("r")
    await join(sfu, make_client, "a", luma=LUMA["a"], amplitude=5000)
    session = sfu.start_recording("r", tmp_path)
    await wait_until(lambda: len(list(tmp_path.glob("*.webm"))) == 1, 10, "a's file is being written")
    await asyncio.sleep(1.0)
    await sfu.close_room("r")
    assert not recorder_threads()
    files = session.files
    assert [f.participant_id for f in files] == ["a"]
    info = inspect(files[0].path, video_frames=2)
    assert info.video_sizes == [(640, 360)] * 2
    assert json.loads(session.sidecar_path.read_text(encoding="utf-8"))["ended_at"] is not None


async def test_a_write_error_stops_the_recording_but_not_forwarding(
    sfu: Sfu, make_client: Callable[..., Client], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sfu.open_room("r")
    a = await join(sfu, make_client, "a", luma=LUMA["a"], amplitude=5000, video_slots=1)
    b = await join(sfu, make_client, "b", luma=LUMA["b"], amplitude=5000, video_slots=1)
    await wait_until(lambda: sees_video(a, "b") and sees_video(b, "a"), 10, "a and b see each other")
    directory = tmp_path / "rec"
    session = sfu.start_recording("r", directory)
    # A real filesystem error: the directory disappears (a file takes its name)
    # before the first file is opened, which needs packets, so after an await.
    for child in directory.iterdir():
        child.unlink()
    directory.rmdir()
    directory.write_text("not a directory")
    inbound = sfu._room("r").participants["a"].inbound
    await wait_until(lambda: not any(s.taps for s in inbound.values()), 10, "the recording stopped itself")
    assert "recording of a failed" in caplog.text
    frames = b.log(b.slot_of("a", "video")).frames
    await wait_until(lambda: b.log(b.slot_of("a", "video")).frames > frames + 5, 10, "forwarding continues")
    assert await sfu.stop_recording("r") == []
    assert not recorder_threads()
    assert session.files == []


# --- the depacketizer and clock on real VP8/Opus payloads (no network) --------------------------


def vp8_rtp(count: int, first_seq: int, first_ts: int, keyframes: set[int]) -> list[list[recording._Rtp]]:
    """``count`` frames from aiortc's own VP8 encoder + RFC 7741 packetizer, as RTP."""
    encoder = Vp8Encoder()
    frames: list[list[recording._Rtp]] = []
    seq = first_seq
    for i in range(count):
        frame = av.VideoFrame(640, 360, "yuv420p")
        noise = random.Random(i)  # busy pictures: frames span several packets
        for plane in frame.planes:
            plane.update(noise.randbytes(plane.buffer_size))
        frame.pts = i * 9000
        frame.time_base = Fraction(1, 90000)
        payloads, _ = encoder.encode(frame, force_keyframe=i in keyframes)
        ts = (first_ts + i * 9000) & 0xFFFFFFFF
        packets = []
        for j, payload in enumerate(payloads):
            packets.append(recording._Rtp(1, seq & 0xFFFF, ts, j == len(payloads) - 1, payload, i * 0.1))
            seq += 1
        frames.append(packets)
    return frames


def test_vp8_depacketizer_reorders_wraps_and_waits_for_a_keyframe_after_loss() -> None:
    frames = vp8_rtp(8, first_seq=65530, first_ts=0xFFFFFFFF - 20000, keyframes={0, 5})
    assert len(frames[0]) > 6  # so the sequence numbers wrap inside the first frame
    asm = recording._Vp8Assembler()
    out: list[recording._Frame] = []
    for packet in frames[0]:
        out += asm.push(packet)
    # frame 1 arrives in reverse packet order: reassembled once complete
    for packet in reversed(frames[1]):
        out += asm.push(packet)
    assert [f.keyframe for f in out] == [True, False]
    # frame 2 loses its first packet for good: frames 2-4 are dropped, 5 (keyframe) resumes
    later = [p for f in frames[2:] for p in f][1:]
    for packet in later:
        out += asm.push(recording._Rtp(**{**packet.__dict__, "arrival": packet.arrival + 1.0}))
    assert asm.lost == 1
    assert [f.keyframe for f in out] == [True, False, True, False, False]
    assert len(out) == 5
    # what comes out is plain VP8: a decoder (here, in the test) accepts it
    decoder = av.CodecContext.create("vp8", "r")
    sizes = []
    for f in out:
        for picture in decoder.decode(av.Packet(f.data)):
            assert isinstance(picture, av.VideoFrame)
            sizes.append((picture.width, picture.height))
    assert sizes == [(640, 360)] * 5
    assert vp8.keyframe_size(out[0].data) == (640, 360)


def test_track_clock_unwraps_rtp_timestamps_and_resyncs_on_jumps() -> None:
    clock = recording._TrackClock(90000, origin=100.0)
    ts0 = 0xFFFFFFFF - 45000  # wraps after half a second
    assert clock.seconds(ts0, 100.2) == pytest.approx(0.2)
    assert clock.seconds((ts0 + 90000) & 0xFFFFFFFF, 101.25) == pytest.approx(1.2)
    assert clock.seconds((ts0 + 180000) & 0xFFFFFFFF, 102.2) == pytest.approx(2.2)
    # a paused stream whose timestamps froze: re-anchored to arrival time
    assert clock.seconds((ts0 + 189000) & 0xFFFFFFFF, 110.0) == pytest.approx(10.0)
    assert clock.resyncs == 1
    assert clock.seconds((ts0 + 198000) & 0xFFFFFFFF, 110.1) == pytest.approx(10.1)


def test_opus_head() -> None:
    assert recording.opus_head(2)[:9] == b"OpusHead\x01" and recording.opus_head(2)[9] == 2


def test_track_clock_follows_a_lagging_sender_but_not_jitter() -> None:
    # a sender producing 20 ms packets every 25 ms (it fell behind real time)
    clock = recording._TrackClock(48000, origin=0.0)
    worst = 0.0
    for i in range(250):
        arrival = i * 0.025
        worst = max(worst, abs(clock.seconds(i * 960, arrival) - arrival))
    assert worst < 0.35
    # network jitter (0-80 ms late) on an on-time sender: RTP time is kept as is
    clock = recording._TrackClock(48000, origin=0.0)
    jitter = random.Random(7)
    first = clock.seconds(0, jitter.random() * 0.08)  # anchored at the first arrival
    for i in range(1, 500):
        assert clock.seconds(i * 960, i * 0.02 + jitter.random() * 0.08) == pytest.approx(first + i * 0.02)
    assert clock.resyncs == 0
