"""The tests' world: the county's places and departments and three accounts (the administrator, an
official and a second official), created through the real services. One seeding for the ``world``
fixture and the link lab's server database (tests/lab/scenario.py), so both run on the same data."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Role
from server.auth.secrets import Passwords
from server.auth.service import create_account
from server.geo.models import Village
from server.org.models import Department
from server.seed import seed_places


@dataclass
class World:
    """Test data: places, departments and a few accounts, created through the real services."""

    admin_id: int
    official_id: int
    other_official_id: int
    village_ids: list[int]
    department_ids: list[int]


# (username, display name, role, index of the department in id order or None)
ACCOUNTS: tuple[tuple[str, str, Role, int | None], ...] = (
    ("admin", "관리자", Role.ADMIN, None),
    ("official", "김민원", Role.OFFICIAL, 0),
    ("official2", "박안전", Role.OFFICIAL, 1),
)


async def seed_world(session: AsyncSession, passwords: Passwords, password: str) -> World:
    """Seed the places and create ``ACCOUNTS``, each with ``password``, in ``session``."""
    await seed_places(session)
    departments = list((await session.scalars(select(Department.id).order_by(Department.id))).all())
    villages = list((await session.scalars(select(Village.id).order_by(Village.id))).all())
    ids = [
        (
            await create_account(
                session,
                passwords,
                username=username,
                password=password,
                display_name=display_name,
                role=role,
                department_id=None if department is None else departments[department],
            )
        ).id
        for username, display_name, role, department in ACCOUNTS
    ]
    return World(ids[0], ids[1], ids[2], villages, departments)
