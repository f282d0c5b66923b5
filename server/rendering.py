"""Page rendering with the request's locale, principal and CSRF token in every template."""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from server.config import PROJECT_ROOT
from server.csrf import csrf_token
from server.keys import CATALOGS, LOCALE, PRINCIPAL, SETTINGS, TEMPLATES
from server.timeutil import format_local

TEMPLATES_DIR = PROJECT_ROOT / "web" / "templates"
STATIC_DIR = PROJECT_ROOT / "web" / "static"


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local_time"] = format_local
    return env


def wants_json(request: web.Request) -> bool:
    if request.path.startswith("/api/"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    locale = request.get(LOCALE) or request.app[SETTINGS].default_locale
    translations = request.app[CATALOGS].get(locale)
    page = request.app[TEMPLATES].get_template(template)
    body = page.render(
        {
            "_": translations.gettext,
            "ngettext": translations.ngettext,
            "locale": locale,
            "principal": request.get(PRINCIPAL),
            "csrf_token": csrf_token(request),
            "request_path": request.path,
            "static": lambda path: str(request.app.router["static"].url_for(filename=path)),
            **(context or {}),
        }
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
