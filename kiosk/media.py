"""Media sources for the headless kiosk: a generated test pattern and tone, or real devices."""

from __future__ import annotations

import asyncio
import math
import struct
from fractions import Fraction

import av
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError

WIDTH, HEIGHT, FPS = 640, 360, 15


class PacedVideo(MediaStreamTrack):
    """A generated camera: a fresh yuv420p frame every 1/fps s on the loop's clock, grey chroma.

    Subclasses draw the luma plane of frame ``n``; the kiosk's test pattern and the tests' and
    benchmarks' sources differ only there."""

    kind = "video"

    def __init__(self, width: int = WIDTH, height: int = HEIGHT, fps: int = FPS) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._n = 0
        self._start: float | None = None
        self._chroma = bytes([128]) * ((width // 2) * (height // 2))

    def picture(self, n: int) -> bytes:
        """The luma plane (width x height bytes) of frame ``n``."""
        raise NotImplementedError

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        await asyncio.sleep(max(0.0, self._start + self._n / self.fps - loop.time()))
        # A fresh frame each time: aiortc marks frames it forces to keyframes, which must not stick.
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        frame.planes[0].update(self.picture(self._n))
        frame.planes[1].update(self._chroma)
        frame.planes[2].update(self._chroma)
        frame.pts = self._n * (90000 // self.fps)
        frame.time_base = Fraction(1, 90000)
        self._n += 1
        return frame


class TestPatternVideo(PacedVideo):
    """640x360 at 15 fps: colour bars with a moving block, so the encoder sends real deltas."""

    def __init__(self) -> None:
        super().__init__()
        bars = (235, 210, 170, 145, 106, 81, 41, 16)
        width = WIDTH // len(bars)
        self._row = b"".join(bytes([luma]) * width for luma in bars)

    def picture(self, n: int) -> bytes:
        x = (n * 8) % (WIDTH - 80)
        moving = bytearray(self._row)
        moving[x : x + 80] = bytes([128]) * 80
        return self._row * (HEIGHT - 80) + bytes(moving) * 80


class ToneAudio(MediaStreamTrack):
    """A sine tone in 20 ms mono s16 frames (amplitude 0 = silence); quiet 440 Hz by default."""

    kind = "audio"

    def __init__(self, amplitude: int = 3000, freq: float = 440.0) -> None:
        super().__init__()
        samples = [int(amplitude * math.sin(2 * math.pi * freq * i / 48000)) for i in range(960)]
        self._data = struct.pack(f"<{len(samples)}h", *samples)
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        await asyncio.sleep(max(0.0, self._start + self._n * 0.02 - loop.time()))
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(self._data)
        frame.sample_rate = 48000
        frame.pts = self._n * 960
        frame.time_base = Fraction(1, 48000)
        self._n += 1
        return frame


def open_source(source: str) -> tuple[MediaStreamTrack | None, MediaStreamTrack | None]:
    """(audio, video) tracks: ``testsrc`` for the generated pattern and tone, or a v4l2 camera
    device (``/dev/video0``) with the default ALSA microphone."""
    if source == "testsrc":
        return ToneAudio(), TestPatternVideo()
    camera = MediaPlayer(
        source, format="v4l2", options={"video_size": f"{WIDTH}x{HEIGHT}", "framerate": str(FPS)}
    )
    microphone = MediaPlayer("default", format="alsa", options={"channels": "1"})
    return microphone.audio, camera.video
