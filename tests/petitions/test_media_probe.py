from __future__ import annotations

import asyncio
import math
import os
import struct
from pathlib import Path

import av
import pytest

from server.petitions.media_probe import InvalidMedia, ProbedMedia, probe_media


def _write_clip(
    path: Path,
    seconds: float,
    *,
    fmt: str = "webm",
    audio_codec: str | None = "libopus",
    video_codec: str | None = None,
    rate: int = 48000,
    tone: bool = True,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode a real clip: a 440 Hz tone (or silence) and optionally small grey video frames."""
    out = av.open(str(path), "w", format=fmt, options=options or {})
    astream = out.add_stream(audio_codec, rate=rate, layout="mono") if audio_codec else None
    vstream = None
    if video_codec:
        vstream = out.add_stream(video_codec, rate=10)
        vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
    if astream is not None:
        frame_size = astream.codec_context.frame_size or 960
        total = int(seconds * rate)
        t = 0
        while t < total:
            k = min(frame_size, total - t)
            frame = av.AudioFrame(format="s16", layout="mono", samples=k)
            if tone:
                samples = [int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(t, t + k)]
                frame.planes[0].update(struct.pack(f"<{k}h", *samples))
            else:
                frame.planes[0].update(bytes(2 * k))
            frame.sample_rate, frame.pts = rate, t
            for packet in astream.encode(frame):
                out.mux(packet)
            t += k
        for packet in astream.encode():
            out.mux(packet)
    if vstream is not None:
        for i in range(int(seconds * 10)):
            vframe = av.VideoFrame(64, 48, "yuv420p")
            for plane in vframe.planes:
                plane.update(bytes([(i * 7) % 256]) * plane.buffer_size)
            vframe.pts = i
            for packet in vstream.encode(vframe):
                out.mux(packet)
        for packet in vstream.encode():
            out.mux(packet)
    out.close()
    return path


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def voice_webm(media_dir: Path) -> Path:
    # live=1 makes the muxer behave like MediaRecorder: no duration header, no cues.
    return _write_clip(media_dir / "voice.webm", 3.0, options={"live": "1"})


@pytest.fixture(scope="module")
def video_webm(media_dir: Path) -> Path:
    return _write_clip(media_dir / "video.webm", 3.0, video_codec="libvpx")


def _expect(path: Path, code: str, **kwargs: int) -> InvalidMedia:
    with pytest.raises(InvalidMedia) as info:
        probe_media(path, **kwargs)  # type: ignore[arg-type]
    assert info.value.code == code, info.value
    return info.value


def test_voice_clip_without_duration_header(voice_webm: Path) -> None:
    with av.open(str(voice_webm)) as c:
        assert c.duration is None  # the case MediaRecorder produces
    probed = probe_media(voice_webm)
    assert probed == ProbedMedia(
        container="webm",
        audio_codec="opus",
        video_codec=None,
        duration_s=probed.duration_s,
        width=None,
        height=None,
        size_bytes=voice_webm.stat().st_size,
    )
    assert 2.9 <= probed.duration_s <= 3.1


def test_vp8_opus_video(video_webm: Path) -> None:
    probed = probe_media(video_webm)
    assert (probed.container, probed.audio_codec, probed.video_codec) == ("webm", "opus", "vp8")
    assert (probed.width, probed.height) == (64, 48)
    assert 2.9 <= probed.duration_s <= 3.1


def test_ogg_opus_and_mp4_aac_h264(media_dir: Path) -> None:
    ogg = probe_media(_write_clip(media_dir / "voice.ogg", 2.0, fmt="ogg"))
    assert (ogg.container, ogg.audio_codec) == ("ogg", "opus")
    mp4 = probe_media(
        _write_clip(media_dir / "clip.mp4", 2.0, fmt="mp4", audio_codec="aac", video_codec="libx264")
    )
    assert (mp4.container, mp4.audio_codec, mp4.video_codec) == ("mp4", "aac", "h264")
    assert 1.9 <= mp4.duration_s <= 2.2


def test_too_long(media_dir: Path) -> None:
    # Silence at 8 kHz keeps a 181 s clip small and quick to encode.
    long_clip = _write_clip(media_dir / "long.webm", 181.0, rate=8000, tone=False, options={"live": "1"})
    err = _expect(long_clip, "too_long")
    assert "180" in err.message
    # A custom limit applies too.
    with pytest.raises(InvalidMedia, match="too_long"):
        probe_media(long_clip, max_duration_s=60)


def test_too_large(voice_webm: Path) -> None:
    _expect(voice_webm, "too_large", max_bytes=1000)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.webm"
    path.write_bytes(os.urandom(4096))
    _expect(path, "not_media")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.webm"
    path.write_bytes(b"")
    _expect(path, "empty")


def test_text_renamed_webm(tmp_path: Path) -> None:
    path = tmp_path / "note.webm"
    path.write_text("#EXTM3U\nhttp://127.0.0.1/secret\n" * 20)
    _expect(path, "not_media")


def test_png(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = 8, 8, "rgb24"
        for packet in stream.encode(av.VideoFrame(8, 8, "rgb24")):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert path.read_bytes().startswith(b"\x89PNG")
    _expect(path, "not_media")


@pytest.mark.parametrize("fixture", ["voice_webm", "video_webm"])
def test_truncated_half(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    source: Path = request.getfixturevalue(fixture)
    data = source.read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: len(data) // 2])
    # What really happens: FFmpeg opens the half file and demuxes the first half without any
    # error, so the probe has to find the cut itself.
    with av.open(str(cut)) as c:
        assert sum(1 for _ in c.demux()) > 10
    _expect(cut, "truncated")


def test_truncated_header_only(voice_webm: Path, tmp_path: Path) -> None:
    cut = tmp_path / "head.webm"
    cut.write_bytes(voice_webm.read_bytes()[:100])
    _expect(cut, "truncated")


def test_truncated_ogg_and_mp4(media_dir: Path, tmp_path: Path) -> None:
    for name, fmt, codec in (("v.ogg", "ogg", "libopus"), ("v.mp4", "mp4", "aac")):
        data = _write_clip(media_dir / name, 2.0, fmt=fmt, audio_codec=codec).read_bytes()
        cut = tmp_path / f"cut-{name}"
        cut.write_bytes(data[: len(data) // 2])
        _expect(cut, "truncated")


def test_ebml_magic_then_garbage(tmp_path: Path) -> None:
    path = tmp_path / "fake.webm"
    path.write_bytes(b"\x1a\x45\xdf\xa3" + b"\x00" * 64)
    with pytest.raises(InvalidMedia) as info:
        probe_media(path)
    assert info.value.code in {"corrupt", "truncated"}


def test_video_without_audio(media_dir: Path) -> None:
    path = _write_clip(media_dir / "silent-film.webm", 1.0, audio_codec=None, video_codec="libvpx")
    _expect(path, "no_audio")


def test_unsupported_codecs(media_dir: Path) -> None:
    pcm = _write_clip(media_dir / "pcm.mkv", 1.0, fmt="matroska", audio_codec="pcm_s16le")
    err = _expect(pcm, "unsupported_codec")
    assert "pcm_s16le" in err.message
    mpeg4 = _write_clip(media_dir / "mpeg4.mp4", 1.0, fmt="mp4", audio_codec="aac", video_codec="mpeg4")
    _expect(mpeg4, "unsupported_codec")


async def test_callable_from_thread(voice_webm: Path) -> None:
    probed = await asyncio.to_thread(probe_media, voice_webm)
    assert probed.audio_codec == "opus"
