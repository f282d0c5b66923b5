"""What the lab's endpoints send and what they write down about what they receive.

``BurstAudio`` is a quiet continuous tone (so no DTX silence is mistaken for a gap) with a loud
100 ms burst once a second; it notes when each burst is handed to the encoder. The receiving
end's ``ReceiveLog`` notes every decoded frame and every burst it hears. All times are
``time.monotonic()``, which every process on this machine shares (namespaces do not change
clocks), so burst sent → burst heard across processes is the mouth-to-ear delay.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import struct
import time
from array import array
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

QUIET, LOUD = 400, 12000
BURST_ON, BURST_OFF = 6000, 2500  # peak thresholds with hysteresis for "a burst started/ended"


def _tone(amplitude: int, freq: float = 440.0) -> bytes:
    # 960 samples of 440 Hz at 48 kHz is 8.8 periods: restart the phase per frame is audible
    # but harmless; what matters is the level.
    samples = [int(amplitude * math.sin(2 * math.pi * freq * i / 48000)) for i in range(960)]
    return struct.pack(f"<{len(samples)}h", *samples)


class BurstAudio(MediaStreamTrack):
    """20 ms mono s16 frames: a quiet tone, with a loud 100 ms burst every ``period`` seconds."""

    kind = "audio"

    def __init__(self, period: float = 1.0) -> None:
        super().__init__()
        self._quiet, self._loud = _tone(QUIET), _tone(LOUD)
        self._per_period = round(period / 0.02)
        self._n = 0
        self._start: float | None = None
        self.bursts_sent: list[float] = []

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        await asyncio.sleep(max(0.0, self._start + self._n * 0.02 - loop.time()))
        phase = self._n % self._per_period
        if phase == 0:
            self.bursts_sent.append(time.monotonic())
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(self._loud if phase < 5 else self._quiet)
        frame.sample_rate = 48000
        frame.pts = self._n * 960
        frame.time_base = Fraction(1, 48000)
        self._n += 1
        return frame


def _peak(frame: av.AudioFrame) -> int:
    samples = array("h")
    data = bytes(frame.planes[0])
    samples.frombytes(data[: len(data) - len(data) % 2])
    return max((abs(s) for s in samples), default=0)


@dataclass
class TrackLog:
    kind: str
    frames: list[float] = field(default_factory=list)  # monotonic time of each decoded frame
    bursts: list[float] = field(default_factory=list)  # audio: monotonic time each burst was heard
    publisher: str | None = None
    loud: bool = False

    def add(self, frame: Any) -> None:
        now = time.monotonic()
        self.frames.append(now)
        if self.kind == "audio" and isinstance(frame, av.AudioFrame):
            peak = _peak(frame)
            if not self.loud and peak >= BURST_ON:
                self.loud = True
                self.bursts.append(now)
            elif self.loud and peak < BURST_OFF:
                self.loud = False


@dataclass
class ProbeLog:
    """Everything one endpoint saw; dumped as JSON for the scenario runner."""

    role: str
    tracks: dict[str, TrackLog] = field(default_factory=dict)  # by mid (+ generation on rejoin)
    bursts_sent: list[float] = field(default_factory=list)
    events: list[tuple[float, str, Any]] = field(default_factory=list)

    def event(self, name: str, detail: Any = None) -> None:
        self.events.append((time.monotonic(), name, detail))

    def track(self, key: str, kind: str) -> TrackLog:
        return self.tracks.setdefault(key, TrackLog(kind))

    async def consume(self, key: str, track: MediaStreamTrack) -> None:
        log = self.track(key, track.kind)
        try:
            while True:
                log.add(await track.recv())
        except MediaStreamError:
            pass

    def dump(self, path: str | Path) -> None:
        body = {
            "role": self.role,
            "tracks": {
                key: {"kind": t.kind, "frames": t.frames, "bursts": t.bursts, "publisher": t.publisher}
                for key, t in self.tracks.items()
            },
            "bursts_sent": self.bursts_sent,
            "events": self.events,
        }
        tmp = f"{path}.tmp"
        with open(tmp, "w") as out:
            json.dump(body, out)
        os.replace(tmp, path)

    def status(self, **extra: Any) -> str:
        """One JSON line for the runner watching stdout."""
        counts = {key: len(t.frames) for key, t in self.tracks.items()}
        return json.dumps({"t": time.monotonic(), "role": self.role, "frames": counts, **extra})


def load(path: str | Path) -> dict[str, Any]:
    with open(path) as source:
        return dict(json.load(source))


__all__ = ["BurstAudio", "ProbeLog", "TrackLog", "asdict", "load"]
