"""Login and logout for officials and admins: the HTML form and the JSON API."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import Field

from server.auth.models import Account
from server.auth.roles import PUBLIC, Principal, Role
from server.auth.service import (
    ThrottlePolicy,
    authenticate,
    end_session,
    reserve_login_attempt,
    start_session,
)
from server.cookies import clear_cookie, set_cookie
from server.csrf import rotate_nonce
from server.db import transaction
from server.errors import AuthenticationRequired, TooManyRequests
from server.keys import PASSWORDS, PRINCIPAL, SESSIONMAKER, SETTINGS, SIO
from server.middlewares import SESSION_COOKIE
from server.proxies import client_address
from server.rendering import render
from server.routing import allow
from server.signaling.guard import end_login_session_sockets
from server.validation import Input, form_body, json_body


class LoginInput(Input):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    next: str | None = Field(default=None, max_length=512)


# What a browser drops from a URL before parsing it (WHATWG URL: ASCII tab and newline anywhere;
# C0 controls and space at either end).
_URL_IGNORED = re.compile(r"[\t\n\r]")
_URL_TRIMMED = "".join(chr(c) for c in range(0x21))


def safe_next(target: str | None, role: Role) -> str:
    """Where to go after login: ``target`` only if the browser would read it as a path on this
    site, else the role's home page (an open redirect after login is a phishing tool).

    The check is made on the URL as the browser will see it: ``/<tab>/example.org`` and
    ``/<backslash>example.org`` are both ``//example.org`` to a browser, another site."""
    home = "/admin" if role is Role.ADMIN else "/official"
    if not target:
        return home
    seen = _URL_IGNORED.sub("", target).strip(_URL_TRIMMED).replace("\\", "/")
    parts = urlsplit(seen)
    if (
        not seen.startswith("/")
        or seen.startswith("//")
        or parts.scheme
        or parts.netloc
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in seen)
    ):
        return home
    return seen


async def _login(request: web.Request, data: LoginInput) -> tuple[Account, str]:
    """Authenticate and open a session; returns the account and the new cookie key."""
    settings = request.app[SETTINGS]
    policy = ThrottlePolicy(
        max_failures=settings.login_max_failures,
        lockout=dt.timedelta(minutes=settings.login_lockout_minutes),
    )
    sessionmaker = request.app[SESSIONMAKER]
    client_ip = client_address(request)
    # The attempt is counted and committed before the password is checked: see the service.
    async with transaction(sessionmaker) as session:
        await reserve_login_attempt(session, policy, username=data.username, client_ip=client_ip)
    async with transaction(sessionmaker) as session:
        account = await authenticate(
            session,
            request.app[PASSWORDS],
            policy,
            username=data.username,
            password=data.password,
            client_ip=client_ip,
        )
        if account is None:
            cookie_key = None
        else:
            cookie_key = await start_session(session, account, dt.timedelta(hours=settings.session_hours))
    if account is None or cookie_key is None:
        raise AuthenticationRequired("wrong username or password", code="invalid_credentials")
    return account, cookie_key


def _open_session(request: web.Request, response: web.StreamResponse, cookie_key: str) -> None:
    set_cookie(
        response,
        request,
        SESSION_COOKIE,
        cookie_key,
        max_age=request.app[SETTINGS].session_hours * 3600,
    )
    rotate_nonce(request)  # a fresh CSRF nonce for the new session


@allow(PUBLIC)
async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", {"next": request.query.get("next", ""), "error": None})


@allow(PUBLIC)
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    raw_next = form.get("next")
    next_path = raw_next if isinstance(raw_next, str) else ""
    try:
        data = await form_body(request, LoginInput)
        account, cookie_key = await _login(request, data)
    except (AuthenticationRequired, TooManyRequests) as exc:
        context = {"next": next_path, "error": exc.code, "username": form.get("username", "")}
        response = render(request, "login.html", context, status=exc.status)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    response = web.HTTPSeeOther(safe_next(data.next, Role(account.role)))
    _open_session(request, response, cookie_key)
    raise response


@allow(PUBLIC)
async def logout(request: web.Request) -> web.StreamResponse:
    principal = request[PRINCIPAL]
    if principal is not None and principal.session_id:
        async with transaction(request.app[SESSIONMAKER]) as session:
            await end_session(session, principal.session_id)
        await end_login_session_sockets(request.app[SIO], principal.session_id)
    response = web.HTTPSeeOther("/login")
    clear_cookie(response, request, SESSION_COOKIE)
    rotate_nonce(request)
    raise response


def principal_json(principal: Principal) -> dict[str, object]:
    return {
        "role": principal.role.value,
        "id": principal.id,
        "display_name": principal.display_name,
        "department_id": principal.department_id,
        "village_id": principal.village_id,
    }


@allow(PUBLIC)
async def api_login(request: web.Request) -> web.Response:
    data = await json_body(request, LoginInput)
    account, cookie_key = await _login(request, data)
    response = web.json_response(
        {
            "role": account.role,
            "id": account.id,
            "display_name": account.display_name,
            "department_id": account.department_id,
        },
        status=201,
    )
    _open_session(request, response, cookie_key)
    return response


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_logout(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    assert principal is not None and principal.session_id is not None
    async with transaction(request.app[SESSIONMAKER]) as session:
        await end_session(session, principal.session_id)
    await end_login_session_sockets(request.app[SIO], principal.session_id)
    response = web.json_response({"status": "logged_out"})
    clear_cookie(response, request, SESSION_COOKIE)
    return response


@allow(Role.OFFICIAL, Role.ADMIN, Role.KIOSK)
async def api_me(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    assert principal is not None
    return web.json_response(principal_json(principal))
