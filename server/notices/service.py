"""Posting notices, choosing what a kiosk shows, recording and reporting delivery."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Principal, Role
from server.db import utcnow
from server.errors import BadRequest, Forbidden, NotFound
from server.geo.models import Village
from server.kiosks.models import Kiosk
from server.notices.models import Notice, NoticeDelivery, NoticeTarget

log = logging.getLogger(__name__)

MAX_WINDOW = dt.timedelta(days=92)


@dataclass(frozen=True)
class NoticeDraft:
    title: str
    body: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    village_ids: tuple[int, ...]  # empty = all villages
    media_kind: str | None = None
    media_type: str | None = None
    media_storage_name: str | None = None


async def post_notice(session: AsyncSession, author: Principal, draft: NoticeDraft) -> Notice:
    if draft.ends_at <= draft.starts_at:
        raise BadRequest("a notice must end after it starts", code="invalid_window")
    if draft.ends_at - draft.starts_at > MAX_WINDOW:
        raise BadRequest("a notice can be shown for at most 92 days", code="window_too_long")
    if draft.ends_at <= utcnow():
        raise BadRequest("the display window is already over", code="window_in_past")
    village_ids = sorted(set(draft.village_ids))
    if village_ids:
        found = set((await session.scalars(select(Village.id).where(Village.id.in_(village_ids)))).all())
        missing = [v for v in village_ids if v not in found]
        if missing:
            raise BadRequest("unknown village", code="unknown_village", details={"village_ids": missing})
    notice = Notice(
        title=draft.title,
        body=draft.body,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        all_villages=not village_ids,
        media_kind=draft.media_kind,
        media_type=draft.media_type,
        media_storage_name=draft.media_storage_name,
        author_id=author.id,
        targets=[NoticeTarget(village_id=v) for v in village_ids],
    )
    session.add(notice)
    await session.flush()
    log.info("notice posted", extra={"notice_id": notice.id, "villages": len(village_ids) or "all"})
    return notice


def _visible_to(village_id: int, now: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    targeted = select(NoticeTarget.notice_id).where(NoticeTarget.village_id == village_id)
    return (
        Notice.withdrawn_at.is_(None),
        Notice.starts_at <= now,
        Notice.ends_at > now,
        or_(Notice.all_villages.is_(True), Notice.id.in_(targeted)),
    )


async def current_for_village(
    session: AsyncSession, village_id: int, now: dt.datetime | None = None
) -> list[Notice]:
    now = now or utcnow()
    rows = await session.scalars(
        select(Notice).where(*_visible_to(village_id, now)).order_by(Notice.starts_at.desc())
    )
    return list(rows.all())


async def get_for_kiosk(session: AsyncSession, kiosk: Principal, notice_id: int) -> Notice:
    """A notice this kiosk may show now; others are 404 (not 403: nothing to learn)."""
    assert kiosk.village_id is not None
    notice = await session.scalar(
        select(Notice).where(Notice.id == notice_id, *_visible_to(kiosk.village_id, utcnow()))
    )
    if notice is None:
        raise NotFound("no such notice for this kiosk", code="notice_not_found")
    return notice


async def record_shown(session: AsyncSession, kiosk: Principal, notice_id: int) -> NoticeDelivery:
    await get_for_kiosk(session, kiosk, notice_id)
    now = utcnow()
    delivery = await session.scalar(
        select(NoticeDelivery).where(
            NoticeDelivery.notice_id == notice_id, NoticeDelivery.kiosk_id == kiosk.id
        )
    )
    if delivery is None:
        delivery = NoticeDelivery(
            notice_id=notice_id, kiosk_id=kiosk.id, first_shown_at=now, last_shown_at=now
        )
        try:
            async with session.begin_nested():
                session.add(delivery)
        except IntegrityError:
            # Two reports raced; the other one created the row.
            delivery = await session.scalar(
                select(NoticeDelivery).where(
                    NoticeDelivery.notice_id == notice_id, NoticeDelivery.kiosk_id == kiosk.id
                )
            )
            assert delivery is not None
            delivery.times_shown += 1
            delivery.last_shown_at = now
    else:
        delivery.times_shown += 1
        delivery.last_shown_at = now
    return delivery


def may_withdraw(actor: Principal, notice: Notice) -> bool:
    return actor.role is Role.ADMIN or (actor.is_account and notice.author_id == actor.id)


async def get(session: AsyncSession, notice_id: int) -> Notice:
    notice = await session.get(Notice, notice_id)
    if notice is None:
        raise NotFound("no such notice", code="notice_not_found")
    return notice


async def withdraw(session: AsyncSession, actor: Principal, notice_id: int) -> Notice:
    """Take a notice off the kiosks: its author or an administrator only."""
    notice = await get(session, notice_id)
    if not may_withdraw(actor, notice):
        raise Forbidden("only the author or an administrator withdraws a notice", code="not_notice_author")
    if notice.withdrawn_at is None:
        notice.withdrawn_at = utcnow()
    return notice


async def list_notices(session: AsyncSession) -> list[Notice]:
    return list(
        (await session.scalars(select(Notice).order_by(Notice.created_at.desc(), Notice.id.desc()))).all()
    )


@dataclass(frozen=True)
class DeliveryRow:
    kiosk: Kiosk
    delivery: NoticeDelivery | None


async def delivery_report(session: AsyncSession, notice: Notice) -> list[DeliveryRow]:
    """Every active kiosk the notice is meant for, with when (or whether) it showed it."""
    query = select(Kiosk).where(Kiosk.revoked_at.is_(None), Kiosk.token_hash.is_not(None))
    if not notice.all_villages:
        query = query.where(Kiosk.village_id.in_([t.village_id for t in notice.targets]))
    kiosks = (await session.scalars(query.order_by(Kiosk.village_id, Kiosk.id))).all()
    deliveries = {
        d.kiosk_id: d
        for d in (
            await session.scalars(select(NoticeDelivery).where(NoticeDelivery.notice_id == notice.id))
        ).all()
    }
    return [DeliveryRow(k, deliveries.get(k.id)) for k in kiosks]
