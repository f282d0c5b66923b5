"""Retention: what Maeul keeps, for how long, and the daily job that erases what is due.

Four periods (``Settings.retention_*_days``, 0 = keep forever; the law behind each default is in
docs/operations.md):

- meeting recordings, counted from the recording's start;
- residents' recorded messages and photos (``petition_media``), from the request's closing;
- residents' names and phones on a closed request, from its closing (the request stays, without them);
- the audit trail of closed requests (``petition_events``) and this job's own log, from the event.

A legal hold (``retention_hold``: its reason) on a request or a meeting stops all of it for them.

Files go in two phases, so an interrupted run loses nothing and half-deletes nothing: first the
rows are marked (``purged_at``) in one transaction, then each marked file is deleted and only then
its row. A run that stops halfway leaves marked rows; the next run (or a re-run) finishes them.
Every run writes one ``ops_retention_runs`` row saying what it erased (ids and counts, no
personal data).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import JSON, Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from server.background import FailureStreak, finish_or_cancel
from server.config import Settings
from server.db import Base, transaction, utcnow
from server.errors import BadRequest, NotFound
from server.meetings.models import Meeting, Recording
from server.petitions.models import Petition, PetitionEvent, PetitionMedia

log = logging.getLogger(__name__)

DAY = dt.timedelta(days=1)
PREVIEW_DAYS = 30
HOLD_REASON_MAX = 500
BATCH = 100
# The job runs once a day; after a failure it retries sooner (a database outage at 03:00 should
# not postpone a day's erasures to the next day).
RUN_EVERY = DAY
RETRY_FIRST_SECONDS = 60.0
RETRY_CAP_SECONDS = 3600.0
STOP_SECONDS = 10.0
# The first run waits a little after start-up: a restart loop must not purge in a loop, and the
# start-up's own work (migrations, presences) comes first.
FIRST_RUN_DELAY_SECONDS = 300.0

Sessions = async_sessionmaker[AsyncSession]
RETENTION = web.AppKey("retention_job", FailureStreak)


class RetentionRun(Base):
    """One run of the purge: when, and what it erased (``summary``: counts and row ids)."""

    __tablename__ = "ops_retention_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@dataclass(frozen=True)
class Policy:
    recording_days: int
    message_days: int
    contact_days: int
    audit_days: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            settings.retention_recording_days,
            settings.retention_message_days,
            settings.retention_contact_days,
            settings.retention_audit_days,
        )


def _cutoff(days: int, when: dt.datetime) -> dt.datetime | None:
    """What started (or closed) before this is due at ``when``; None: kept forever."""
    return when - days * DAY if days > 0 else None


def _recordings_due(cutoff: dt.datetime) -> Select[int]:
    return (
        select(Recording.id)
        .join(Meeting, Meeting.id == Recording.meeting_id)
        .where(Recording.started_at < cutoff, Meeting.retention_hold.is_(None))
    )


def _messages_due(cutoff: dt.datetime) -> Select[int]:
    return (
        select(PetitionMedia.id)
        .join(Petition, Petition.id == PetitionMedia.petition_id)
        .where(Petition.closed_at < cutoff, Petition.retention_hold.is_(None))
    )


def _contacts_due(cutoff: dt.datetime) -> Select[int]:
    return select(Petition.id).where(
        Petition.closed_at < cutoff, Petition.retention_hold.is_(None), Petition.contact_purged_at.is_(None)
    )


def _events_due(cutoff: dt.datetime) -> Select[int]:
    return (
        select(PetitionEvent.id)
        .join(Petition, Petition.id == PetitionEvent.petition_id)
        .where(PetitionEvent.at < cutoff, Petition.closed_at.is_not(None), Petition.retention_hold.is_(None))
    )


async def _mark(session: AsyncSession, policy: Policy, now: dt.datetime, run: RetentionRun) -> dict[str, Any]:
    """Phase one, in the caller's transaction: mark files, erase contacts and old audit rows."""
    done: dict[str, Any] = {"contacts": [], "audit_events": 0, "runs_removed": 0}
    if (cutoff := _cutoff(policy.message_days, now)) is not None:
        await session.execute(
            update(PetitionMedia)
            .where(PetitionMedia.id.in_(_messages_due(cutoff)), PetitionMedia.purged_at.is_(None))
            .values(purged_at=now)
            .execution_options(synchronize_session=False)
        )
    if (cutoff := _cutoff(policy.recording_days, now)) is not None:
        await session.execute(
            update(Recording)
            .where(Recording.id.in_(_recordings_due(cutoff)), Recording.purged_at.is_(None))
            .values(purged_at=now)
            .execution_options(synchronize_session=False)
        )
    if (cutoff := _cutoff(policy.contact_days, now)) is not None:
        ids = list((await session.scalars(_contacts_due(cutoff))).all())
        if ids:
            await session.execute(
                update(Petition)
                .where(Petition.id.in_(ids), Petition.contact_purged_at.is_(None))
                .values(resident_name=None, resident_phone="", contact_purged_at=now)
                .execution_options(synchronize_session=False)
            )
        done["contacts"] = ids
    if (cutoff := _cutoff(policy.audit_days, now)) is not None:
        events = await session.execute(
            delete(PetitionEvent)
            .where(PetitionEvent.id.in_(_events_due(cutoff)))
            .execution_options(synchronize_session=False)
        )
        runs = await session.execute(
            delete(RetentionRun)
            .where(RetentionRun.started_at < cutoff, RetentionRun.id != run.id)
            .execution_options(synchronize_session=False)
        )
        done["audit_events"] = int(events.rowcount or 0)  # type: ignore[attr-defined]
        done["runs_removed"] = int(runs.rowcount or 0)  # type: ignore[attr-defined]
    return done


