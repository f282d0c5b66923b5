"""Server-side check of a resident's recorded voice or video message (up to 3 minutes).

``probe_media`` is a plain blocking function; call it from async code with
``await asyncio.to_thread(probe_media, path, max_bytes=...)``.

Why it is built this way:

* The container is recognised from its magic bytes and then opened with that demuxer only. Letting
  FFmpeg auto-detect untrusted input would also let it pick playlist-style demuxers (HLS, concat)
  that read other local files or URLs.
* Browsers' MediaRecorder writes WebM without a duration header (it streams), so the duration is
  measured from the demuxed packets (last pts + duration, times the time base), and the header is
  only used to detect a file that ends before its header says it should.
* FFmpeg's demuxers stop silently at a cut-off end of file (the "file ended prematurely" message goes
  to libav's log, which PyAV silences and which we must not turn on process-wide). So truncation
  is detected by walking the container structure ourselves: EBML elements for WebM/Matroska, pages
  for Ogg, top-level boxes for MP4. An element or page running past the end of the file means the
  upload was cut.
* A few audio packets are decoded to catch files whose headers are fine but whose payload is junk.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av
import av.error

logger = logging.getLogger(__name__)

MAX_DURATION_S = 180.0
# The kiosk recorder stops at 180 s, but its last audio frame (20 ms for Opus) and container
# timestamp rounding can overshoot slightly; half a second absorbs that without admitting real abuse.
DURATION_SLACK_S = 0.5
DEFAULT_MAX_BYTES = 40 * 1024 * 1024
AUDIO_CODECS = frozenset({"opus", "aac", "vorbis"})
VIDEO_CODECS = frozenset({"vp8", "vp9", "h264", "av1"})
# Packets to decode as a payload sanity check; enough to cross Opus/Vorbis header packets.
_DECODE_CHECK_PACKETS = 8
# A header duration this much longer than the packets we could read means the file was cut.
_TRUNCATION_TOLERANCE_S = 1.0


class InvalidMedia(Exception):
    """The upload is not an acceptable recording. ``code`` is stable for clients and translations."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class ProbedMedia:
    container: str  # "webm", "matroska", "ogg" or "mp4"
    audio_codec: str
    video_codec: str | None
    duration_s: float
    width: int | None
    height: int | None
    size_bytes: int


# --- container sniffing and structure checks -------------------------------------------------

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_HEADER_ID = 0x1A45DFA3
_EBML_DOCTYPE_ID = 0x4282
_SEGMENT_ID = 0x18538067
_CLUSTER_ID = 0x1F43B675
# Master elements whose children we walk in sequence (their size may be "unknown" when streamed).
_ENTERED_IDS = frozenset({_SEGMENT_ID, _CLUSTER_ID})

# Demuxer to force for each sniffed family.
_DEMUXER = {"matroska": "matroska", "ogg": "ogg", "mp4": "mp4"}


def _sniff(head: bytes) -> str | None:
    if head.startswith(_EBML_MAGIC):
        return "matroska"
    if head.startswith(b"OggS"):
        return "ogg"
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "mp4"
    return None


def _read_vint(f: BinaryIO, keep_marker: bool) -> tuple[int, int, bool] | None:
    """Read an EBML variable-length integer: (value, length, is_unknown_size); None at EOF."""
    first = f.read(1)
    if not first:
        return None
    b0 = first[0]
    if b0 == 0:
        raise InvalidMedia("corrupt", "the recording's WebM structure is damaged")
    length = 8 - b0.bit_length() + 1
    rest = f.read(length - 1)
    if len(rest) < length - 1:
        return None
    value = b0 if keep_marker else b0 & ((1 << (8 - length)) - 1)
    all_ones = (b0 & ((1 << (8 - length)) - 1)) == (1 << (8 - length)) - 1
    for byte in rest:
        value = (value << 8) | byte
        all_ones = all_ones and byte == 0xFF
    return value, length, all_ones and not keep_marker


