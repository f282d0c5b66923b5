from __future__ import annotations

import itertools
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest

from server.petitions.deadlines import PetitionType
from server.petitions.workflow import (
    MAX_INFO_REQUESTS,
    Action,
    IllegalTransition,
    PetitionStatus,
    WorkflowState,
    allowed_actions,
    apply,
)

S = PetitionStatus
A = Action

# Database ids: departments and officials.
CIVIL, ROADS, WATER = 1, 2, 3
KIM, LEE, PARK = 11, 12, 13

# The whole legal transition table, written out independently of the module's own table.
EXPECTED: dict[tuple[PetitionStatus, Action], PetitionStatus] = {
    (S.RECEIVED, A.ASSIGN): S.IN_PROGRESS,
    (S.RECEIVED, A.TRANSFER): S.TRANSFERRED,
    (S.RECEIVED, A.EXTEND): S.RECEIVED,
    (S.RECEIVED, A.WITHDRAW): S.CLOSED,
    (S.IN_PROGRESS, A.ASSIGN): S.IN_PROGRESS,
    (S.IN_PROGRESS, A.REQUEST_INFO): S.INFO_REQUESTED,
    (S.IN_PROGRESS, A.ANSWER): S.ANSWERED,
    (S.IN_PROGRESS, A.TRANSFER): S.TRANSFERRED,
    (S.IN_PROGRESS, A.EXTEND): S.IN_PROGRESS,
    (S.IN_PROGRESS, A.WITHDRAW): S.CLOSED,
    (S.INFO_REQUESTED, A.SUPPLEMENT): S.IN_PROGRESS,
    (S.INFO_REQUESTED, A.EXTEND): S.INFO_REQUESTED,
    (S.INFO_REQUESTED, A.CLOSE): S.CLOSED,
    (S.INFO_REQUESTED, A.WITHDRAW): S.CLOSED,
    (S.TRANSFERRED, A.RECEIVE): S.RECEIVED,
    (S.TRANSFERRED, A.WITHDRAW): S.CLOSED,
    (S.ANSWERED, A.CLOSE): S.CLOSED,
    (S.ANSWERED, A.REOPEN): S.IN_PROGRESS,
}

# A typical state for each status, as reached through the machine.
TYPICAL: dict[PetitionStatus, WorkflowState] = {
    S.RECEIVED: WorkflowState(S.RECEIVED, department_id=CIVIL),
    S.IN_PROGRESS: WorkflowState(S.IN_PROGRESS, department_id=CIVIL, assignee_id=KIM),
    S.INFO_REQUESTED: WorkflowState(S.INFO_REQUESTED, 1, department_id=CIVIL, assignee_id=KIM),
    S.TRANSFERRED: WorkflowState(S.TRANSFERRED, department_id=ROADS),
    S.ANSWERED: WorkflowState(S.ANSWERED, department_id=CIVIL, assignee_id=KIM),
    S.CLOSED: WorkflowState(S.CLOSED, department_id=CIVIL, assignee_id=KIM),
}

VALID_PARAMS: dict[Action, dict[str, Any]] = {
    A.ASSIGN: {"assignee_id": LEE},
    A.REQUEST_INFO: {"reason": "사진을 첨부해 주세요"},
    A.SUPPLEMENT: {},
    A.ANSWER: {},
    A.CLOSE: {"reason": "보완 기한 경과"},
    A.TRANSFER: {"department_id": WATER, "reason": "상수도 소관"},
    A.RECEIVE: {},
    A.EXTEND: {"reason": "현장 조사 필요", "extension_days": 3, "petition_type": PetitionType.GRIEVANCE},
    A.REOPEN: {},
    A.WITHDRAW: {"reason": "민원인 요청"},
}

MATRIX = list(itertools.product(PetitionStatus, Action))


def test_matrix_covers_everything() -> None:
    assert len(MATRIX) == len(PetitionStatus) * len(Action)
    assert set(EXPECTED) <= set(MATRIX)


