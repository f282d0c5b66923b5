"""The petition status machine, as a pure function over a frozen state.

Statuses follow the steps residents see on public complaint services (국민신문고 and county portals):

    received(접수) --assign--> in_progress(처리중) --answer--> answered(답변완료) --close--> closed(종결)
                                  |   ^
                      request_info|   |supplement
                                  v   |
                            info_requested(보완요구)

Design choices (documented so that UI and DB code can rely on them):

* ``transfer`` (이송) is allowed from received and in_progress. It moves the petition to the new
  department in status ``transferred``, with the assignee cleared, and the new department takes it
  in with ``receive``, which puts it back to ``received`` there. We keep ``transferred`` as a
  visible status rather than jumping straight to ``received`` because residents are told "이송" and
  the petition is nobody's work until the new department accepts it. The legal clock keeps running.
* ``request_info`` (보완요구) at most twice per petition (``MAX_INFO_REQUESTS``); only from
  in_progress, since someone must be handling the petition to know what is missing.
* ``extend`` may be used once (``extended`` flag) while received, in_progress or info_requested. It
  needs a non-empty ``reason`` and an ``extension_days`` that is at most the original period of the
  ``petition_type``; the caller computes and notifies the new date with
  ``deadlines.extended_due``. It does not change the status.
* ``assign`` from received starts the work; from in_progress it reassigns within the department.
  Moving to another department is always a ``transfer``, never an ``assign``.
* ``reopen`` takes an answered petition back to in_progress (answer sent in error, or the resident's
  follow-up on the same matter before closing). A closed petition is final: a new request is a new
  petition, as in the law's handling of repeated petitions.
* ``close`` from answered is the normal end; from info_requested it ends a petition whose resident
  did not supplement in time and needs a ``reason``.
* ``withdraw`` (취하) by the resident closes any petition that is not yet answered.

Parameters are validated but not stored (reasons, dates): the caller records them in its event log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from server.petitions.deadlines import PetitionType, validate_extension_days

logger = logging.getLogger(__name__)

MAX_INFO_REQUESTS = 2


class _Labelled(StrEnum):
    """A StrEnum whose members carry a Korean and an English label (from the subclass's table)."""

    def _labels(self) -> tuple[str, str]:
        raise NotImplementedError

    @property
    def label_ko(self) -> str:
        return self._labels()[0]

    @property
    def label_en(self) -> str:
        return self._labels()[1]


class PetitionStatus(_Labelled):
    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    INFO_REQUESTED = "info_requested"
    TRANSFERRED = "transferred"
    ANSWERED = "answered"
    CLOSED = "closed"

    def _labels(self) -> tuple[str, str]:
        return _STATUS_LABELS[self]

    @property
    def is_terminal(self) -> bool:
        return self is PetitionStatus.CLOSED


_STATUS_LABELS: dict[PetitionStatus, tuple[str, str]] = {
    PetitionStatus.RECEIVED: ("접수", "Received"),
    PetitionStatus.IN_PROGRESS: ("처리중", "In progress"),
    PetitionStatus.INFO_REQUESTED: ("보완요구", "More information requested"),
    PetitionStatus.TRANSFERRED: ("이송", "Transferred"),
    PetitionStatus.ANSWERED: ("답변완료", "Answered"),
    PetitionStatus.CLOSED: ("종결", "Closed"),
}


class Action(_Labelled):
    ASSIGN = "assign"
    REQUEST_INFO = "request_info"
    SUPPLEMENT = "supplement"
    ANSWER = "answer"
    CLOSE = "close"
    TRANSFER = "transfer"
    RECEIVE = "receive"
    EXTEND = "extend"
    REOPEN = "reopen"
    WITHDRAW = "withdraw"

    def _labels(self) -> tuple[str, str]:
        return _ACTION_LABELS[self]


_ACTION_LABELS: dict[Action, tuple[str, str]] = {
    Action.ASSIGN: ("담당자 지정", "Assign"),
    Action.REQUEST_INFO: ("보완요구", "Request more information"),
    Action.SUPPLEMENT: ("보완제출", "Supplement"),
    Action.ANSWER: ("답변", "Answer"),
    Action.CLOSE: ("종결", "Close"),
    Action.TRANSFER: ("이송", "Transfer"),
    Action.RECEIVE: ("이송접수", "Receive transfer"),
    Action.EXTEND: ("처리기간 연장", "Extend deadline"),
    Action.REOPEN: ("재처리", "Reopen"),
    Action.WITHDRAW: ("취하", "Withdraw"),
}

_S = PetitionStatus
# Which actions each status accepts at all; guards that depend on counters or parameters are
# checked in ``apply``/``allowed_actions``.
TRANSITIONS: dict[PetitionStatus, frozenset[Action]] = {
    _S.RECEIVED: frozenset({Action.ASSIGN, Action.TRANSFER, Action.EXTEND, Action.WITHDRAW}),
    _S.IN_PROGRESS: frozenset(
        {Action.ASSIGN, Action.REQUEST_INFO, Action.ANSWER, Action.TRANSFER, Action.EXTEND, Action.WITHDRAW}
    ),
    _S.INFO_REQUESTED: frozenset({Action.SUPPLEMENT, Action.EXTEND, Action.CLOSE, Action.WITHDRAW}),
    _S.TRANSFERRED: frozenset({Action.RECEIVE, Action.WITHDRAW}),
    _S.ANSWERED: frozenset({Action.CLOSE, Action.REOPEN}),
    _S.CLOSED: frozenset(),
}


@dataclass(frozen=True)
class WorkflowState:
    status: PetitionStatus = PetitionStatus.RECEIVED
    info_requests_count: int = 0
    extended: bool = False
    department_id: int | None = None
    assignee_id: int | None = None


class IllegalTransition(Exception):
    """An action that the petition's current state does not permit."""

    def __init__(self, from_status: PetitionStatus, action: Action, reason: str) -> None:
        self.from_status = from_status
        self.action = action
        self.reason = reason
        super().__init__(f"cannot {action.value} a petition in status {from_status.value}: {reason}")


def _state_guard(state: WorkflowState, action: Action) -> str | None:
    """Reason the action is refused by the state alone (not by parameters), or None."""
    if action not in TRANSITIONS[state.status]:
        if state.status.is_terminal:
            return "the petition is closed"
        allowed = ", ".join(sorted(a.value for a in TRANSITIONS[state.status])) or "none"
        return f"allowed actions in this status: {allowed}"
    if action is Action.REQUEST_INFO and state.info_requests_count >= MAX_INFO_REQUESTS:
        return f"more information may be requested at most {MAX_INFO_REQUESTS} times"
    if action is Action.EXTEND and state.extended:
        return "the deadline may be extended only once"
    if action in (Action.REQUEST_INFO, Action.ANSWER) and state.assignee_id is None:
        return "no official is assigned"
    return None


def allowed_actions(state: WorkflowState) -> frozenset[Action]:
    """Actions the state permits (parameters still have to be valid). For UIs to show buttons."""
    return frozenset(a for a in Action if _state_guard(state, a) is None)


def _require_text(state: WorkflowState, action: Action, params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise IllegalTransition(state.status, action, f"a non-empty {name} is required")
    return value


def _require_id(state: WorkflowState, action: Action, params: dict[str, Any], name: str) -> int:
    """The database id ``params[name]``; a missing one (or anything but an int) is refused."""
    value = params.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise IllegalTransition(state.status, action, f"{name} is required")
    return value


def _check_params(action: Action, params: dict[str, Any]) -> None:
    allowed = _PARAMS[action]
    unknown = set(params) - allowed
    if unknown:
        names = ", ".join(sorted(unknown))
        raise TypeError(f"unexpected parameter(s) for {action.value}: {names}")


_PARAMS: dict[Action, frozenset[str]] = {
    Action.ASSIGN: frozenset({"assignee_id", "department_id"}),
    Action.REQUEST_INFO: frozenset({"reason"}),
    Action.SUPPLEMENT: frozenset(),
    Action.ANSWER: frozenset(),
    Action.CLOSE: frozenset({"reason"}),
    Action.TRANSFER: frozenset({"department_id", "reason"}),
    Action.RECEIVE: frozenset(),
    Action.EXTEND: frozenset({"reason", "extension_days", "petition_type"}),
    Action.REOPEN: frozenset({"reason"}),
    Action.WITHDRAW: frozenset({"reason"}),
}


def apply(state: WorkflowState, action: Action, **params: Any) -> WorkflowState:
    """Return the state after ``action``, or raise ``IllegalTransition``.

    Parameters by action:
      assign: assignee_id (required), department_id (required if the petition has none yet;
        must equal the current one otherwise)
      request_info: reason (required: residents must be told what to supply)
      close: reason (required when closing from info_requested)
      transfer: department_id (required, different from the current one), reason (optional)
      extend: reason, extension_days, petition_type (all required)
      reopen, withdraw: reason (optional)
    Unknown parameter names raise TypeError (a programming error, not an illegal move).
    """
    action = Action(action)
    _check_params(action, params)
    refused = _state_guard(state, action)
    if refused is not None:
        raise IllegalTransition(state.status, action, refused)

    if action is Action.ASSIGN:
        assignee = _require_id(state, action, params, "assignee_id")
        if params.get("department_id") is None:
            if state.department_id is None:
                raise IllegalTransition(state.status, action, "department_id is required")
            department = state.department_id
        else:
            department = _require_id(state, action, params, "department_id")
        if state.department_id is not None and department != state.department_id:
            raise IllegalTransition(
                state.status, action, "to move the petition to another department, transfer it"
            )
        return replace(state, status=_S.IN_PROGRESS, department_id=department, assignee_id=assignee)

    if action is Action.REQUEST_INFO:
        _require_text(state, action, params, "reason")
        return replace(state, status=_S.INFO_REQUESTED, info_requests_count=state.info_requests_count + 1)

    if action is Action.SUPPLEMENT:
        return replace(state, status=_S.IN_PROGRESS)

    if action is Action.ANSWER:
        return replace(state, status=_S.ANSWERED)

    if action is Action.CLOSE:
        if state.status is _S.INFO_REQUESTED:
            _require_text(state, action, params, "reason")
        return replace(state, status=_S.CLOSED)

    if action is Action.TRANSFER:
        department = _require_id(state, action, params, "department_id")
        if department == state.department_id:
            raise IllegalTransition(state.status, action, "the petition is already in that department")
        return replace(state, status=_S.TRANSFERRED, department_id=department, assignee_id=None)

    if action is Action.RECEIVE:
        return replace(state, status=_S.RECEIVED)

    if action is Action.EXTEND:
        _require_text(state, action, params, "reason")
        petition_type = params.get("petition_type")
        days = params.get("extension_days")
        if not isinstance(petition_type, PetitionType):
            raise IllegalTransition(state.status, action, "petition_type is required")
        if not isinstance(days, int) or isinstance(days, bool):
            raise IllegalTransition(state.status, action, "extension_days (an integer) is required")
        try:
            validate_extension_days(petition_type, days)
        except ValueError as exc:
            raise IllegalTransition(state.status, action, str(exc)) from exc
        return replace(state, extended=True)

    if action is Action.REOPEN:
        return replace(state, status=_S.IN_PROGRESS)

    if action is Action.WITHDRAW:
        return replace(state, status=_S.CLOSED)

    raise AssertionError(f"unhandled action {action}")  # pragma: no cover
