"""Typed keys for everything the application holds (``app[KEY]``) and per-request state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import socketio
from aiohttp import web
from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.auth.roles import Principal
from server.auth.secrets import Passwords
from server.background import FailureStreak
from server.config import Settings
from server.i18n import Catalogs
from server.petitions.storage import SpaceGuard
from server.sfu import Sfu

if TYPE_CHECKING:
    from server.ops.metrics import Metrics
    from server.signaling.room_hub import RoomHub

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("sessionmaker")
PASSWORDS = web.AppKey("passwords", Passwords)
TEMPLATES = web.AppKey("templates", Environment)
CATALOGS = web.AppKey("catalogs", Catalogs)
SIO = web.AppKey("sio", socketio.AsyncServer)
SFU = web.AppKey("sfu", Sfu)
ROOM_HUB: web.AppKey[RoomHub] = web.AppKey("room_hub")
CLOCK = web.AppKey("meeting_clock", FailureStreak)  # the meeting clock's health, for /readyz
SPACE = web.AppKey("space_guard", SpaceGuard)  # MAEUL_MIN_FREE_MB for new media
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")  # this process's Prometheus registry
SAMPLER = web.AppKey("ops_sampler", FailureStreak)  # the system-history sampler's health

# Per request, set by the middlewares.
PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")
LOCALE = web.RequestKey("locale", str)
CSRF_NONCE = web.RequestKey("csrf_nonce", str)
REQUEST_ID = web.RequestKey("request_id", str)
