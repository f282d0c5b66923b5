"""Participant ids: one per device or account, the same in the SFU, on the socket and in URLs.

``k12`` is kiosk 12 and ``a3`` is account 3 (an official or an administrator). A newer join of the
same kiosk or account replaces the older, so the id names the principal, not the connection.
"""

from __future__ import annotations

from server.auth.roles import Principal, Role

#: Longest participant id accepted from a client (the SFU caps ids at 200; ours are far shorter).
MAX_PARTICIPANT_ID_CHARS = 64


def kiosk_participant_id(kiosk_id: int) -> str:
    return f"k{kiosk_id}"


def account_participant_id(account_id: int) -> str:
    return f"a{account_id}"


def participant_id(principal: Principal) -> str:
    """The participant id of ``principal``: ``k<kiosk id>`` or ``a<account id>``."""
    if principal.role is Role.KIOSK:
        return kiosk_participant_id(principal.id)
    return account_participant_id(principal.id)


def parse_participant_id(pid: str) -> tuple[str, int] | None:
    """``("k", 12)`` for ``"k12"`` and ``("a", 3)`` for ``"a3"``; None for anything that is not a
    participant id (checked before it reaches a lookup or a log line)."""
    if not 1 < len(pid) <= MAX_PARTICIPANT_ID_CHARS or pid[0] not in "ak":
        return None
    digits = pid[1:]
    # isascii: str.isdigit() also accepts other scripts' digits ("k١٢"), which int() would read.
    if not (digits.isascii() and digits.isdigit()):
        return None
    return pid[0], int(digits)
