"""From the probes' records to the figures issue #7 asks for, over a time window.

- delivered fps: decoded video frames in the window / window length
- longest freeze: the longest interval without a decoded video frame, the window's edges included
  (a stream that stops for good is one long freeze, not a short list of frames)
- longest audio gap: the same for decoded audio frames (20 ms each when all is well)
- mouth-to-ear: burst heard − the latest burst sent before it, median over the window
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def _within(times: Iterable[float], start: float, end: float) -> list[float]:
    ordered = sorted(times)
    return ordered[bisect_left(ordered, start) : bisect_right(ordered, end)]


def longest_gap(times: Iterable[float], start: float, end: float) -> float:
    points = [start, *_within(times, start, end), end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


def mouth_to_ear(sent: list[float], heard: list[float], start: float, end: float) -> float | None:
    delays = []
    ordered = sorted(sent)
    for t in _within(heard, start, end):
        i = bisect_right(ordered, t)
        if i:
            delays.append(t - ordered[i - 1])
    return statistics.median(delays) if delays else None


@dataclass(frozen=True)
class Direction:
    """What one end received from the other over a window."""

    fps: float
    max_freeze_s: float
    max_audio_gap_s: float
    mouth_to_ear_s: float | None
    video_frames: int
    audio_frames: int

    def row(self) -> str:
        m2e = "-" if self.mouth_to_ear_s is None else f"{self.mouth_to_ear_s * 1000:.0f}"
        return (
            f"{self.fps:5.1f} fps  freeze {self.max_freeze_s:5.2f} s  "
            f"audio gap {self.max_audio_gap_s:5.2f} s  m2e {m2e} ms"
        )


def direction(
    tracks: dict[str, Any],
    sent_bursts: list[float],
    start: float,
    end: float,
    *,
    publisher: str | None = None,
) -> Direction:
    """Merge the receiving end's tracks (from ``publisher`` if the keys name one) per kind."""
    video: list[float] = []
    audio: list[float] = []
    heard: list[float] = []
    for key, track in tracks.items():
        if publisher is not None and not key.startswith(f"{publisher}/"):
            continue
        if track["kind"] == "video":
            video += track["frames"]
        else:
            audio += track["frames"]
            heard += track["bursts"]
    window = max(end - start, 1e-9)
    return Direction(
        fps=len(_within(video, start, end)) / window,
        max_freeze_s=longest_gap(video, start, end),
        max_audio_gap_s=longest_gap(audio, start, end),
        mouth_to_ear_s=mouth_to_ear(sent_bursts, heard, start, end),
        video_frames=len(_within(video, start, end)),
        audio_frames=len(_within(audio, start, end)),
    )


def events(
    record: dict[str, Any], name: str, start: float = float("-inf"), end: float = float("inf")
) -> list[Any]:
    return [(t, detail) for t, ev, detail in record["events"] if ev == name and start <= t <= end]


def first_after(times: Iterable[float], moment: float) -> float | None:
    later = [t for t in times if t >= moment]
    return min(later) if later else None


def frames_of(tracks: dict[str, Any], kind: str, publisher: str | None = None) -> list[float]:
    out: list[float] = []
    for key, track in tracks.items():
        if track["kind"] == kind and (publisher is None or key.startswith(f"{publisher}/")):
            out += track["frames"]
    return sorted(out)
