"""Notice pages for officials, the kiosk's notice API, and the media of notices."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from server.auth.roles import Role
from server.db import transaction, utcnow
from server.errors import BadRequest
from server.geo.models import Village
from server.keys import SESSIONMAKER, SETTINGS
from server.notices import service
from server.notices.models import Notice
from server.petitions import storage
from server.petitions.media_probe import InvalidMedia, probe_media
from server.rendering import render
from server.routing import allow, principal_of
from server.timeutil import SEOUL
from server.validation import Id, Input, json_body, path_id, validate

MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_VIDEO_BYTES = 40 * 1024 * 1024


class NoticeInput(Input):
    title: str = Field(min_length=1, max_length=120)
    body: str = Field(min_length=1, max_length=4000)
    starts_at: dt.datetime
    ends_at: dt.datetime
    village_ids: list[Id] = Field(default_factory=list, max_length=500)


def _id(request: web.Request) -> int:
    return path_id(request, "notice_id")


def _aware(value: dt.datetime) -> dt.datetime:
    # A time without zone is what a person typed on a Gangjin clock.
    return value.replace(tzinfo=SEOUL) if value.tzinfo is None else value


def notice_json(notice: Notice, media_url: str | None = None) -> dict[str, Any]:
    return {
        "id": notice.id,
        "title": notice.title,
        "body": notice.body,
        "starts_at": notice.starts_at.isoformat(),
        "ends_at": notice.ends_at.isoformat(),
        "all_villages": notice.all_villages,
        "village_ids": [t.village_id for t in notice.targets],
        "media_kind": notice.media_kind,
        "media_url": media_url,
        "withdrawn": notice.withdrawn_at is not None,
    }


async def _store_media(request: web.Request, field: web.FileField) -> tuple[str, str, str]:
    """Validate an attached image or recorded video; returns (kind, content type, storage name)."""
    media_dir = request.app[SETTINGS].media_dir
    tmp_dir = media_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"notice-{uuid.uuid4().hex}"
    with tmp.open("wb") as out:
        await asyncio.to_thread(shutil.copyfileobj, field.file, out)
    upload = storage.TempUpload(path=tmp, size=tmp.stat().st_size, sha256="")
    try:
        if upload.size == 0:
            raise BadRequest("the attachment is empty", code="media_empty")
        try:
            content_type, suffix = storage.sniff_image(tmp)
            kind, limit = "image", MAX_IMAGE_BYTES
        except BadRequest:
            try:
                probed = await asyncio.to_thread(probe_media, tmp, max_bytes=MAX_VIDEO_BYTES)
            except InvalidMedia as exc:
                raise BadRequest(
                    "attach a JPEG/PNG/WebP image or a recorded video message", code=f"media_{exc.code}"
                ) from exc
            kind, limit = "video", MAX_VIDEO_BYTES
            has_video = probed.video_codec is not None
            content_type, suffix = storage.MESSAGE_TYPES[(probed.container, has_video)]
        if upload.size > limit:
            raise BadRequest("the attachment is too large", code="media_too_large")
        name = await asyncio.to_thread(
            storage.commit_file, media_dir, upload, utcnow().year, suffix, "notices"
        )
        return kind, content_type, name
    finally:
        storage.discard(tmp)


async def _create(request: web.Request, data: NoticeInput, media: tuple[str, str, str] | None) -> Notice:
    draft = service.NoticeDraft(
        title=data.title,
        body=data.body,
        starts_at=_aware(data.starts_at),
        ends_at=_aware(data.ends_at),
        village_ids=tuple(data.village_ids),
        media_kind=media[0] if media else None,
        media_type=media[1] if media else None,
        media_storage_name=media[2] if media else None,
    )
    async with transaction(request.app[SESSIONMAKER]) as session:
        return await service.post_notice(session, principal_of(request), draft)


# --- officials --------------------------------------------------------------------------------


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_post_notice(request: web.Request) -> web.Response:
    notice = await _create(request, await json_body(request, NoticeInput), None)
    return web.json_response({"notice": notice_json(notice)}, status=201)


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_list_notices(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        notices = await service.list_notices(session)
        return web.json_response({"notices": [notice_json(n) for n in notices]})


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_deliveries(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        notice = await service.get(session, _id(request))
        rows = await service.delivery_report(session, notice)
        body = [
            {
                "kiosk_id": row.kiosk.id,
                "village_id": row.kiosk.village_id,
                "village": row.kiosk.village.full_name_ko,
                "first_shown_at": row.delivery.first_shown_at.isoformat() if row.delivery else None,
                "times_shown": row.delivery.times_shown if row.delivery else 0,
            }
            for row in rows
        ]
    return web.json_response({"deliveries": body})


async def _villages(request: web.Request) -> list[Village]:
    async with transaction(request.app[SESSIONMAKER]) as session:
        return list((await session.scalars(select(Village).order_by(Village.division_id, Village.id))).all())


@allow(Role.OFFICIAL, Role.ADMIN)
async def notices_page(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        notices = await service.list_notices(session)
    now = utcnow().astimezone(SEOUL)
    defaults = {
        "starts_at": now.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"),
    }
    return render(
        request,
        "notices/official_list.html",
        {
            "notices": notices,
            "villages": await _villages(request),
            "defaults": defaults,
            "error": None,
            "now": utcnow(),
        },
    )


@allow(Role.OFFICIAL, Role.ADMIN)
async def notices_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    data = {
        k: v for k, v in form.items() if isinstance(v, str) and k in ("title", "body", "starts_at", "ends_at")
    }
    village_ids = [v for v in form.getall("village_ids", []) if isinstance(v, str)]
    notice_input = validate(NoticeInput, {**data, "village_ids": village_ids})
    attachment = form.get("media")
    media = None
    if isinstance(attachment, web.FileField) and attachment.filename:
        media = await _store_media(request, attachment)
    notice = await _create(request, notice_input, media)
    raise web.HTTPSeeOther(f"/official/notices/{notice.id}")


@allow(Role.OFFICIAL, Role.ADMIN)
async def notice_page(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        notice = await service.get(session, _id(request))
        rows = await service.delivery_report(session, notice)
    shown = sum(1 for row in rows if row.delivery)
    context = {
        "notice": notice,
        "rows": rows,
        "shown": shown,
        "may_withdraw": service.may_withdraw(principal_of(request), notice),
    }
    return render(request, "notices/official_detail.html", context)


@allow(Role.OFFICIAL, Role.ADMIN)
async def notice_withdraw(request: web.Request) -> web.StreamResponse:
    async with transaction(request.app[SESSIONMAKER]) as session:
        notice = await service.withdraw(session, principal_of(request), _id(request))
    raise web.HTTPSeeOther(f"/official/notices/{notice.id}")


def _media_response(request: web.Request, notice: Notice) -> web.StreamResponse:
    if not notice.media_storage_name or not notice.media_type:
        raise web.HTTPNotFound()
    path: Path = storage.resolve(request.app[SETTINGS].media_dir, notice.media_storage_name)
    return web.FileResponse(
        path, headers={"Content-Type": notice.media_type, "Cache-Control": "private, no-store"}
    )


@allow(Role.OFFICIAL, Role.ADMIN)
async def official_media(request: web.Request) -> web.StreamResponse:
    async with transaction(request.app[SESSIONMAKER]) as session:
        notice = await service.get(session, _id(request))
    return _media_response(request, notice)


# --- kiosks -----------------------------------------------------------------------------------


def kiosk_media_url(notice: Notice) -> str | None:
    return f"/kiosk/notices/{notice.id}/media" if notice.media_storage_name else None


@allow(Role.KIOSK)
async def api_kiosk_notices(request: web.Request) -> web.Response:
    kiosk = principal_of(request)
    assert kiosk.village_id is not None
    async with transaction(request.app[SESSIONMAKER]) as session:
        notices = await service.current_for_village(session, kiosk.village_id)
        return web.json_response({"notices": [notice_json(n, kiosk_media_url(n)) for n in notices]})


@allow(Role.KIOSK)
async def api_kiosk_shown(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        delivery = await service.record_shown(session, principal_of(request), _id(request))
        return web.json_response({"times_shown": delivery.times_shown})


@allow(Role.KIOSK)
async def kiosk_media(request: web.Request) -> web.StreamResponse:
    async with transaction(request.app[SESSIONMAKER]) as session:
        notice = await service.get_for_kiosk(session, principal_of(request), _id(request))
    return _media_response(request, notice)
