"""``create_app(settings)``: builds the aiohttp application and wires every part of Maeul."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Literal

from aiohttp import web

from server import routes
from server.auth.secrets import Passwords
from server.cluster.plane import MEDIA
from server.cluster.registry import SpanPolicy, connect
from server.cluster.remote import RemoteSfu
from server.config import Settings
from server.db import close_engine, create_engine, make_sessionmaker
from server.errors import ConfigError
from server.i18n import Catalogs
from server.keys import CATALOGS, ENGINE, PASSWORDS, SESSIONMAKER, SETTINGS, SFU, SPACE, TEMPLATES
from server.meetings.clock import meeting_clock_ctx
from server.meetings.presence import presence_ctx
from server.middlewares import authorization, errors, media_space, request_context
from server.ops.live_share import live_share_ctx
from server.ops.metrics import setup_metrics
from server.ops.retention import retention_ctx
from server.ops.sampler import sampler_ctx
from server.ops.views import http_metrics
from server.petitions.storage import MIB, SpaceGuard
from server.rendering import make_environment
from server.sfu import Sfu, SfuConfig
from server.signaling.ice import sfu_ice_servers
from server.signaling.redis_manager import RedisManager
from server.signaling.restart import announce_restart
from server.signaling.server import setup_signaling

log = logging.getLogger(__name__)

# Petition uploads (voice/video messages) are the largest bodies Maeul accepts.
CLIENT_MAX_SIZE = 64 * 1024 * 1024


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine(app[SETTINGS].database_url)
    app[ENGINE] = engine
    app[SESSIONMAKER] = make_sessionmaker(engine)
    log.info("database engine opened", extra={"dialect": engine.dialect.name})
    yield
    await close_engine(engine)
    log.info("database engine closed")


def sfu_config(settings: Settings) -> SfuConfig:
    """The SFU's settings, for the embedded server and for an SFU worker process alike."""
    return SfuConfig(
        host_addresses=settings.rtc_host_addresses,
        ice_servers=sfu_ice_servers(settings),
        consent_timeout=float(settings.rtc_consent_timeout_seconds),
        udp_port=settings.rtc_udp_port,
    )


async def sfu_ctx(app: web.Application) -> AsyncIterator[None]:
    """The embedded SFU (``run.py serve``): every room in this process; closed on shutdown."""
    sfu = Sfu(sfu_config(app[SETTINGS]))
    app[SFU] = sfu
    app[MEDIA] = sfu
    yield
    await sfu.close()
    log.info("SFU closed")


async def cluster_ctx(app: web.Application) -> AsyncIterator[None]:
    """``run.py web``: the rooms live in SFU worker processes, reached through Redis
    (server/cluster/remote.py). Nothing here waits for Redis: while it is away, joins get
    ``unavailable`` and the rest of the site works."""
    settings = app[SETTINGS]
    url = settings.redis_url
    assert url is not None  # create_app refuses the web role without it
    redis = connect(url)
    remote = RemoteSfu(redis, span=SpanPolicy(cpu=settings.room_span_cpu, cap=settings.room_span_cap))
    await remote.start()
    app[MEDIA] = remote
    log.info("SFU workers reached through Redis", extra={"web_id": remote.web_id})
    yield
    await remote.close()
    await redis.aclose()


Role = Literal["serve", "web"]


def create_app(settings: Settings, *, role: Role = "serve") -> web.Application:
    """``serve``: one process with its own SFU. ``web``: HTTP, pages, API and signaling, with the
    media in ``run.py sfu`` workers (needs MAEUL_REDIS_URL; docs/scale.md)."""
    if role == "web" and not settings.redis_url:
        raise ConfigError("`run.py web` needs MAEUL_REDIS_URL (the Redis it shares with the SFU workers)")
    app = web.Application(
        # http_metrics outermost: it times every answer, error pages and refusals included.
        middlewares=[http_metrics, request_context, errors, authorization, media_space],
        client_max_size=CLIENT_MAX_SIZE,
    )
    app[SETTINGS] = settings
    setup_metrics(app)  # before setup_signaling, whose event hook counts into it
    app[SPACE] = SpaceGuard(settings.data_dir, settings.min_free_mb * MIB)
    app[PASSWORDS] = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)
    app[CATALOGS] = Catalogs(settings.default_locale)
    app[TEMPLATES] = make_environment()
    app.cleanup_ctx.append(database_ctx)
    # Before setup_signaling, whose meeting hub uses the media plane.
    if role == "web":
        app.cleanup_ctx.append(cluster_ctx)
        app.cleanup_ctx.append(live_share_ctx)  # this process's meetings, for the others' /admin/system
        # socket.io's emits reach the sockets of every web process (JSON over Redis pub/sub).
        assert settings.redis_url is not None
        manager = RedisManager(settings.redis_url, channel="maeul:socketio")
        setup_signaling(app, client_manager=manager)
    else:
        app.cleanup_ctx.append(sfu_ctx)
        setup_signaling(app)
    app.cleanup_ctx.append(meeting_clock_ctx)  # meetings open at their start, end when abandoned
    app.cleanup_ctx.append(sampler_ctx)  # a row of history a minute for /admin/system
    app.cleanup_ctx.append(retention_ctx)  # daily: erase recordings and personal data that are due
    # After the hub: presences left open by a crash end at their last media; media marks while serving.
    app.cleanup_ctx.append(presence_ctx)
    app.on_shutdown.append(announce_restart)  # SIGTERM: pages rejoin as soon as we are back
    routes.setup_routes(app)
    return app
