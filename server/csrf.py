"""CSRF protection: a signed double-submit token.

The ``maeul_csrf`` cookie holds a random nonce (HttpOnly, SameSite=Lax); forms carry
``csrf_token`` and scripts send ``X-CSRF-Token``, both HMAC(secret, nonce + who is logged in). An
attacker who can plant a cookie still cannot forge the HMAC; and because the token of a logged-in
browser is bound to its login session (a kiosk's to its device), a nonce and token pair the attacker
got from their own visit is worthless against a logged-in victim even with the cookie planted. The
nonce is rotated at login and logout.

Exempt: requests that carry no credential cookie (session or kiosk) and either send
``Authorization`` or a JSON body — they hold no ambient credential a foreign page could ride on
(the kiosk agent, scripts), and a cross-site page cannot send JSON without a CORS preflight.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from server.auth.secrets import new_token, sign
from server.errors import CsrfFailed
from server.keys import CSRF_NONCE, PRINCIPAL, SETTINGS

CSRF_COOKIE = "maeul_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CREDENTIAL_COOKIES = ("maeul_session", "maeul_kiosk")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _expected(request: web.Request, nonce: str) -> str:
    principal = request.get(PRINCIPAL)
    if principal is None:
        bound = ""
    elif principal.session_id is not None:
        bound = "session:" + principal.session_id
    else:
        bound = f"{principal.role.value}:{principal.id}"
    return sign(request.app[SETTINGS].secret_key.get(), f"csrf:{nonce}:{bound}")


def csrf_token(request: web.Request) -> str:
    nonce = request.get(CSRF_NONCE)
    if nonce is None:
        return ""
    return _expected(request, nonce)


def rotate_nonce(request: web.Request) -> None:
    request[CSRF_NONCE] = new_token(16)


def _exempt(request: web.Request) -> bool:
    if any(name in request.cookies for name in CREDENTIAL_COOKIES):
        return False
    return "Authorization" in request.headers or request.content_type == "application/json"


async def check_csrf(request: web.Request) -> None:
    if request.method in SAFE_METHODS or _exempt(request):
        return
    cookie_nonce = request.cookies.get(CSRF_COOKIE)
    if not cookie_nonce:
        raise CsrfFailed("missing CSRF cookie; reload the page and try again")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.post()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    expected = _expected(request, cookie_nonce)
    if not sent or not hmac.compare_digest(sent, expected):
        raise CsrfFailed("missing or invalid CSRF token; reload the page and try again")
