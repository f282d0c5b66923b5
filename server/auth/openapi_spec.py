"""OpenAPI declarations of the account API (see ``server.openapi``): one's own password, and the
admin's account management."""

from __future__ import annotations

from functools import partial
from typing import Any

from server.auth.accounts import AccountActionBody, PasswordChange
from server.openapi import Endpoint, obj
from server.openapi_schemas import boolean, enum, envelope, integer, listing, string

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