def _unlink_inside(root: Path, relative: str) -> None:
    """Delete a stored file; a name that would leave ``root`` is refused (never deletes elsewhere)."""
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise ValueError(f"stored path outside {base}: {relative!r}")
    path.unlink(missing_ok=True)  # missing: a previous run deleted it and stopped before the row


async def _delete_marked_media(sessionmaker: Sessions, media_dir: Path) -> list[int]:
    gone: list[int] = []
    while True:
        async with transaction(sessionmaker) as session:
            rows = (
                await session.execute(
                    select(PetitionMedia.id, PetitionMedia.storage_name)
                    .join(Petition, Petition.id == PetitionMedia.petition_id)
                    .where(PetitionMedia.purged_at.is_not(None), Petition.retention_hold.is_(None))
                    .order_by(PetitionMedia.id)
                    .limit(BATCH)
                )
            ).all()
            for media_id, name in rows:
                await asyncio.to_thread(_unlink_inside, media_dir, name)
                await session.execute(delete(PetitionMedia).where(PetitionMedia.id == media_id))
            gone += [r[0] for r in rows]
        if len(rows) < BATCH:
            return gone


async def _delete_marked_recordings(sessionmaker: Sessions, data_dir: Path) -> list[int]:
    gone: list[int] = []
    while True:
        async with transaction(sessionmaker) as session:
            rows = (
                await session.execute(
                    select(Recording.id, Recording.path)
                    .join(Meeting, Meeting.id == Recording.meeting_id)
                    .where(Recording.purged_at.is_not(None), Meeting.retention_hold.is_(None))
                    .order_by(Recording.id)
                    .limit(BATCH)
                )
            ).all()
            for recording_id, path in rows:
                await asyncio.to_thread(_unlink_inside, data_dir, path)
                await session.execute(delete(Recording).where(Recording.id == recording_id))
            gone += [r[0] for r in rows]
        if len(rows) < BATCH:
            return gone


async def purge(sessionmaker: Sessions, settings: Settings, now: dt.datetime | None = None) -> dict[str, Any]:
    """Erase what is due at ``now`` (tests move the clock); returns the run's summary."""
    now = now or utcnow()
    policy = Policy.from_settings(settings)
    async with transaction(sessionmaker) as session:
        run = RetentionRun(started_at=now, summary={})
        session.add(run)
        await session.flush()
        summary = await _mark(session, policy, now, run)
        run.summary = {**summary, "finished": False}
        run_id = run.id
    # Phase two: the database says these files go; delete each, then its row.
    summary["messages"] = await _delete_marked_media(sessionmaker, settings.media_dir)
    summary["recordings"] = await _delete_marked_recordings(sessionmaker, settings.data_dir)
    async with transaction(sessionmaker) as session:
        finished = await session.get(RetentionRun, run_id)
        if finished is not None:
            finished.finished_at = utcnow()
            finished.summary = {**summary, "finished": True}
    log.info(
        "retention run done",
        extra={
            "contacts": len(summary["contacts"]),
            "messages": len(summary["messages"]),
            "recordings": len(summary["recordings"]),
            "audit_events": summary["audit_events"],
        },
    )
    return summary


@dataclass(frozen=True)
class DueItem:
    kind: str  # recording | message | contact | audit
    target: str  # what it belongs to: a receipt number or a meeting's title
    target_kind: str  # petition | meeting
    target_id: int
    due_at: dt.datetime


