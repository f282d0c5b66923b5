"""Pre-encodes the looping synthetic VP8 clip the bench publishers send."""

from __future__ import annotations

import os
from fractions import Fraction

WIDTH, HEIGHT, FPS = 640, 360, 15


def encode_clip(frames: int = 30, bitrate: int = 500_000) -> list[tuple[bytes, bool]]:
    """``frames`` frames of 640x360 VP8 at ``bitrate`` (aiortc's default 500 kbps),
    one keyframe first. The picture is a noisy texture with a moving bar, so the
    encoder spends its whole budget, like a camera would, and frames span
    several RTP packets."""
    import av

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = WIDTH, HEIGHT
    codec.pix_fmt = "yuv420p"
    codec.bit_rate = bitrate
    codec.framerate = Fraction(FPS, 1)
    codec.time_base = Fraction(1, FPS)
    codec.gop_size = 3000
    codec.qmin = 2
    codec.qmax = 56
    codec.options = {
        "bufsize": str(bitrate),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "undershoot-pct": "100",
        "overshoot-pct": "15",
    }
    rnd = bytes(96 + (b & 0x1F) for b in os.urandom(WIDTH * HEIGHT))
    chroma = bytes([128]) * ((WIDTH // 2) * (HEIGHT // 2))
    out: list[tuple[bytes, bool]] = []
    for n in range(frames + 8):
        shift = (n * 7) % WIDTH
        luma = bytearray(rnd[shift * HEIGHT :] + rnd[: shift * HEIGHT])
        x = (n * 16) % (WIDTH - 64)
        for y in range(HEIGHT // 2, HEIGHT):
            luma[y * WIDTH + x : y * WIDTH + x + 64] = b"\x10" * 64
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(bytes(luma))
        frame.planes[1].update(chroma)
        frame.planes[2].update(chroma)
        frame.pts = n
        frame.time_base = Fraction(1, FPS)
        if n == 0:
            frame.pict_type = av.video.frame.PictureType.I
        for pkt in codec.encode(frame):
            out.append((bytes(pkt), bool(pkt.is_keyframe)))
    for pkt in codec.encode(None):
        out.append((bytes(pkt), bool(pkt.is_keyframe)))
    return out[:frames]
