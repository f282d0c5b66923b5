"""What a finished recording is, as plain values: made by the SFU's recorder
(server/sfu/recording.py), registered by the meetings domain (server/meetings).

They live here, not in server/sfu, because the domain must not import the media plane
(tests/test_import_boundaries.py) and both sides need the same shape: a copy in the domain
that the hub converts field by field would say the same thing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class RecordedFile:
    """One participant's finished recording."""

    participant_id: str
    path: Path
    started_at: datetime
    ended_at: datetime
    #: Seconds between ``started_at`` and ``ended_at`` (the file's time line).
    duration: float
    has_audio: bool
    has_video: bool


@dataclass(frozen=True)
class Mark:
    """A chapter-like mark (e.g. an agenda item starts)."""

    label: str
    at: datetime
    #: Seconds since the session started.
    offset: float
