#!/usr/bin/env python3
"""Maeul's entry point: the server and the operator's sub-commands.

    python run.py serve [--demo]           serve (migrating first); --demo seeds demo data
    python run.py web                      scale-out: HTTP, pages, API, signaling (no media)
    python run.py sfu --worker-id N        scale-out: one SFU worker (media only), one per core
    python run.py migrate [--revision R]   alembic upgrade (or --downgrade R)
    python run.py create-admin --username U --name NAME   (password from MAEUL_NEW_PASSWORD or a prompt)
    python run.py create-official --username U --name NAME [--department 민원과] [--triage]
    python run.py create-kiosk --village "강진읍 남성리" --label "남성리 마을회관"
    python run.py revoke-kiosk --id N
    python run.py list-kiosks
    python run.py backup --to DIR          a consistent snapshot while the server runs
    python run.py verify-backup DIR        check a snapshot against its manifest
    python run.py restore --from DIR       into an empty data directory and database

Settings come from MAEUL_* environment variables (see .env.example).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtc import event_loop
from server import migrate, preflight, seed
from server.app import create_app, sfu_config
from server.auth.roles import Role
from server.auth.secrets import Passwords
from server.auth.service import create_account
from server.cluster.worker import serve_worker
from server.cluster.worker_metrics import metrics_address
from server.config import Settings
from server.db import close_engine, create_engine, make_private, make_sessionmaker, transaction
from server.errors import AppError, ConfigError, MaeulError
from server.geo.models import Division, Village
from server.kiosks import service as kiosks
from server.kiosks.models import Kiosk
from server.logs import configure_logging
from server.ops import backup, restore
from server.org.models import Department
from server.petitions import pins, receipts

log = logging.getLogger("maeul")
T = TypeVar("T")


def with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await close_engine(engine)

    return asyncio.run(main())


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    try:  # checked before migrating, so a typo fails at once
        loop_kind = event_loop.kind_from_env(os.environ)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if args.no_migrate:
        migrate.check_known(settings.database_url)
    else:
        migrate.upgrade(settings.database_url)
    if args.demo:
        print_demo(settings)
    app = create_app(settings)
    shown_host = "localhost" if settings.host in ("127.0.0.1", "::1") else settings.host
    print(f"Maeul is serving at http://{shown_host}:{settings.port}", flush=True)
    log.info("serving on the %s event loop", loop_kind)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        loop=event_loop.new_event_loop(loop_kind),  # uvloop unless MAEUL_EVENT_LOOP=asyncio
    )


def cmd_web(settings: Settings, args: argparse.Namespace) -> None:
    """One web process of a scale-out deployment (docs/scale.md): any number run behind nginx,
    sharing PostgreSQL and Redis; media goes to the ``run.py sfu`` workers."""
    if not settings.redis_url:
        raise ConfigError("`run.py web` needs MAEUL_REDIS_URL (the Redis shared with the SFU workers)")
    if not settings.database_url.startswith("postgresql"):
        raise ConfigError("`run.py web` needs PostgreSQL (MAEUL_DATABASE_URL=postgresql+asyncpg://…)")
    # PostgreSQL (reachable, at the schema head: migrating is `run.py migrate`'s job, done once,
    # not every web process's at start) and Redis, each problem in one line; exit 69 or 78.
    status = asyncio.run(preflight.run(settings))
    if status:
        raise SystemExit(status)
    app = create_app(settings, role="web")
    print(f"Maeul web process serving at http://{settings.host}:{settings.port}", flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)


def cmd_sfu(settings: Settings, args: argparse.Namespace) -> None:
    """One SFU worker (media only) of a scale-out deployment; one per core."""
    if not settings.redis_url:
        raise ConfigError("`run.py sfu` needs MAEUL_REDIS_URL (the Redis shared with the web processes)")
    # Its own /metrics address (ConfigError for a worker id that gives no port), before anything runs.
    metrics = metrics_address(settings.sfu_metrics_host, settings.sfu_metrics_port, args.worker_id)
    status = asyncio.run(preflight.run(settings, database=False))  # a worker needs only Redis
    if status:
        raise SystemExit(status)
    print(f"Maeul SFU worker {args.worker_id} starting", flush=True)
    token = settings.metrics_token.get() if settings.metrics_token is not None else None
    status = asyncio.run(
        serve_worker(
            sfu_config(settings),
            settings.redis_url,
            args.worker_id,
            metrics=metrics,
            metrics_token=token,
            drain_s=settings.sfu_drain_seconds,
        )
    )
    if status:
        raise SystemExit(status)


def print_demo(settings: Settings) -> None:
    passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)
    logins_file = settings.data_dir / "demo_logins.json"
    receipts_file = settings.data_dir / "demo_receipts.json"
    pepper, params = pins.pin_pepper(settings), pins.pin_params(settings)

    def pin_hasher(pin: str) -> str:
        return receipts.hash_pin(pin, pepper=pepper, params=params)

    async def work(session: AsyncSession) -> tuple[list[seed.DemoLogin], list[tuple[Kiosk, str | None]]]:
        logins = await seed.seed_demo(
            session, passwords, logins_file, pin_hasher=pin_hasher, receipts_file=receipts_file
        )
        codes = await seed.demo_enrollment_codes(session, dt.timedelta(hours=settings.enrollment_code_hours))
        return logins, codes

    logins, codes = with_session(settings, work)
    base = f"http://localhost:{settings.port}"
    lines = ["", "=" * 72, "Maeul demo (data seeded once; passwords kept in var/demo_logins.json)", ""]
    lines.append(f"  Log in at {base}/login")
    for login in logins:
        lines.append(
            f"    {login.role:<8} {login.username:<10} password: {login.password}   ({login.display_name})"
        )
    lines.append("")
    lines.append("  Demo kiosks (open a link in a browser to make it that village's kiosk):")
    for kiosk, code in codes:
        if code is None:
            lines.append(
                f"    {kiosk.label}: enrolled already — open {base}/kiosk in that browser,"
                f" or re-enroll at {base}/admin/kiosks"
            )
        else:
            lines.append(f"    {kiosk.label}: {base}/kiosk/enroll?code={code}")
    demo_receipts = seed.load_demo_receipts(receipts_file)
    if demo_receipts:
        lines.append("")
        lines.append("  Demo requests (check one at a kiosk: 내 요청 확인 → receipt number and PIN):")
        for r in demo_receipts:
            lines.append(f"    {r.receipt_no}  PIN {r.pin}  {r.title}")
    lines += ["=" * 72, ""]
    print("\n".join(lines), flush=True)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    if args.downgrade:
        migrate.downgrade(settings.database_url, args.downgrade)
    else:
        migrate.upgrade(settings.database_url, args.revision)
    print("database migrated")


def _new_password() -> str:
    password = os.environ.get("MAEUL_NEW_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password (at least 10 characters): ")
    if first != getpass.getpass("Again: "):
        raise SystemExit("passwords do not match")
    return first


def cmd_create_account(role: Role) -> Callable[[Settings, argparse.Namespace], None]:
    def run(settings: Settings, args: argparse.Namespace) -> None:
        password = _new_password()
        passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)

        async def work(session: AsyncSession) -> int:
            department_id = None
            if getattr(args, "department", None):
                department_id = await session.scalar(
                    select(Department.id).where(Department.name_ko == args.department)
                )
                if department_id is None:
                    raise SystemExit(f"no department named {args.department!r}")
            account = await create_account(
                session,
                passwords,
                username=args.username,
                password=password,
                display_name=args.name,
                role=role,
                department_id=department_id,
            )
            account.can_triage = bool(getattr(args, "triage", False))
            return account.id

        account_id = with_session(settings, work)
        print(f"{role.value} {args.username!r} created (id {account_id})")

    return run


def cmd_create_kiosk(settings: Settings, args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> tuple[int, str, dt.datetime]:
        division_name, _, village_name = args.village.partition(" ")
        village = await session.scalar(
            select(Village)
            .join(Division)
            .where(Division.name_ko == division_name, Village.name_ko == village_name)
        )
        if village is None:
            raise SystemExit(
                f"no village {args.village!r}; write it as '<eup/myeon> <ri>', e.g. '강진읍 남성리'"
            )
        issued = await kiosks.create_kiosk(
            session,
            village_id=village.id,
            label=args.label,
            code_lifetime=dt.timedelta(hours=settings.enrollment_code_hours),
        )
        return issued.kiosk.id, issued.code, issued.expires_at

    kiosk_id, code, expires = with_session(settings, work)
    print(f"kiosk {kiosk_id} created. One-time enrollment code (shown once): {code}")
    print(
        f"valid until {expires.isoformat()}; on the kiosk: python -m kiosk enroll --server URL --code {code}"
    )


def cmd_revoke_kiosk(settings: Settings, args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> str:
        kiosk = await kiosks.revoke(session, args.id)
        return kiosk.label

    label = with_session(settings, work)
    print(
        f"kiosk {args.id} ({label}) revoked; its token is refused from now on and a running server"
        f" closes its open sockets within {settings.socket_recheck_seconds} s"
    )


def cmd_list_kiosks(settings: Settings, args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> list[str]:
        rows = (await session.scalars(select(Kiosk).order_by(Kiosk.id))).all()
        return [
            f"{k.id:>4}  {k.village.full_name_ko:<16} {k.label:<20} "
            f"{'revoked' if k.revoked_at else 'enrolled' if k.is_active else 'waiting'}"
            for k in rows
        ]

    print("\n".join(with_session(settings, work)) or "no kiosks")


def cmd_backup(settings: Settings, args: argparse.Namespace) -> None:
    manifest = backup.backup(settings, Path(args.to))
    total = sum(int(f["size"]) for f in manifest["files"])
    print(f"snapshot written to {args.to}: {len(manifest['files'])} files, {total} bytes")


def cmd_verify_backup(settings: Settings, args: argparse.Namespace) -> None:
    manifest = backup.verify(Path(args.snapshot))
    print(f"snapshot {args.snapshot} is whole: {len(manifest['files'])} files match the manifest")


def cmd_restore(settings: Settings, args: argparse.Namespace) -> None:
    manifest = restore.restore(settings, Path(getattr(args, "from")))
    revisions = ", ".join(manifest["database"]["revisions"]) or "none"
    print(
        f"restored {len(manifest['files'])} files (database at schema revision {revisions});"
        " `run.py serve` migrates it to this version's schema"
    )


def _worker_id(value: str) -> str:
    if not value or len(value) > 32 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
        raise argparse.ArgumentTypeError("a worker id is 1-32 letters, digits, '-' or '_' (e.g. 1)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description="Maeul server and operator commands")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the server (default)")
    serve.add_argument("--demo", action="store_true", help="seed demo data once and print demo logins")
    serve.add_argument("--no-migrate", action="store_true", help="do not run migrations before serving")
    serve.set_defaults(func=cmd_serve)
    webp = sub.add_parser("web", help="scale-out: a web process (HTTP, signaling; no media)")
    webp.set_defaults(func=cmd_web)
    sfu = sub.add_parser("sfu", help="scale-out: an SFU worker process (media only)")
    sfu.add_argument(
        "--worker-id", required=True, type=_worker_id, help="this worker's id, unique among live workers"
    )
    sfu.set_defaults(func=cmd_sfu)
    mig = sub.add_parser("migrate", help="upgrade the database schema")
    mig.add_argument("--revision", default="head")
    mig.add_argument("--downgrade", metavar="REVISION")
    mig.set_defaults(func=cmd_migrate)
    for name, role in (("create-admin", Role.ADMIN), ("create-official", Role.OFFICIAL)):
        p = sub.add_parser(name, help=f"create an {role.value} account")
        p.add_argument("--username", required=True)
        p.add_argument("--name", required=True, help="display name")
        if role is Role.OFFICIAL:
            p.add_argument("--department", help="department name in Korean, e.g. 민원과")
            p.add_argument(
                "--triage",
                action="store_true",
                help="may route requests no department has yet (민원과 staff)",
            )
        p.set_defaults(func=cmd_create_account(role))
    ck = sub.add_parser("create-kiosk", help="register a kiosk and print its one-time enrollment code")
    ck.add_argument("--village", required=True, help="e.g. '강진읍 남성리'")
    ck.add_argument("--label", required=True)
    ck.set_defaults(func=cmd_create_kiosk)
    rk = sub.add_parser("revoke-kiosk", help="revoke a kiosk's device token at once")
    rk.add_argument("--id", type=int, required=True)
    rk.set_defaults(func=cmd_revoke_kiosk)
    lk = sub.add_parser("list-kiosks", help="list kiosks")
    lk.set_defaults(func=cmd_list_kiosks)
    bk = sub.add_parser("backup", help="take a consistent snapshot (database + media) while serving")
    bk.add_argument("--to", required=True, metavar="DIR", help="a new or empty directory")
    bk.set_defaults(func=cmd_backup)
    vb = sub.add_parser("verify-backup", help="check a snapshot's files against its manifest")
    vb.add_argument("snapshot", metavar="DIR")
    vb.set_defaults(func=cmd_verify_backup)
    rs = sub.add_parser("restore", help="restore a snapshot into an empty data directory and database")
    rs.add_argument("--from", required=True, metavar="DIR")
    rs.set_defaults(func=cmd_restore)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv or [])])
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "demo", False) and settings.is_production:
        # The demo seeds accounts whose passwords are printed on every start.
        print("configuration error: --demo is refused with MAEUL_ENV=production", file=sys.stderr)
        return 2
    make_private(settings.data_dir, settings.database_url)
    configure_logging(settings.log_level, json_lines=settings.log_json)
    try:
        args.func(settings, args)
    except AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except MaeulError as exc:  # an operator's command refused (backup, restore, a newer database)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
