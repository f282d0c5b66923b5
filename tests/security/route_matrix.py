"""Calling one route as every role, on its own side's objects and on the other side's.

The roles: ``anonymous``, ``kiosk_a`` and ``kiosk_b`` (the two sides' village-hall kiosks),
``official_x`` and ``official_y`` (the two sides' departments) and ``admin``. Each role calls a
route with the path parameters of side A and of side B; for a role of side A, side A's objects are
its own and side B's are foreign (the admin belongs to side A but may see both).

An answer falls in one of three outcomes:

- ``DENY``: the role may not call the route at all (401, 403, or the login page for a page);
- ``HIDE``: the object exists but is not this caller's (404, as if it did not exist);
- ``OK``: the handler accepted the caller and did its work or refused the input (2xx, 3xx other
  than to the login page, 400, 409, 413, 422, 429).

Anything else (a 5xx above all) is an outcome of its own and never expected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from tests.security.route_world import RouteWorld

ROLES = ("anonymous", "kiosk_a", "kiosk_b", "official_x", "official_y", "admin")
SIDE_OF = {
    "kiosk_a": "A",
    "kiosk_b": "B",
    "official_x": "A",
    "official_y": "B",
    "admin": "A",
    "anonymous": "A",
}
KIOSKS = ("kiosk_a", "kiosk_b")
OFFICIALS = ("official_x", "official_y")
ACCOUNTS = (*OFFICIALS, "admin")

OK, DENY, HIDE = "ok", "deny", "hide"
OWN, FOREIGN = "own", "foreign"


# Error codes that refuse the caller as such, whatever their status (409 not_present: only a kiosk
# that joined the meeting reports on it, and only an invited kiosk can join).
REFUSING_CODES = frozenset({"not_present"})


def outcome(status: int, location: str, body: str = "", *, login_is_ok: bool = False) -> str:
    if status in (302, 303) and location.startswith("/login"):
        return OK if login_is_ok else DENY
    if status in (401, 403):
        return DENY
    code = re.search(r'"code": "(\w+)"', body)
    if code and code.group(1) in REFUSING_CODES:
        return DENY
    if status == 404:
        return HIDE
    if status < 500 and status not in (405,):
        return OK
    return f"status {status}"


@dataclass(frozen=True)
class Expect:
    """Who may call a route, and who only on their own side's objects.

    ``allowed``: roles that may call it. ``tenant``: allowed roles that see only their own side
    (a foreign object is ``foreign``, HIDE by default). ``cells`` overrides single cells, keyed
    by (role, OWN or FOREIGN)."""

    allowed: frozenset[str]
    tenant: frozenset[str] = frozenset()
    foreign: str = HIDE
    cells: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def __call__(self, role: str, scope: str) -> str:
        if (role, scope) in self.cells:
            return self.cells[(role, scope)]
        if role not in self.allowed:
            return DENY
        if scope == FOREIGN and role in self.tenant:
            return self.foreign
        return OK


def allow(
    *roles: str,
    tenant: Iterable[str] = (),
    foreign: str = HIDE,
    cells: Mapping[tuple[str, str], str] | None = None,
) -> Expect:
    return Expect(frozenset(roles), frozenset(tenant), foreign, dict(cells or {}))


PUBLIC = allow(*ROLES)


@dataclass(frozen=True)
class Call:
    """How the matrix calls one route: fixed path parameters, and a JSON or form body."""

    expect: Expect
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None  # a value, or a function of the side's ids
    form: Mapping[str, str] | None = None
    own_path: bool = False  # the path names the caller's own objects; only the body's side varies
    login_is_ok: bool = False  # the route's success is a redirect to the login page (logout)

    def body(self, ids: Mapping[str, int]) -> Any:
        return self.json(ids) if callable(self.json) else ({} if self.json is None else self.json)


def path_for(template: str, call: Call, ids: Mapping[str, int]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in call.params:
            return resolve(call.params[name], ids)
        return str(ids[name])

    return re.sub(r"\{(\w+)\}", fill, template)


async def call_as(
    client: TestClient,
    world: RouteWorld,
    role: str,
    method: str,
    path: str,
    call: Call,
    ids: Mapping[str, int],
) -> tuple[int, str, str]:
    """(status, Location, the start of the body) of ``method path`` called as ``role``."""
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    if role in KIOSKS:
        headers["Authorization"] = f"Bearer {world.sides[SIDE_OF[role]].kiosk.token}"
    elif role in ACCOUNTS:
        account = world.accounts[role]
        cookies = dict(account.cookies)
        headers["X-CSRF-Token"] = account.csrf
    kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
    if method not in ("GET", "HEAD", "DELETE"):
        if call.form is not None:
            kwargs["data"] = dict(call.form)
        else:
            kwargs["data"] = json.dumps(call.body(ids))
            headers["Content-Type"] = "application/json"
    async with aiohttp.ClientSession(cookies=cookies, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.request(method, client.make_url(path), **kwargs) as response:
            body = (await response.read())[:300].decode(errors="replace")
            return response.status, response.headers.get("Location", ""), body


def resolve(value: str, ids: Mapping[str, int]) -> str:
    """A parameter given as ``@name`` is the side's id called ``name``; anything else is literal."""
    return str(ids[value[1:]]) if value.startswith("@") else value
