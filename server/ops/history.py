"""The system page's charts, read back from the sampler's rows.

A chart bucket (an hour of the last day, a day of the last 30) holds minute rows, hourly rows or
both; each figure is the ``minutes``-weighted mean of its rows, so resolution never skews it.
Buckets are cut in Korean time (a "day" is a day at the county office).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.charts import Bar, scaled
from server.ops.models import HallSample, SystemSample
from server.timeutil import to_local


@dataclass(frozen=True)
class Window:
    """A chart's span: ``count`` buckets of ``bucket`` each, ending with the current one."""

    count: int
    bucket: dt.timedelta
    label_format: str

    def starts(self, now: dt.datetime) -> list[dt.datetime]:
        """Each bucket's start (UTC), oldest first, cut on local hour or day boundaries."""
        local = to_local(now)
        if self.bucket >= dt.timedelta(days=1):
            current = local.replace(hour=0, minute=0, second=0, microsecond=0)
        else:
            current = local.replace(minute=0, second=0, microsecond=0)
        return [(current - self.bucket * i).astimezone(dt.UTC) for i in range(self.count - 1, -1, -1)]


DAY = Window(24, dt.timedelta(hours=1), "%H")
MONTH = Window(30, dt.timedelta(days=1), "%m/%d")


@dataclass(frozen=True)
class Charts:
    participants: list[Bar]
    forwarded_kbps: list[Bar]
    kiosks_online: list[Bar]
    weak_minutes: list[Bar]  # one bar per village hall, most weak minutes first
    sampled: bool  # any sample in the window (else the page says so instead of drawing zeros)


def _bucket_of(starts: list[dt.datetime], at: dt.datetime) -> int | None:
    for index in range(len(starts) - 1, -1, -1):
        if at >= starts[index]:
            return index
    return None


@dataclass(frozen=True)
class Figures:
    """The whole server's figures at one sampled minute (or hour)."""

    minutes: int
    rooms: float
    participants: float
    forwarded_bps: float
    kiosks_online: float


def merge_workers(rows: Sequence[SystemSample]) -> dict[dt.datetime, Figures]:
    """One :class:`Figures` per ``at``: each worker writes its own row for its own rooms, so rooms,
    participants and bitrate add up across the rows of one ``at``; the kiosks online are the same
    fleet seen by each worker (the largest count, not a sum)."""
    merged: dict[dt.datetime, Figures] = {}
    for row in rows:
        seen = merged.get(row.at, Figures(0, 0.0, 0.0, 0.0, 0.0))
        merged[row.at] = Figures(
            minutes=max(seen.minutes, row.minutes),
            rooms=seen.rooms + row.rooms,
            participants=seen.participants + row.participants,
            forwarded_bps=seen.forwarded_bps + row.forwarded_bps,
            kiosks_online=max(seen.kiosks_online, row.kiosks_online),
        )
    return merged


async def charts(session: AsyncSession, window: Window, now: dt.datetime) -> Charts:
    starts = window.starts(now)
    since = starts[0]
    rows = (await session.scalars(select(SystemSample).where(SystemSample.at >= since))).all()
    sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])  # minutes, p, bps, kiosks
    for at, figures in merge_workers(rows).items():
        index = _bucket_of(starts, at)
        if index is None:
            continue
        totals = sums[index]
        totals[0] += figures.minutes
        totals[1] += figures.participants * figures.minutes
        totals[2] += figures.forwarded_bps * figures.minutes
        totals[3] += figures.kiosks_online * figures.minutes
    labels = [to_local(start).strftime(window.label_format) for start in starts]

    def series(position: int, scale: float = 1.0) -> list[Bar]:
        return scaled(
            (label, sums[i][position] / sums[i][0] / scale if sums[i][0] else 0.0)
            for i, label in enumerate(labels)
        )

    halls = (await session.scalars(select(HallSample).where(HallSample.at >= since))).all()
    weak: dict[str, float] = defaultdict(float)
    for hall in halls:
        weak[hall.hall] += hall.weak_minutes
    ranked = sorted(weak.items(), key=lambda item: (-item[1], item[0]))
    return Charts(
        participants=series(1),
        forwarded_kbps=series(2, 1000.0),
        kiosks_online=series(3),
        weak_minutes=scaled(ranked),
        sampled=bool(rows),
    )
