"""The hall's loudspeaker for the headless kiosk: the received voices (up to 3 audio slots from
the SFU) are mixed into one stream and written to an ALSA device or a file."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from array import array
from fractions import Fraction

import av
import av.error
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

log = logging.getLogger(__name__)

RATE = 48000
TICK = 960  # 20 ms
# Half a second of backlog per voice at most: a late voice is dropped, never delayed further.
MAX_BACKLOG = RATE // 2


class SpeakerMixer:
    """``target`` is an ALSA device name (``default``, ``hw:0``) or a file path (``.wav``)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._buffers: dict[int, collections.deque[array[int]]] = {}
        self._pending: dict[int, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._container: av.container.OutputContainer | None = None
        self._stream: av.AudioStream | None = None
        self.samples_written = 0

    def _open(self) -> None:
        if self.target.endswith(".wav"):
            self._container = av.open(self.target, "w", format="wav")
        else:
            self._container = av.open(self.target, "w", format="alsa")
        self._stream = self._container.add_stream("pcm_s16le", rate=RATE, layout="mono")

    def add(self, track: MediaStreamTrack) -> None:
        key = id(track)
        self._buffers[key] = collections.deque()
        self._pending[key] = 0
        self._tasks.append(asyncio.create_task(self._feed(key, track)))

    async def _feed(self, key: int, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):
                    continue
                for out in resampler.resample(frame):
                    chunk = array("h", bytes(out.planes[0])[: out.samples * 2])
                    self._buffers[key].append(chunk)
                    self._pending[key] += len(chunk)
                    while self._pending[key] > MAX_BACKLOG:
                        self._pending[key] -= len(self._buffers[key].popleft())

    def _take(self, key: int) -> array[int]:
        out = array("h", bytes(TICK * 2))
        filled = 0
        buffer = self._buffers[key]
        while filled < TICK and buffer:
            chunk = buffer.popleft()
            take = min(TICK - filled, len(chunk))
            out[filled : filled + take] = chunk[:take]
            if take < len(chunk):
                buffer.appendleft(chunk[take:])
            filled += take
            self._pending[key] -= take
        return out

    async def run(self, stop: asyncio.Event) -> None:
        """Every 20 ms: sum one tick of each voice (clipped) and write it."""
        try:
            await asyncio.to_thread(self._open)
        except (av.error.FFmpegError, OSError):
            # The meeting goes on without sound rather than failing; county IT sees it in the log.
            log.exception("loudspeaker unavailable", extra={"target": self.target})
            await stop.wait()
            return
        loop = asyncio.get_running_loop()
        start, ticks = loop.time(), 0
        try:
            while not stop.is_set():
                voices = [self._take(key) for key in list(self._buffers)]
                mixed = array("h", (max(-32768, min(32767, sum(v))) for v in zip(*voices, strict=True)))
                if not voices:
                    mixed = array("h", bytes(TICK * 2))
                frame = av.AudioFrame(format="s16", layout="mono", samples=TICK)
                frame.planes[0].update(mixed.tobytes())
                frame.sample_rate = RATE
                frame.pts = ticks * TICK
                frame.time_base = Fraction(1, RATE)
                await asyncio.to_thread(self._write, frame)
                ticks += 1
                await asyncio.sleep(max(0.0, start + ticks * TICK / RATE - loop.time()))
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.to_thread(self._close)

    def _write(self, frame: av.AudioFrame) -> None:
        assert self._container is not None and self._stream is not None
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.samples_written += frame.samples

    def _close(self) -> None:
        if self._container is None or self._stream is None:
            return
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