def _truncated() -> InvalidMedia:
    return InvalidMedia("truncated", "the recording is incomplete (the upload was cut off)")


def _walk_ebml(f: BinaryIO, size: int) -> str:
    """Check that no EBML element runs past the end of the file; return the DocType."""
    doctype = "matroska"
    pos = 0
    while pos < size:
        f.seek(pos)
        elem_id = _read_vint(f, keep_marker=True)
        elem_size = _read_vint(f, keep_marker=False) if elem_id is not None else None
        if elem_id is None or elem_size is None:
            raise _truncated()
        data_start = f.tell()
        ident, (length, _, unknown) = elem_id[0], elem_size
        if ident in _ENTERED_IDS:
            if not unknown and data_start + length > size:
                raise _truncated()
            pos = data_start
            continue
        if unknown:
            raise InvalidMedia("corrupt", "the recording's WebM structure is damaged")
        end = data_start + length
        if end > size:
            raise _truncated()
        if ident == _EBML_HEADER_ID:
            doctype = _read_doctype(f, data_start, end) or doctype
        pos = end
    return doctype


def _read_doctype(f: BinaryIO, start: int, end: int) -> str | None:
    pos = start
    while pos < end:
        f.seek(pos)
        elem_id = _read_vint(f, keep_marker=True)
        elem_size = _read_vint(f, keep_marker=False) if elem_id is not None else None
        if elem_id is None or elem_size is None:
            return None
        data_start = f.tell()
        if elem_id[0] == _EBML_DOCTYPE_ID:
            return f.read(elem_size[0]).decode("ascii", "replace").strip("\x00")
        pos = data_start + elem_size[0]
    return None


def _walk_ogg(f: BinaryIO, size: int) -> None:
    """Every page must be complete and the last one must carry the end-of-stream flag."""
    pos = 0
    last_flags = 0
    while pos < size:
        f.seek(pos)
        header = f.read(27)
        if len(header) < 27:
            raise _truncated()
        if header[:4] != b"OggS":
            raise InvalidMedia("corrupt", "the recording's Ogg structure is damaged")
        last_flags = header[5]
        segments = f.read(header[26])
        if len(segments) < header[26]:
            raise _truncated()
        pos += 27 + header[26] + sum(segments)
        if pos > size:
            raise _truncated()
    if not last_flags & 0x04:
        raise _truncated()


def _walk_mp4(f: BinaryIO, size: int) -> None:
    """Top-level boxes must fit in the file, and the index (moov) must be present."""
    pos = 0
    seen_moov = False
    while pos < size:
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            raise _truncated()
        box_size, box_type = struct.unpack(">I4s", header)
        if box_size == 1:
            large = f.read(8)
            if len(large) < 8:
                raise _truncated()
            box_size = struct.unpack(">Q", large)[0]
        elif box_size == 0:
            box_size = size - pos  # "extends to end of file"
        if box_size < 8:
            raise InvalidMedia("corrupt", "the recording's MP4 structure is damaged")
        if pos + box_size > size:
            raise _truncated()
        seen_moov = seen_moov or box_type == b"moov"
        pos += box_size
    if not seen_moov:
        raise _truncated()


def _check_structure(path: str | os.PathLike[str], family: str, size: int) -> str:
    """Walk the container structure; return the container label to report."""
    with open(path, "rb") as f:
        if family == "matroska":
            doctype = _walk_ebml(f, size)
            return "webm" if doctype == "webm" else "matroska"
        if family == "ogg":
            _walk_ogg(f, size)
            return "ogg"
        _walk_mp4(f, size)
        return "mp4"


# --- probing ----------------------------------------------------------------------------------


def _codec_name(stream: av.stream.Stream) -> str:
    # canonical_name is the codec id's name ("av1"), not the decoder's ("libdav1d").
    codec = stream.codec_context.codec
    return str(getattr(codec, "canonical_name", None) or codec.name)


