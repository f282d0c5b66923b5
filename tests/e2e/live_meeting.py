"""A scheduled meeting started at once through the real service functions, for the browser tests
that are about what happens inside a meeting (not about scheduling it in the admin's pages)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from server.auth.roles import Principal, Role
from server.db import transaction, utcnow
from server.meetings import agenda as meeting_agenda
from server.meetings import service
from tests.conftest import World


async def started_meeting(
    sessionmaker: Any,
    world: World,
    *,
    title: str,
    village_ids: Sequence[int],
    official_ids: Sequence[int] = (),
    agenda: Sequence[str] = (),
    lobby_mode: str = "wait",
) -> tuple[int, int]:
    """Schedule a meeting chaired by ``world``'s official (from now, one hour) with ``agenda`` and
    start it as the administrator: its room invites the chair, ``official_ids`` and the enrolled
    kiosks of ``village_ids``. Returns (meeting id, room id)."""
    admin = Principal(role=Role.ADMIN, id=world.admin_id, display_name="관리자")
    now = utcnow()
    draft = service.MeetingDraft(
        title=title,
        starts_at=now,
        ends_at=now + dt.timedelta(hours=1),
        chair_id=world.official_id,
        official_ids=tuple(official_ids),
        village_ids=tuple(village_ids),
        lobby_mode=lobby_mode,
    )
    async with transaction(sessionmaker) as session:
        scheduled = (await service.schedule_meeting(session, admin, draft)).meeting
        meeting = await service.get_meeting(session, scheduled.id)
        for item in agenda:
            await meeting_agenda.add_agenda_item(session, meeting, item, actor=admin)
        await service.start_meeting(session, admin, meeting)
        assert meeting.room_id is not None
        return meeting.id, meeting.room_id
