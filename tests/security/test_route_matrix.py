"""Every HTTP route × every role × own and foreign objects (the outcomes: tests/security/route_matrix.py).

The table below is the access policy, route by route. The router is its index: a route the app
serves without an entry here fails ``test_every_route_has_an_entry``, so a new route cannot go
out without someone deciding who may call it. Each role calls each route on a fresh copy of the
world (tests/security/route_world.py), the foreign side first, so no call sees another's writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from tests.conftest import make_settings
from tests.security.route_matrix import (
    ACCOUNTS,
    DENY,
    FOREIGN,
    HIDE,
    KIOSKS,
    OFFICIALS,
    OWN,
    PUBLIC,
    ROLES,
    SIDE_OF,
    Call,
    allow,
    call_as,
    outcome,
    path_for,
)
from tests.security.route_world import RouteWorld, build_route_world, copy_world

ANON = "anonymous"
OTHER = {"A": "B", "B": "A"}

ADMIN_ONLY = allow("admin")
KIOSK_ONLY = allow(*KIOSKS)
ACCOUNTS_ONLY = allow(*ACCOUNTS)
# Officials see their own department's requests (and meetings they chair or attend); admins all.
DEPARTMENT = allow(*ACCOUNTS, tenant=OFFICIALS)
# A kiosk sees its own village's objects.
VILLAGE = allow(*KIOSKS, tenant=KIOSKS)

_ASSIGN = {"action": "assign"}
_NOTE = {"text": "현장 확인 예정"}
# Forms posted without a CSRF token: refused before any handler runs, whoever is logged in.
NO_CSRF_ANON = {(ANON, OWN): DENY}

# (method, path template) -> how to call it and what each role gets.
MATRIX: dict[tuple[str, str], list[Call]] = {
    # --- public ---------------------------------------------------------------------------------
    ("GET", "/"): [Call(allow(*ROLES, cells={(ANON, OWN): DENY}))],  # anonymous: to the login page
    ("GET", "/healthz"): [Call(PUBLIC)],
    ("GET", "/readyz"): [Call(PUBLIC)],
    # From loopback (as here) any caller may scrape; elsewhere only with MAEUL_METRICS_TOKEN
    # (tests/ops/test_metrics_endpoint.py).
    ("GET", "/metrics"): [Call(PUBLIC)],
    ("GET", "/login"): [Call(PUBLIC)],
    ("POST", "/login"): [Call(allow(*ROLES, cells=NO_CSRF_ANON), form={})],
    ("POST", "/logout"): [Call(allow(*ROLES, cells=NO_CSRF_ANON), form={}, login_is_ok=True)],
    ("GET", "/kiosk/enroll"): [Call(PUBLIC)],
    ("POST", "/kiosk/enroll"): [Call(allow(*ROLES, cells=NO_CSRF_ANON), form={})],
    ("POST", "/api/v1/session"): [Call(PUBLIC)],
    ("POST", "/api/v1/kiosk/enroll"): [Call(PUBLIC)],
    ("GET", "/api/v1/openapi.json"): [Call(PUBLIC)],
    # --- areas, accounts, kiosk fleet -----------------------------------------------------------
    ("GET", "/official"): [Call(ACCOUNTS_ONLY)],
    ("GET", "/admin"): [Call(ADMIN_ONLY)],
    ("GET", "/admin/system"): [Call(ADMIN_ONLY)],
    ("GET", "/admin/retention"): [Call(ADMIN_ONLY)],
    ("POST", "/admin/retention/holds"): [Call(ADMIN_ONLY, form={})],
    ("DELETE", "/api/v1/session"): [Call(ACCOUNTS_ONLY)],
    ("GET", "/api/v1/me"): [Call(allow(*KIOSKS, *ACCOUNTS))],
    ("GET", "/kiosk"): [Call(KIOSK_ONLY)],
    ("POST", "/api/v1/kiosk/heartbeat"): [Call(KIOSK_ONLY)],
    # Each account changes only its own password (the current one required).
    ("GET", "/account/password"): [Call(ACCOUNTS_ONLY)],
    ("POST", "/account/password"): [Call(ACCOUNTS_ONLY, form={})],
    ("POST", "/api/v1/me/password"): [Call(ACCOUNTS_ONLY)],
    ("GET", "/admin/accounts"): [Call(ADMIN_ONLY)],
    ("POST", "/admin/accounts/{account_id}"): [Call(ADMIN_ONLY, form={})],
    ("GET", "/api/v1/admin/accounts"): [Call(ADMIN_ONLY)],
    ("POST", "/api/v1/admin/accounts/{account_id}/actions"): [Call(ADMIN_ONLY)],
    ("GET", "/admin/kiosks"): [Call(ADMIN_ONLY)],
    ("POST", "/admin/kiosks/{kiosk_id}/revoke"): [Call(ADMIN_ONLY, form={})],
    ("POST", "/admin/kiosks/{kiosk_id}/enrollment"): [Call(ADMIN_ONLY, form={})],
    ("GET", "/api/v1/admin/kiosks"): [Call(ADMIN_ONLY)],
    ("POST", "/api/v1/admin/kiosks"): [Call(ADMIN_ONLY)],
    ("POST", "/api/v1/admin/kiosks/{kiosk_id}/revoke"): [Call(ADMIN_ONLY)],
    # --- requests (민원) --------------------------------------------------------------------------
    ("GET", "/kiosk/request"): [Call(KIOSK_ONLY)],
    ("GET", "/kiosk/status"): [Call(KIOSK_ONLY)],
    ("GET", "/kiosk/public"): [Call(KIOSK_ONLY)],
    ("POST", "/api/v1/kiosk/petitions"): [Call(KIOSK_ONLY)],
    ("POST", "/api/v1/kiosk/petitions/status"): [Call(KIOSK_ONLY)],
    ("GET", "/api/v1/kiosk/petitions/public"): [Call(KIOSK_ONLY)],
    # A resident withdraws a request at any kiosk with its receipt number and PIN.
    ("POST", "/api/v1/kiosk/petitions/withdraw"): [Call(KIOSK_ONLY)],
    ("POST", "/api/v1/kiosk/visits"): [Call(KIOSK_ONLY)],
    # Public requests are shown county-wide, so every kiosk sees both sides'.
    ("GET", "/api/v1/kiosk/petitions/public/{petition_id}"): [
        Call(KIOSK_ONLY, params={"petition_id": "@public_petition_id"})
    ],
    ("POST", "/api/v1/kiosk/petitions/public/{petition_id}/support"): [
        Call(KIOSK_ONLY, params={"petition_id": "@public_petition_id"}, json={"session_id": "s" * 20})
    ],
    ("GET", "/official/requests"): [Call(ACCOUNTS_ONLY)],
    ("POST", "/official/requests/bulk-answer"): [Call(ACCOUNTS_ONLY, form={})],
    ("GET", "/official/requests/{petition_id}"): [Call(DEPARTMENT)],
    ("POST", "/official/requests/{petition_id}/action"): [Call(DEPARTMENT, form=_ASSIGN)],
    ("POST", "/official/requests/{petition_id}/notes"): [Call(DEPARTMENT, form=_NOTE)],
    ("GET", "/api/v1/petitions"): [Call(ACCOUNTS_ONLY)],
    ("POST", "/api/v1/petitions/bulk-answer"): [
        Call(DEPARTMENT, json=lambda ids: {"petition_ids": [ids["petition_id"]], "answer": "처리했습니다."})
    ],
    ("GET", "/api/v1/petitions/{petition_id}"): [Call(DEPARTMENT)],
    ("POST", "/api/v1/petitions/{petition_id}/actions"): [Call(DEPARTMENT, json=_ASSIGN)],
    ("GET", "/api/v1/petitions/{petition_id}/notes"): [Call(DEPARTMENT)],
    ("POST", "/api/v1/petitions/{petition_id}/notes"): [Call(DEPARTMENT, json=_NOTE)],
    ("GET", "/api/v1/petitions/{petition_id}/events"): [Call(DEPARTMENT)],
    ("GET", "/api/v1/petitions/{petition_id}/media/{media_id}"): [Call(DEPARTMENT)],
    ("GET", "/api/v1/answer-templates"): [Call(ACCOUNTS_ONLY)],
    ("POST", "/api/v1/answer-templates"): [Call(ACCOUNTS_ONLY)],
    ("GET", "/admin/departments"): [Call(ADMIN_ONLY)],
    ("POST", "/admin/departments"): [Call(ADMIN_ONLY, form={})],
    ("GET", "/admin/answer-templates"): [Call(ADMIN_ONLY)],
    ("POST", "/admin/answer-templates"): [Call(ADMIN_ONLY, form={})],
    ("GET", "/admin/petitions/stats"): [Call(ADMIN_ONLY)],
    ("GET", "/admin/petitions.csv"): [Call(ADMIN_ONLY)],
    ("GET", "/api/v1/admin/departments"): [Call(ADMIN_ONLY)],
    ("POST", "/api/v1/admin/departments"): [Call(ADMIN_ONLY)],
    ("PATCH", "/api/v1/admin/departments/{department_id}"): [Call(ADMIN_ONLY)],
    ("GET", "/api/v1/admin/petitions/stats"): [Call(ADMIN_ONLY)],
    # --- notices: every official sees every notice; only its author or an admin withdraws it ------
    ("GET", "/official/notices"): [Call(ACCOUNTS_ONLY)],
    ("POST", "/official/notices"): [Call(ACCOUNTS_ONLY, form={})],
    ("GET", "/official/notices/{notice_id}"): [Call(ACCOUNTS_ONLY)],
    ("POST", "/official/notices/{notice_id}/withdraw"): [
        Call(allow(*ACCOUNTS, tenant=OFFICIALS, foreign=DENY), form={})
    ],
    ("GET", "/official/notices/{notice_id}/media"): [Call(ACCOUNTS_ONLY)],
    ("GET", "/api/v1/notices"): [Call(ACCOUNTS_ONLY)],
    ("POST", "/api/v1/notices"): [Call(ACCOUNTS_ONLY)],
    ("GET", "/api/v1/notices/{notice_id}/deliveries"): [Call(ACCOUNTS_ONLY)],
    ("GET", "/api/v1/kiosk/notices"): [Call(KIOSK_ONLY)],
    ("GET", "/kiosk/notices/{notice_id}/media"): [Call(VILLAGE)],
    ("POST", "/api/v1/kiosk/notices/{notice_id}/shown"): [Call(VILLAGE)],
    # --- duty calls: any hall's call rings every official on duty (official X is, Y and the admin
    # are not); a kiosk sees only its own calls --------------------------------------------------
    ("GET", "/kiosk/call"): [Call(KIOSK_ONLY)],
    ("POST", "/api/v1/duty/availability"): [Call(ACCOUNTS_ONLY)],
    ("GET", "/api/v1/duty/ringing"): [Call(ACCOUNTS_ONLY)],
    ("POST", "/api/v1/duty/calls/{call_id}/answer"): [Call(allow("official_x"))],
    ("POST", "/api/v1/kiosk/duty-calls"): [Call(KIOSK_ONLY)],
    ("GET", "/api/v1/kiosk/duty-calls/{call_id}"): [Call(VILLAGE)],
    ("POST", "/api/v1/kiosk/duty-calls/{call_id}/cancel"): [Call(VILLAGE)],
    # --- ad-hoc rooms: only the invited join (403 not_invited for the others) ----------------------
    ("GET", "/admin/rooms"): [Call(ADMIN_ONLY)],
    ("POST", "/admin/rooms"): [Call(ADMIN_ONLY, form={})],
    ("POST", "/admin/rooms/{room_id}/close"): [Call(ADMIN_ONLY, form={})],
    ("GET", "/rooms/{room_id}"): [Call(allow(*ACCOUNTS, tenant=OFFICIALS, foreign=DENY))],
    ("GET", "/kiosk/rooms/{room_id}"): [Call(allow(*KIOSKS, tenant=KIOSKS, foreign=DENY))],
    ("GET", "/api/v1/rooms/mine"): [Call(allow(*KIOSKS, *ACCOUNTS))],
    # A still is served only to someone in the same live room, which no HTTP caller here is: the
    # socket matrix covers the members' side.
    ("GET", "/api/v1/rooms/{room_id}/stills/{participant_id}"): [
        Call(
            allow(
                *KIOSKS, *ACCOUNTS, cells={(r, s): HIDE for r in (*KIOSKS, *ACCOUNTS) for s in (OWN, FOREIGN)}
            ),
            params={"participant_id": "k1"},
        )
    ],
    ("GET", "/api/v1/admin/rooms"): [Call(ADMIN_ONLY)],
    ("POST", "/api/v1/admin/rooms"): [Call(ADMIN_ONLY)],
    ("POST", "/api/v1/admin/rooms/{room_id}/invitations"): [Call(ADMIN_ONLY)],
    ("POST", "/api/v1/admin/rooms/{room_id}/close"): [Call(ADMIN_ONLY)],
    # --- meetings: the chair and invited officials see a meeting, kiosks of invited villages join -
    ("GET", "/admin/meetings"): [Call(ADMIN_ONLY)],
    ("POST", "/admin/meetings"): [Call(ADMIN_ONLY, form={})],
    ("GET", "/admin/meetings/{meeting_id}"): [Call(ADMIN_ONLY)],
    ("POST", "/admin/meetings/{meeting_id}"): [Call(ADMIN_ONLY, form={})],
    ("POST", "/admin/meetings/{meeting_id}/agenda"): [Call(ADMIN_ONLY, form={})],
    ("POST", "/admin/meetings/{meeting_id}/agenda/{item_id}/{action}"): [
        Call(ADMIN_ONLY, params={"action": "up"}, form={})
    ],
    ("POST", "/admin/meetings/{meeting_id}/recording/{action}"): [
        Call(ADMIN_ONLY, params={"action": "stop"}, form={})
    ],
    ("POST", "/admin/meetings/{meeting_id}/{action}"): [Call(ADMIN_ONLY, params={"action": "end"}, form={})],
    ("GET", "/meetings/{meeting_id}/record"): [Call(DEPARTMENT)],
    ("GET", "/meetings/{meeting_id}/record.json"): [Call(DEPARTMENT)],
    ("GET", "/meetings/{meeting_id}/record.csv"): [Call(DEPARTMENT)],
    # No meeting has a recording yet: every caller who may see the meeting gets 404 for it.
    ("GET", "/meetings/{meeting_id}/recordings/{recording_id}"): [
        Call(
            allow(
                *ACCOUNTS,
                tenant=OFFICIALS,
                cells={(r, OWN): HIDE for r in ACCOUNTS} | {("admin", FOREIGN): HIDE},
            ),
            params={"recording_id": "1"},
        )
    ],
    ("GET", "/meetings/{meeting_id}/join"): [Call(allow(*ACCOUNTS, tenant=OFFICIALS, foreign=DENY))],
    ("GET", "/kiosk/meetings/{meeting_id}/join"): [Call(allow(*KIOSKS, tenant=KIOSKS, foreign=DENY))],
    ("GET", "/official/meetings"): [Call(ACCOUNTS_ONLY)],
    ("GET", "/official/meetings.ics"): [Call(ACCOUNTS_ONLY)],
    ("GET", "/kiosk/{feed}"): [Call(KIOSK_ONLY, params={"feed": "meetings.ics"})],
    ("GET", "/api/v1/meetings"): [Call(ACCOUNTS_ONLY)],
    ("POST", "/api/v1/meetings"): [Call(ADMIN_ONLY)],
    ("GET", "/api/v1/meetings/{meeting_id}"): [Call(DEPARTMENT)],
    ("PATCH", "/api/v1/meetings/{meeting_id}"): [Call(ADMIN_ONLY)],
    ("POST", "/api/v1/meetings/{meeting_id}/transitions"): [Call(DEPARTMENT, json={"action": "end"})],
    ("POST", "/api/v1/meetings/{meeting_id}/recording/start"): [Call(DEPARTMENT)],
    ("POST", "/api/v1/meetings/{meeting_id}/recording/stop"): [Call(DEPARTMENT)],
    ("POST", "/api/v1/meetings/{meeting_id}/agenda"): [
        Call(DEPARTMENT, json={"title": "새 안건"}),
        # Linking a request to one's own meeting: only a request the official may see (else 404).
        Call(DEPARTMENT, own_path=True, json=lambda ids: {"from_petition_id": ids["petition_id"]}),
        Call(
            DEPARTMENT,
            own_path=True,
            json=lambda ids: {"title": "안건", "petition_ids": [ids["petition_id"]]},
        ),
    ],
    ("PATCH", "/api/v1/meetings/{meeting_id}/agenda/{item_id}"): [
        Call(DEPARTMENT, json={"planned_minutes": 5}),
        Call(DEPARTMENT, own_path=True, json=lambda ids: {"petition_ids": [ids["petition_id"]]}),
    ],
    ("DELETE", "/api/v1/meetings/{meeting_id}/agenda/{item_id}"): [Call(DEPARTMENT)],
    ("PUT", "/api/v1/meetings/{meeting_id}/agenda/{item_id}/minutes"): [
        Call(DEPARTMENT, json={"notes": "논의"})
    ],
    ("POST", "/api/v1/meetings/{meeting_id}/agenda/{item_id}/actions"): [
        Call(DEPARTMENT, json={"text": "현장 점검"})
    ],
    ("GET", "/api/v1/meetings/{meeting_id}/admission"): [
        Call(allow(*KIOSKS, *ACCOUNTS, tenant=(*KIOSKS, *OFFICIALS), foreign=DENY))
    ],
    # Only a kiosk present in the live meeting reports its head count (409 not_present, a refusal,
    # for any other); no meeting is live in this world, so every kiosk is refused here, and the
    # present kiosk's report is shown by tests/e2e/test_meeting_live.py.
    ("PUT", "/api/v1/meetings/{meeting_id}/residents"): [
        Call(allow(*KIOSKS, cells={(k, s): DENY for k in KIOSKS for s in (OWN, FOREIGN)}), json={"count": 3})
    ],
    ("GET", "/api/v1/kiosk/meetings"): [Call(KIOSK_ONLY)],
    # A decision another department's meeting took on a request goes to the request's department,
    # which confirms or dismisses it.
    ("GET", "/api/v1/meeting-proposals"): [Call(ACCOUNTS_ONLY)],
    ("POST", "/api/v1/meeting-proposals/{proposal_id}"): [Call(DEPARTMENT, json={"action": "dismiss"})],
    ("POST", "/official/meeting-proposals/{proposal_id}"): [Call(DEPARTMENT, form={"action": "dismiss"})],
}

# Not policy: socket.io authenticates each connection itself (tests/security/test_socket_matrix.py).
NOT_IN_MATRIX = {("GET", "/socket.io/"), ("POST", "/socket.io/")}


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        if route.resource is None or route.method == "HEAD" or isinstance(route.resource, web.StaticResource):
            continue
        info = route.resource.get_info()
        routes.add((route.method, str(info.get("path") or info.get("formatter"))))
    return routes


def test_every_route_has_an_entry(tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/maeul.db", tmp_path))
    served = served_routes(app) - NOT_IN_MATRIX
    assert sorted(served - MATRIX.keys()) == [], "routes without an entry in the access matrix"
    assert sorted(MATRIX.keys() - served) == [], "entries for routes the app does not serve"


@pytest.fixture(scope="module")
def route_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouteWorld]:
    import asyncio

    yield asyncio.run(build_route_world(tmp_path_factory.mktemp("route-world")))


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
async def test_route_as_every_role(route: tuple[str, str], route_world: RouteWorld, tmp_path: Path) -> None:
    method, template = route
    wrong: list[str] = []
    for n, call in enumerate(MATRIX[route]):
        sided = "{" in template or callable(call.json)
        for role in ROLES:
            root = tmp_path / f"{n}-{role}"
            root.mkdir()
            settings = copy_world(route_world, root)
            async with TestClient(TestServer(create_app(settings))) as client:
                own = SIDE_OF[role]
                for side in (OTHER[own], own) if sided else (own,):
                    scope = OWN if side == own else FOREIGN
                    ids = route_world.sides[side].ids
                    path_ids = route_world.sides[own].ids if call.own_path else ids
                    path = path_for(template, call, path_ids)
                    status, location, body = await call_as(client, route_world, role, method, path, call, ids)
                    got = outcome(status, location, body, login_is_ok=call.login_is_ok)
                    expected = call.expect(role, scope)
                    if got != expected:
                        wrong.append(
                            f"call {n}, {role} on {scope} ({path}): {status} {got}, "
                            f"expected {expected}: {body[:120]}"
                        )
    assert not wrong, "\n".join(wrong)