@pytest.mark.parametrize(("status", "action"), MATRIX, ids=[f"{s.value}-{a.value}" for s, a in MATRIX])
def test_full_matrix(status: PetitionStatus, action: Action) -> None:
    state = TYPICAL[status]
    expected = EXPECTED.get((status, action))
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            apply(state, action, **VALID_PARAMS[action])
        assert info.value.from_status is status
        assert info.value.action is action
        assert status.value in str(info.value) and action.value in str(info.value)
        assert action not in allowed_actions(state)
    else:
        new = apply(state, action, **VALID_PARAMS[action])
        assert new.status is expected
        assert action in allowed_actions(state)


def test_allowed_actions_match_expected_table() -> None:
    for status in PetitionStatus:
        expected = {a for (s, a) in EXPECTED if s is status}
        assert allowed_actions(TYPICAL[status]) == expected, status


def test_happy_path_with_two_info_requests() -> None:
    state = WorkflowState(department_id=CIVIL)
    state = apply(state, A.ASSIGN, assignee_id=KIM)
    assert (state.status, state.assignee_id) == (S.IN_PROGRESS, KIM)
    for n in range(1, MAX_INFO_REQUESTS + 1):
        state = apply(state, A.REQUEST_INFO, reason="주소를 알려 주세요")
        assert state.info_requests_count == n
        state = apply(state, A.SUPPLEMENT)
    with pytest.raises(IllegalTransition, match="at most 2 times"):
        apply(state, A.REQUEST_INFO, reason="또 필요합니다")
    assert A.REQUEST_INFO not in allowed_actions(state)
    state = apply(state, A.ANSWER)
    state = apply(state, A.CLOSE)
    assert state.status is S.CLOSED
    assert allowed_actions(state) == frozenset()


def test_info_request_count_survives_reopen_and_transfer() -> None:
    state = WorkflowState(S.IN_PROGRESS, 2, department_id=CIVIL, assignee_id=KIM)
    state = apply(apply(state, A.TRANSFER, department_id=ROADS), A.RECEIVE)
    state = apply(state, A.ASSIGN, assignee_id=PARK)
    with pytest.raises(IllegalTransition):
        apply(state, A.REQUEST_INFO, reason="x")


def test_single_extension() -> None:
    state = TYPICAL[S.IN_PROGRESS]
    state = apply(state, A.EXTEND, **VALID_PARAMS[A.EXTEND])
    assert state.extended and state.status is S.IN_PROGRESS
    assert A.EXTEND not in allowed_actions(state)
    with pytest.raises(IllegalTransition, match="only once"):
        apply(state, A.EXTEND, **VALID_PARAMS[A.EXTEND])
    # Still refused after going around the loop.
    state = apply(apply(state, A.REQUEST_INFO, reason="x"), A.SUPPLEMENT)
    with pytest.raises(IllegalTransition, match="only once"):
        apply(state, A.EXTEND, **VALID_PARAMS[A.EXTEND])


@pytest.mark.parametrize(
    "params",
    [
        {"reason": "", "extension_days": 3, "petition_type": PetitionType.GRIEVANCE},
        {"reason": "조사", "extension_days": 8, "petition_type": PetitionType.GRIEVANCE},
        {"reason": "조사", "extension_days": 0, "petition_type": PetitionType.GRIEVANCE},
        {"reason": "조사", "extension_days": 1, "petition_type": PetitionType.SIMPLE},
        {"reason": "조사", "extension_days": 3},
        {"reason": "조사", "petition_type": PetitionType.GRIEVANCE},
        {"reason": "조사", "extension_days": True, "petition_type": PetitionType.GRIEVANCE},
    ],
)
def test_extension_parameters_validated(params: dict[str, Any]) -> None:
    state = TYPICAL[S.RECEIVED]
    with pytest.raises(IllegalTransition):
        apply(state, A.EXTEND, **params)
    assert not state.extended


def test_extension_limit_is_original_period() -> None:
    state = TYPICAL[S.RECEIVED]
    ok = apply(state, A.EXTEND, reason="조사", extension_days=14, petition_type=PetitionType.QUESTION_LAW)
    assert ok.extended
    with pytest.raises(IllegalTransition, match="between 1 and 14"):
        apply(state, A.EXTEND, reason="조사", extension_days=15, petition_type=PetitionType.QUESTION_LAW)


