"""Migrations upgrade from empty and downgrade back, and agree with the models (no drift)."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from server import migrate
from server.db import close_engine, create_engine
from server.models import Base


async def _table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await close_engine(engine)


async def _diff(url: str) -> list[object]:
    def compare(sync: Connection) -> list[object]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(compare)
    finally:
        await close_engine(engine)


async def test_upgrade_from_empty_then_downgrade_to_base(empty_db_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_db_url)
    tables = await _table_names(empty_db_url)
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables

    await asyncio.to_thread(migrate.downgrade, empty_db_url, "base")
    assert await _table_names(empty_db_url) <= {"alembic_version"}

    # And up again: downgrades leave nothing behind that breaks a second upgrade.
    await asyncio.to_thread(migrate.upgrade, empty_db_url)
    assert set(Base.metadata.tables) <= await _table_names(empty_db_url)


async def test_models_and_migrations_agree(db_url: str) -> None:
    assert await _diff(db_url) == []
