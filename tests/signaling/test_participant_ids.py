"""Participant ids (``k12``, ``a3``): made from a principal, and read back from a URL."""

from __future__ import annotations

import pytest

from server.auth.participant_ids import parse_participant_id, participant_id
from server.auth.roles import Principal, Role


@pytest.mark.parametrize(
    ("role", "expected"), [(Role.KIOSK, "k12"), (Role.OFFICIAL, "a12"), (Role.ADMIN, "a12")]
)
def test_one_id_per_device_or_account(role: Role, expected: str) -> None:
    principal = Principal(role=role, id=12, display_name="x")
    assert participant_id(principal) == expected
    assert parse_participant_id(expected) == (expected[0], 12)


@pytest.mark.parametrize("pid", ["", "k", "a", "x12", "k-1", "k1.5", "k١٢", "a 3", "K12", "k" + "1" * 64])
def test_anything_else_is_not_a_participant_id(pid: str) -> None:
    assert parse_participant_id(pid) is None
