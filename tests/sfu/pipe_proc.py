"""An :class:`~server.sfu.Sfu` in a child process of its own, driven by the pipe tests over a
multiprocessing connection: so two SFUs joined by a pipe share nothing but UDP, and one can be
SIGKILLed as a worker would die.

Calls are ``(method, args)``; answers ``("ok", value)`` or ``("error", "Type: message")``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any

from server.sfu import Sfu, SfuConfig


async def _call(sfu: Sfu, method: str, args: list[Any]) -> Any:
    if method == "open_room":
        sfu.open_room(args[0])
        return None
    if method == "open_pipe":
        return await sfu.open_pipe(args[0], args[1], timeout=args[2])
    if method == "connect_pipe":
        sfu.connect_pipe(args[0], tuple(args[1]))
        return None
    if method == "pipe_out":
        sfu.pipe_out(args[0], args[1])
        return None
    if method == "pipe_stats":
        return dataclasses.asdict(sfu.pipe_stats(args[0]))
    if method == "join":  # (room, participant, offer sdp) -> answer sdp
        handle = await sfu.admit(args[0], args[1])
        return await handle.handle_offer(args[2])
    if method == "slots":
        return sfu.participant(args[0], args[1]).slots()
    if method == "participants":
        return sorted(sfu.room_stats(args[0]).participants)
    raise ValueError(f"unknown method {method!r}")


async def _serve(conn: Connection, host: str) -> None:
    sfu = Sfu(SfuConfig(host_addresses=(host,), ice_servers=(), pli_min_interval=1.0))
    loop = asyncio.get_running_loop()
    try:
        while True:
            message = await loop.run_in_executor(None, conn.recv)
            if message is None:
                return
            method, args = message
            try:
                conn.send(("ok", await _call(sfu, method, args)))
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        await sfu.close()


def serve(conn: Connection, host: str) -> None:
    asyncio.run(_serve(conn, host))


class SfuProcess:
    """The test side: starts the child and calls it (one call at a time)."""

    def __init__(self, host: str) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child, host), daemon=True)
        self.process.start()
        self._lock = asyncio.Lock()

    async def call(self, method: str, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        async with self._lock:
            self._conn.send((method, list(args)))
            status, value = await loop.run_in_executor(None, self._recv)
        if status != "ok":
            raise RuntimeError(value)
        return value

    def _recv(self) -> Any:
        if not self._conn.poll(30):
            raise TimeoutError("the SFU process did not answer in 30 s")
        return self._conn.recv()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)

    async def stop(self) -> None:
        if self.process.is_alive():
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            await asyncio.get_running_loop().run_in_executor(None, self.process.join, 10)
        if self.process.is_alive():
            self.kill()
        self._conn.close()
