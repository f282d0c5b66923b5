"""Cookie flags in one place: HttpOnly, SameSite=Lax, Secure whenever the browser came over TLS."""

from __future__ import annotations

from aiohttp import web

from server.keys import SETTINGS
from server.proxies import via_trusted_proxy


def is_secure(request: web.Request) -> bool:
    settings = request.app[SETTINGS]
    if settings.force_secure_cookies or request.secure:
        return True
    return via_trusted_proxy(request) and request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=is_secure(request),
    )


def clear_cookie(response: web.StreamResponse, request: web.Request, name: str) -> None:
    response.del_cookie(name, path="/", secure=is_secure(request), samesite="Lax")
