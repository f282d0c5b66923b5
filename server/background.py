"""Background tasks of the app (the meeting clock, the hub's SFU-event pump): how they report a
run of failures, and how they stop without cutting their work in half."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class FailureStreak:
    """The health of one background job that must outlive any failure.

    A database outage makes every tick fail; logging each one would bury the one line that
    matters, so the first failure of a streak is logged at ERROR with its traceback, the rest at
    DEBUG, and the recovery at INFO with how long it lasted. ``seconds_since_ok`` feeds /readyz.
    """

    name: str
    logger: logging.Logger
    failures: int = 0
    _streak_started: float = 0.0
    _last_ok: float = field(default_factory=time.monotonic)

    def failed(self, exc: BaseException, **extra: Any) -> None:
        self.failures += 1
        if self.failures == 1:
            self._streak_started = time.monotonic()
            self.logger.error(
                "%s failed; it carries on and retries with backoff", self.name, exc_info=exc, extra=extra
            )
        else:
            self.logger.debug("%s failed again (%d in a row): %r", self.name, self.failures, exc)

    def succeeded(self) -> None:
        self._last_ok = time.monotonic()
        if self.failures:
            self.logger.info(
                "%s works again after %d failures in %.1f s",
                self.name,
                self.failures,
                self._last_ok - self._streak_started,
                extra={"failures": self.failures},
            )
            self.failures = 0

    def backoff(self, first_s: float, cap_s: float) -> float:
        """The pause before the next try: doubles with each failure in a row, up to ``cap_s``."""
        if not self.failures:
            return 0.0
        return float(min(cap_s, first_s * 2 ** min(self.failures - 1, 16)))

    def seconds_since_ok(self) -> float:
        return time.monotonic() - self._last_ok


async def finish_or_cancel(task: asyncio.Task[Any], grace_s: float) -> None:
    """Wait up to ``grace_s`` for ``task`` (already told to stop) to finish on its own, then cancel it.

    A cancel that lands inside a database query loses the write and leaves the pooled connection
    mid-query (asyncpg then refuses it: "another operation is in progress"), so the tasks that write
    are asked to stop between pieces of work first; the cancel is only for one that hangs. A task
    that died of an exception is logged, not re-raised: shutdown still closes everything else.
    """
    try:
        await asyncio.wait_for(asyncio.shield(task), grace_s)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    except Exception:
        log.exception("background task %s had died", task.get_name())