def probe_media(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_duration_s: float = MAX_DURATION_S,
) -> ProbedMedia:
    """Validate a recorded message and describe it, or raise ``InvalidMedia``.

    Codes: ``empty`` (no bytes or no duration), ``too_large``, ``not_media`` (not a container we
    recognise), ``truncated``, ``corrupt``, ``no_audio``, ``unsupported_codec``, ``too_long``.
    """
    size = os.stat(path).st_size
    if size == 0:
        raise InvalidMedia("empty", "the file is empty")
    if size > max_bytes:
        raise InvalidMedia("too_large", f"the recording is {size} bytes; at most {max_bytes} are accepted")
    with open(path, "rb") as f:
        family = _sniff(f.read(12))
    if family is None:
        raise InvalidMedia("not_media", "the file is not a WebM, Ogg or MP4 recording")
    label = _check_structure(path, family, size)

    try:
        container = av.open(os.fspath(path), mode="r", format=_DEMUXER[family])
    except (av.error.FFmpegError, OSError) as exc:
        logger.info("demuxer refused %s upload: %s", family, exc)
        raise InvalidMedia("corrupt", "the recording could not be read") from exc
    with container:
        return _probe_open(container, label, size, max_duration_s)


def _probe_open(
    container: av.container.InputContainer, label: str, size: int, max_duration_s: float
) -> ProbedMedia:
    audio_streams = list(container.streams.audio)
    video_streams = list(container.streams.video)
    if not audio_streams:
        raise InvalidMedia("no_audio", "the recording has no sound track")
    audio, video = audio_streams[0], (video_streams[0] if video_streams else None)
    audio_codec = _codec_name(audio)
    if audio_codec not in AUDIO_CODECS:
        raise InvalidMedia("unsupported_codec", f"audio codec {audio_codec} is not accepted")
    video_codec = _codec_name(video) if video is not None else None
    if video is not None and video_codec not in VIDEO_CODECS:
        raise InvalidMedia("unsupported_codec", f"video codec {video_codec} is not accepted")

    limit = max_duration_s + DURATION_SLACK_S
    start: Fraction | None = None
    end: Fraction | None = None
    audio_packets = 0
    decoded = 0
    wanted = [audio] + ([video] if video is not None else [])
    try:
        for packet in container.demux(wanted):
            if packet.is_corrupt:
                raise InvalidMedia("corrupt", "the recording contains damaged data")
            if packet.pts is None or packet.time_base is None:
                continue  # flush packets at end of stream carry no timestamp
            if packet.stream.index == audio.index:
                audio_packets += 1
                if decoded < _DECODE_CHECK_PACKETS:
                    audio.decode(packet)
                    decoded += 1
            packet_start = packet.pts * packet.time_base
            packet_end = (packet.pts + (packet.duration or 0)) * packet.time_base
            start = packet_start if start is None else min(start, packet_start)
            end = packet_end if end is None else max(end, packet_end)
            if end - start > limit:
                # Stop early: no need to read the rest of an over-long file.
                raise InvalidMedia("too_long", f"the recording is longer than {max_duration_s:g} seconds")
    except av.error.FFmpegError as exc:
        logger.info("demuxing/decoding failed: %s", exc)
        raise InvalidMedia("corrupt", "the recording contains damaged data") from exc

    if audio_packets == 0:
        raise InvalidMedia("no_audio", "the recording's sound track is empty")
    measured = float(end - start) if start is not None and end is not None else 0.0
    header = container.duration / 1_000_000 if container.duration is not None else None
    if header is not None and header - measured > _TRUNCATION_TOLERANCE_S:
        raise _truncated()
    if measured <= 0:
        raise InvalidMedia("empty", "the recording has no duration")

    width = height = None
    if video is not None:
        width = video.width or None
        height = video.height or None
    return ProbedMedia(
        container=label,
        audio_codec=audio_codec,
        video_codec=video_codec,
        duration_s=round(measured, 3),
        width=width,
        height=height,
        size_bytes=size,
    )
