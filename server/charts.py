"""Bars for the server-side SVG charts (web/templates/charts.html): each value with its length as
a share of the largest, so the template only multiplies by its drawing width."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    width: float  # 0..100, share of the largest bar


def scaled(items: Iterable[tuple[str, float]]) -> list[Bar]:
    """Bars in the given order (a time axis keeps its order); values rounded to whole units."""
    pairs = [(label, round(value)) for label, value in items]
    top = max((value for _, value in pairs), default=0) or 1
    return [Bar(label, value, round(100 * value / top, 1)) for label, value in pairs]


def bars(counter: Counter[str]) -> list[Bar]:
    """Bars largest first (a ranking)."""
    return scaled(counter.most_common())
