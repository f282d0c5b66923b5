"""Stopping the app's background tasks without cutting their work in half."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def finish_or_cancel(task: asyncio.Task[Any], grace_s: float) -> None:
    """Wait up to ``grace_s`` for ``task`` (already told to stop) to finish on its own, then cancel it.

    A cancel that lands inside a database query loses the write and leaves the pooled connection
    mid-query (asyncpg then refuses it: "another operation is in progress"), so the tasks that write
    are asked to stop between pieces of work first; the cancel is only for one that hangs.
    """
    try:
        await asyncio.wait_for(asyncio.shield(task), grace_s)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
