"""A gate for tests that must act while a piece of server work is in progress."""

from __future__ import annotations

import asyncio


class Gate:
    """Holds a coroutine at a point until opened, and says when it got there."""

    def __init__(self) -> None:
        self.reached, self.opened = asyncio.Event(), asyncio.Event()

    async def hold(self) -> None:
        self.reached.set()
        await self.opened.wait()
