"""Every route declares who may call it; the auth middleware refuses routes that do not.

    @allow(Role.ADMIN)
    async def admin_home(request: web.Request) -> web.Response: ...

Failing closed means a new view without ``@allow`` is unreachable rather than public.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from server.auth.roles import PUBLIC, Principal, Role
from server.keys import PRINCIPAL

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

_ATTR = "__maeul_roles__"
_SELF_AUTH_ATTR = "__maeul_self_authenticating__"


def allow(*roles: Role | str, self_authenticating: bool = False) -> Callable[[H], H]:
    """Declare the roles that may call a handler (``PUBLIC`` for anyone).

    ``self_authenticating`` is for transports that authenticate each connection themselves
    (socket.io): the middleware neither resolves a principal nor checks CSRF for them; engine.io
    refuses cross-origin requests instead."""
    if not roles:
        raise ValueError("allow() needs at least one role or PUBLIC")
    for role in roles:
        if role != PUBLIC and not isinstance(role, Role):
            raise ValueError(f"unknown role {role!r}")

    def mark(handler: H) -> H:
        setattr(handler, _ATTR, frozenset(roles))
        setattr(handler, _SELF_AUTH_ATTR, self_authenticating)
        return handler

    return mark


def allowed_roles(handler: object) -> frozenset[Role | str] | None:
    return getattr(handler, _ATTR, None)


def principal_of(request: web.Request) -> Principal:
    """The caller of a route that does not allow PUBLIC (the middleware refused anonymous callers)."""
    principal = request[PRINCIPAL]
    assert principal is not None
    return principal


def is_self_authenticating(handler: object) -> bool:
    return bool(getattr(handler, _SELF_AUTH_ATTR, False))
