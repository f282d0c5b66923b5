"""The request pipeline, outermost first:

1. ``request_context`` — request id, locale, access log, security headers, CSRF cookie.
2. ``errors`` — maps the error tree (and aiohttp's HTTP errors) to JSON or a friendly page.
3. ``auth`` — resolves the principal (session cookie, kiosk cookie or bearer token) and enforces
   the route's ``@allow`` roles; checks CSRF on unsafe methods.
4. ``media_space`` — refuses media bodies (507) while the disk is low (``SpaceGuard``).
"""

from __future__ import annotations

import logging
import time
import uuid
from urllib.parse import quote

from aiohttp import web

from server.auth.roles import PUBLIC, Principal
from server.auth.service import principal_for_session
from server.cookies import set_cookie
from server.csrf import CSRF_COOKIE, check_csrf, rotate_nonce
from server.db import transaction
from server.errors import (
    AppError,
    AuthenticationRequired,
    Forbidden,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    describe,
    outage_error,
)
from server.keys import CATALOGS, CSRF_NONCE, LOCALE, PRINCIPAL, REQUEST_ID, SESSIONMAKER, SPACE
from server.kiosks.service import principal_for_token
from server.petitions.storage import MAX_UNSIZED_BODY_BYTES, SMALL_BODY_BYTES
from server.rendering import render, wants_json
from server.routing import Handler, allowed_roles, is_self_authenticating

log = logging.getLogger(__name__)
access_log = logging.getLogger("maeul.access")

SESSION_COOKIE = "maeul_session"
KIOSK_COOKIE = "maeul_kiosk"
LANG_COOKIE = "maeul_lang"
ONE_YEAR = 365 * 24 * 3600

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self)",
}


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[REQUEST_ID] = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex[:16]
    catalogs = request.app[CATALOGS]
    requested = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    request[LOCALE] = catalogs.negotiate(requested)
    cookie_nonce = request.cookies.get(CSRF_COOKIE)
    request[CSRF_NONCE] = cookie_nonce or ""
    if not cookie_nonce:
        rotate_nonce(request)
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects raised by views and the error middleware
        _finish(request, exc, cookie_nonce, started)
        raise
    _finish(request, response, cookie_nonce, started)
    return response


def _finish(
    request: web.Request, response: web.StreamResponse, cookie_nonce: str | None, started: float
) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["X-Request-ID"] = request[REQUEST_ID]
    if request[CSRF_NONCE] != cookie_nonce:
        set_cookie(response, request, CSRF_COOKIE, request[CSRF_NONCE], max_age=None)
    if "lang" in request.query and request[LOCALE] == request.query["lang"]:
        set_cookie(response, request, LANG_COOKIE, request[LOCALE], max_age=ONE_YEAR)
    # Paths only: query strings can hold enrollment codes or receipt numbers.
    access_log.info(
        "request",
        extra={
            "request_id": request[REQUEST_ID],
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AppError as exc:
        return _error_response(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_response(request, _from_http(exc))
    except Exception as exc:
        outage = outage_error(exc)
        if outage is None:
            log.exception("unhandled error", extra={"request_id": request.get(REQUEST_ID)})
            outage = AppError("something went wrong on the server", code="internal_error")
        else:
            # Expected while the database restarts or the disk is full: one line per request, no
            # traceback (/readyz and the meeting clock's log say it once).
            log.warning(
                "%s: %s",
                outage.message,
                describe(exc),
                extra={"request_id": request.get(REQUEST_ID), "code": outage.code},
            )
        return _error_response(request, outage)


def _from_http(exc: web.HTTPException) -> AppError:
    if exc.status == 404:
        return NotFound("no such page")
    if exc.status == 413:
        return PayloadTooLarge("the upload is too large")
    error = AppError(exc.reason, code=exc.reason.lower().replace(" ", "_"))
    error.status = exc.status
    return error


def _error_response(request: web.Request, exc: AppError) -> web.StreamResponse:
    if exc.status >= 500 and not isinstance(exc, ServiceUnavailable | InsufficientStorage):
        log.error("request failed", extra={"request_id": request.get(REQUEST_ID), "code": exc.code})
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    display = _display(request, exc)
    if wants_json(request):
        body = exc.to_json()
        body["error"]["request_id"] = request.get(REQUEST_ID)
        if display:
            body["error"]["display"] = display
        return web.json_response(body, status=exc.status, headers=headers)
    if isinstance(exc, AuthenticationRequired) and request.method == "GET":
        if request.path.startswith("/kiosk"):
            return render(request, "kiosk/not_enrolled.html", status=401)
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
    response = render(request, "error.html", {"error": exc, "display": display}, status=exc.status)
    response.headers.update(headers)
    return response


def _display(request: web.Request, exc: AppError) -> str | None:
    """What to do, in the request's language (Korean unless English was chosen)."""
    if exc.display is None:
        return None
    return request.app[CATALOGS].get(request[LOCALE]).gettext(exc.display)


@web.middleware
async def authorization(request: web.Request, handler: Handler) -> web.StreamResponse:
    match_info = request.match_info
    if match_info.http_exception is not None:
        raise match_info.http_exception
    roles = allowed_roles(match_info.handler)
    resource = match_info.route.resource
    if roles is None and isinstance(resource, web.StaticResource):
        roles = frozenset({PUBLIC})
    if roles is None:
        # Fail closed: a route that forgot @allow is nobody's.
        log.error("route without @allow refused", extra={"path": request.path})
        raise Forbidden("this route declares no roles")
    if is_self_authenticating(match_info.handler):
        request[PRINCIPAL] = None
        return await handler(request)
    request[PRINCIPAL] = await _resolve_principal(request)
    await check_csrf(request)
    if PUBLIC not in roles:
        principal = request[PRINCIPAL]
        if principal is None:
            raise AuthenticationRequired("log in first")
        if principal.role not in roles:
            raise Forbidden(f"the {principal.role.value} role may not do this")
    return await handler(request)


@web.middleware
async def media_space(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Media (a multipart upload larger than a text request) only while the disk keeps
    MAEUL_MIN_FREE_MB free; small writes (logins, PIN checks, text requests) always pass, and so
    do socket.io's messages (never stored: a meeting must not break on a full disk)."""
    size = request.content_length
    is_upload = request.body_exists and request.content_type == "multipart/form-data"
    if not is_upload or (size is not None and size <= SMALL_BODY_BYTES):
        return await handler(request)
    async with request.app[SPACE].reserve(size if size is not None else MAX_UNSIZED_BODY_BYTES):
        return await handler(request)


async def _resolve_principal(request: web.Request) -> Principal | None:
    bearer = request.headers.get("Authorization", "")
    session_key = request.cookies.get(SESSION_COOKIE)
    kiosk_token = request.cookies.get(KIOSK_COOKIE)
    if not (bearer or session_key or kiosk_token):
        return None
    async with transaction(request.app[SESSIONMAKER]) as session:
        if bearer:
            scheme, _, token = bearer.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise AuthenticationRequired("use 'Authorization: Bearer <device token>'")
            principal = await principal_for_token(session, token.strip())
            if principal is None:
                raise AuthenticationRequired("device token unknown or revoked", code="invalid_token")
            return principal
        if session_key:
            principal = await principal_for_session(session, session_key)
            if principal is not None:
                return principal
        if kiosk_token:
            return await principal_for_token(session, kiosk_token)
    return None