def test_transfer_rules() -> None:
    state = TYPICAL[S.IN_PROGRESS]
    moved = apply(state, A.TRANSFER, department_id=ROADS)
    assert moved == WorkflowState(S.TRANSFERRED, 0, False, ROADS, None)
    assert apply(moved, A.RECEIVE).status is S.RECEIVED
    with pytest.raises(IllegalTransition, match="already in that department"):
        apply(state, A.TRANSFER, department_id=CIVIL)
    with pytest.raises(IllegalTransition, match="department_id is required"):
        apply(state, A.TRANSFER)


def test_assign_rules() -> None:
    new = WorkflowState()
    with pytest.raises(IllegalTransition, match="department_id is required"):
        apply(new, A.ASSIGN, assignee_id=KIM)
    state = apply(new, A.ASSIGN, assignee_id=KIM, department_id=7)
    assert (state.department_id, state.assignee_id) == (7, KIM)
    with pytest.raises(IllegalTransition, match="transfer"):
        apply(state, A.ASSIGN, assignee_id=LEE, department_id=8)
    with pytest.raises(IllegalTransition, match="assignee_id is required"):
        apply(state, A.ASSIGN)
    assert apply(state, A.ASSIGN, assignee_id=LEE).assignee_id == LEE


@pytest.mark.parametrize(
    "params",
    [
        {"assignee_id": "kim", "department_id": CIVIL},
        {"assignee_id": True, "department_id": CIVIL},
        {"assignee_id": KIM, "department_id": "civil"},
        {"assignee_id": KIM, "department_id": ""},
    ],
)
def test_ids_are_database_ids(params: dict[str, Any]) -> None:
    """An id is an int: a name, a bool or an empty string is refused, not stored."""
    with pytest.raises(IllegalTransition, match="_id is required"):
        apply(WorkflowState(), A.ASSIGN, **params)
    with pytest.raises(IllegalTransition, match="department_id is required"):
        apply(TYPICAL[S.IN_PROGRESS], A.TRANSFER, department_id=str(ROADS))


def test_answer_needs_an_assignee() -> None:
    state = WorkflowState(S.IN_PROGRESS, department_id=CIVIL)
    with pytest.raises(IllegalTransition, match="no official"):
        apply(state, A.ANSWER)
    assert A.ANSWER not in allowed_actions(state)


def test_reasons_required() -> None:
    with pytest.raises(IllegalTransition, match="reason"):
        apply(TYPICAL[S.IN_PROGRESS], A.REQUEST_INFO)
    with pytest.raises(IllegalTransition, match="reason"):
        apply(TYPICAL[S.INFO_REQUESTED], A.CLOSE, reason="  ")
    # Closing an answered petition needs no reason.
    assert apply(TYPICAL[S.ANSWERED], A.CLOSE).status is S.CLOSED


def test_closed_is_final_message() -> None:
    with pytest.raises(IllegalTransition, match="closed"):
        apply(TYPICAL[S.CLOSED], A.REOPEN)


def test_unknown_parameter_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="assigne"):
        apply(TYPICAL[S.RECEIVED], A.ASSIGN, assigne_id="typo")


def test_action_given_as_string() -> None:
    assert apply(TYPICAL[S.ANSWERED], "close").status is S.CLOSED  # type: ignore[arg-type]


def test_state_is_frozen_and_labels() -> None:
    with pytest.raises(FrozenInstanceError):
        TYPICAL[S.RECEIVED].status = S.CLOSED  # type: ignore[misc]
    assert [s.label_ko for s in PetitionStatus] == ["접수", "처리중", "보완요구", "이송", "답변완료", "종결"]
    assert all(s.label_en for s in PetitionStatus)
    assert all(a.label_ko and a.label_en for a in Action)
    assert replace(TYPICAL[S.RECEIVED]) == TYPICAL[S.RECEIVED]
