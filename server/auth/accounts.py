"""Account management: an official changes her own password; an admin deactivates or reactivates
accounts, grants triage and lifts login delays. Pages and the JSON API share the service calls."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field

from server.auth import service
from server.auth.models import Account
from server.auth.roles import Principal, Role
from server.db import transaction
from server.errors import AppError, BadRequest
from server.keys import PASSWORDS, SESSIONMAKER, SIO
from server.rendering import render
from server.routing import allow, principal_of
from server.signaling.guard import end_account_sockets
from server.validation import Input, form_body, json_body, path_id

AccountAction = Literal["deactivate", "activate", "grant_triage", "revoke_triage", "unlock"]


class PasswordChange(Input):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class AccountActionBody(Input):
    action: AccountAction


def account_json(row: service.AccountRow) -> dict[str, object]:
    account = row.account
    return {
        "id": account.id,
        "username": account.username,
        "display_name": account.display_name,
        "role": account.role,
        "department_id": account.department_id,
        "active": account.is_active,
        "can_triage": account.can_triage,
        "login_delayed_until": row.locked_until.isoformat() if row.locked_until else None,
    }


async def _change_password(request: web.Request, principal: Principal, data: PasswordChange) -> None:
    async with transaction(request.app[SESSIONMAKER]) as session:
        await service.change_password(
            session,
            request.app[PASSWORDS],
            principal,
            current_password=data.current_password,
            new_password=data.new_password,
        )


@allow(Role.OFFICIAL, Role.ADMIN)
async def password_page(request: web.Request) -> web.Response:
    context = {
        "error": None,
        "done": request.query.get("done") == "1",
        "min_length": service.MIN_PASSWORD_LENGTH,
    }
    return render(request, "account/password.html", context)


@allow(Role.OFFICIAL, Role.ADMIN)
async def password_submit(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    try:
        data = await form_body(request, PasswordChange)
        await _change_password(request, principal, data)
    except AppError as exc:
        context = {"error": exc.code, "done": False, "min_length": service.MIN_PASSWORD_LENGTH}
        return render(request, "account/password.html", context, status=exc.status)
    raise web.HTTPSeeOther("/account/password?done=1")


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_change_password(request: web.Request) -> web.Response:
    data = await json_body(request, PasswordChange)
    await _change_password(request, principal_of(request), data)
    return web.json_response({"status": "password_changed"})


async def _act(request: web.Request, account_id: int, action: AccountAction) -> Account:
    """Apply one admin action; deactivation also closes the account's sockets after the commit."""
    admin = principal_of(request)
    ended: service.AccountEnded | None = None
    async with transaction(request.app[SESSIONMAKER]) as session:
        if action == "deactivate":
            ended = await service.deactivate_account(session, admin, account_id)
        elif action == "unlock":
            await service.unlock_account(session, account_id)
        else:
            await service.set_account_flags(
                session,
                account_id,
                active=True if action == "activate" else None,
                can_triage={"grant_triage": True, "revoke_triage": False}.get(action),
            )
        account = await session.get(Account, account_id)
        if account is None:
            raise BadRequest("no such account", code="account_not_found")
    if ended is not None:
        # After the commit, so a socket that reconnects at once finds the account inactive.
        await end_account_sockets(request.app[SIO], ended.account_id)
    return account


async def _rows(request: web.Request) -> list[service.AccountRow]:
    async with transaction(request.app[SESSIONMAKER]) as session:
        return await service.list_accounts(session)


@allow(Role.ADMIN)
async def accounts_page(request: web.Request) -> web.Response:
    return render(request, "admin/accounts.html", {"rows": await _rows(request), "error": None})


@allow(Role.ADMIN)
async def accounts_submit(request: web.Request) -> web.StreamResponse:
    try:
        data = await form_body(request, AccountActionBody)
        await _act(request, path_id(request, "account_id"), data.action)
    except AppError as exc:
        if exc.status == 404:
            raise
        context = {"rows": await _rows(request), "error": exc.code}
        return render(request, "admin/accounts.html", context, status=exc.status)
    raise web.HTTPSeeOther("/admin/accounts")


@allow(Role.ADMIN)
async def api_list_accounts(request: web.Request) -> web.Response:
    return web.json_response({"accounts": [account_json(row) for row in await _rows(request)]})


@allow(Role.ADMIN)
async def api_account_action(request: web.Request) -> web.Response:
    account_id = path_id(request, "account_id")
    data = await json_body(request, AccountActionBody)
    await _act(request, account_id, data.action)
    row = next(r for r in await _rows(request) if r.account.id == account_id)
    return web.json_response({"account": account_json(row)})
