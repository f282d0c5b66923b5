"""OpenAPI declarations of the auth API (see ``server.openapi.spec``): the session and "who am I",
one's own password, and the admin's account management."""

from __future__ import annotations

from functools import partial
from typing import Any

from server.auth.accounts import AccountActionBody, PasswordChange
from server.auth.roles import PUBLIC
from server.auth.views import LoginInput
from server.openapi.spec import Endpoint, boolean, enum, envelope, integer, listing, obj, string

ADMIN = ("admin",)


def _account() -> dict[str, Any]:
    """An account as ``server.auth.accounts.account_json`` writes it."""
    return obj(
        {
            "id": integer(),
            "username": string(),
            "display_name": string(),
            "role": enum("official", "admin"),
            "department_id": integer(null=True),
            "active": boolean(),
            "can_triage": boolean(),
            "login_delayed_until": string(null=True, description="latest login delay on any address"),
        },
        required=("id", "username", "role", "active", "can_triage"),
    )


def _me() -> dict[str, Any]:
    """The signed-in principal as ``/api/v1/me`` and a login return it."""
    return obj(
        {
            "role": enum("kiosk", "official", "admin"),
            "id": integer(),
            "display_name": string(),
            "department_id": integer(null=True),
        },
        required=("role", "id", "display_name"),
    )


def session_endpoints() -> tuple[Endpoint, ...]:
    auth = partial(Endpoint, tag="auth")
    me = _me()
    return (
        auth(
            "post",
            "/api/v1/session",
            "Log in (official or admin); sets the session cookie",
            (PUBLIC,),
            request=LoginInput,
            response=me,
            status=201,
        ),
        auth(
            "delete",
            "/api/v1/session",
            "Log out",
            ("official", "admin"),
            response=envelope("status", string()),
        ),
        auth("get", "/api/v1/me", "Who am I", ("kiosk", "official", "admin"), response=me),
    )


def account_endpoints() -> tuple[Endpoint, ...]:
    accounts = partial(Endpoint, tag="accounts")
    account = _account()
    return (
        accounts(
            "post",
            "/api/v1/me/password",
            "Change one's own password (the current one required; other sessions end)",
            ("official", "admin"),
            request=PasswordChange,
            response=envelope("status", string()),
        ),
        accounts(
            "get", "/api/v1/admin/accounts", "List accounts", ADMIN, response=listing("accounts", account)
        ),
        accounts(
            "post",
            "/api/v1/admin/accounts/{account_id}/actions",
            "Deactivate (ends its sessions and sockets), reactivate, grant or withdraw triage, lift delays",
            ADMIN,
            request=AccountActionBody,
            response=envelope("account", account),
        ),
    )