async def preview(
    session: AsyncSession, settings: Settings, now: dt.datetime, days: int = PREVIEW_DAYS
) -> list[DueItem]:
    """What the job will erase by ``now + days`` (already due included), soonest first."""
    policy = Policy.from_settings(settings)
    until = now + days * DAY
    items: list[DueItem] = []
    if (cutoff := _cutoff(policy.recording_days, until)) is not None:
        rows = await session.execute(
            select(Recording.started_at, Meeting.id, Meeting.title)
            .join(Meeting, Meeting.id == Recording.meeting_id)
            .where(Recording.id.in_(_recordings_due(cutoff)))
        )
        items += [
            DueItem("recording", title, "meeting", mid, at + policy.recording_days * DAY)
            for at, mid, title in rows
        ]
    for kind, days_kept, due in (
        ("message", policy.message_days, _messages_due),
        ("contact", policy.contact_days, _contacts_due),
        ("audit", policy.audit_days, _events_due),
    ):
        if (cutoff := _cutoff(days_kept, until)) is None:
            continue
        query = select(Petition.id, Petition.receipt_no, Petition.closed_at).distinct()
        if kind == "message":
            query = query.join(PetitionMedia).where(PetitionMedia.id.in_(due(cutoff)))
        elif kind == "audit":
            query = query.join(PetitionEvent).where(PetitionEvent.id.in_(due(cutoff)))
        else:
            query = query.where(Petition.id.in_(due(cutoff)))
        for pid, receipt_no, closed_at in await session.execute(query):
            if closed_at is not None:  # always: only closed requests are due
                items.append(DueItem(kind, receipt_no, "petition", pid, closed_at + days_kept * DAY))
    return sorted(items, key=lambda i: (i.due_at, i.kind, i.target_id))


async def set_hold(session: AsyncSession, target_kind: str, target_id: int, reason: str | None) -> None:
    """Place (``reason``) or lift (None) a legal hold. Placing one also takes back the marks of a
    purge that has not deleted the files yet, so nothing of a held request or meeting goes."""
    if reason is not None:
        reason = reason.strip()
        if not reason or len(reason) > HOLD_REASON_MAX:
            raise BadRequest(
                f"a legal hold needs a reason of 1 to {HOLD_REASON_MAX} characters",
                code="hold_reason_invalid",
            )
    model: type[Petition] | type[Meeting] = Petition if target_kind == "petition" else Meeting
    if target_kind not in ("petition", "meeting"):
        raise BadRequest("a legal hold is placed on a request or a meeting", code="hold_target_invalid")
    found = await session.execute(update(model).where(model.id == target_id).values(retention_hold=reason))
    if not found.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"no {target_kind} {target_id}")
    if reason is not None:
        files: Any = PetitionMedia if model is Petition else Recording
        owner = PetitionMedia.petition_id if model is Petition else Recording.meeting_id
        await session.execute(update(files).where(owner == target_id).values(purged_at=None))


async def recent_runs(session: AsyncSession, limit: int = 10) -> list[RetentionRun]:
    return list(
        (await session.scalars(select(RetentionRun).order_by(RetentionRun.id.desc()).limit(limit))).all()
    )


async def held(session: AsyncSession) -> list[tuple[str, int, str, str]]:
    """Every request and meeting under a legal hold: (kind, id, label, reason)."""
    petitions = await session.execute(
        select(Petition.id, Petition.receipt_no, Petition.retention_hold).where(
            Petition.retention_hold.is_not(None)
        )
    )
    meetings = await session.execute(
        select(Meeting.id, Meeting.title, Meeting.retention_hold).where(Meeting.retention_hold.is_not(None))
    )
    return [("petition", i, label, str(r)) for i, label, r in petitions] + [
        ("meeting", i, label, str(r)) for i, label, r in meetings
    ]


async def _loop(app: web.Application, stop: asyncio.Event, health: FailureStreak) -> None:
    from server.keys import SESSIONMAKER, SETTINGS  # noqa: PLC0415 - keys imports the app's parts

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), FIRST_RUN_DELAY_SECONDS)
    while not stop.is_set():
        try:
            await purge(app[SESSIONMAKER], app[SETTINGS])
        except Exception as exc:  # the next run may well succeed; the job must not die
            health.failed(exc)
        else:
            health.succeeded()
        pause = health.backoff(RETRY_FIRST_SECONDS, RETRY_CAP_SECONDS) or RUN_EVERY.total_seconds()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)


async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """The daily purge, supervised like the meeting clock: first a few minutes after start-up,
    then every day (sooner again after a failure)."""
    stop = asyncio.Event()
    health = app[RETENTION] = FailureStreak("the retention job", log)
    task = asyncio.get_running_loop().create_task(_loop(app, stop, health), name="retention")
    yield
    stop.set()
    await finish_or_cancel(task, STOP_SECONDS)
