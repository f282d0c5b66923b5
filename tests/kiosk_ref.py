"""An enrolled kiosk as the feature tests hold it: its id, its device token and its village, with
the bearer header its agent sends and the principal the services see (shared by the meetings and
the petitions fixtures, which used to keep a copy each)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Principal, Role
from tests.conftest import enrolled_kiosk


@dataclass
class KioskRef:
    id: int
    token: str
    village_id: int

    @property
    def principal(self) -> Principal:
        return Principal(role=Role.KIOSK, id=self.id, display_name="마을회관", village_id=self.village_id)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_kiosk(
    sessionmaker: Callable[[], AsyncSession], village_id: int, label: str = "마을회관"
) -> KioskRef:
    """A kiosk of ``village_id`` registered and enrolled through the real service."""
    kiosk_id, token = await enrolled_kiosk(sessionmaker, village_id, label)
    return KioskRef(kiosk_id, token, village_id)
