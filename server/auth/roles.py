"""Roles and the principal a request acts as."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    KIOSK = "kiosk"  # an enrolled village-hall device, acting for anonymous residents
    OFFICIAL = "official"
    ADMIN = "admin"


# Roles a route can name besides real roles.
PUBLIC = "public"


@dataclass(frozen=True)
class Principal:
    """The authenticated actor of one request: an account (official/admin) or a kiosk device."""

    role: Role
    id: int  # account id or kiosk id, by role
    display_name: str
    department_id: int | None = None
    village_id: int | None = None
    session_id: str | None = None  # the hashed session key, for logout
    can_triage: bool = False  # may route requests no department has yet (admins always may)

    @property
    def may_triage(self) -> bool:
        return self.role is Role.ADMIN or (self.role is Role.OFFICIAL and self.can_triage)

    @property
    def is_account(self) -> bool:
        return self.role in (Role.OFFICIAL, Role.ADMIN)

    @property
    def audit_label(self) -> str:
        """How the audit trail names the actor."""
        return f"{self.role.value}:{self.id}"
