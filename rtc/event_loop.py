"""The event loop a media process runs on: uvloop unless the operator asks for asyncio's own.

Why uvloop: the SFU forwards every packet with one ``sendto`` per subscriber on the event
loop's UDP transports, and its cost per packet is mostly the loop's own Python layers around
those syscalls (selector, handle scheduling, the datagram transport's ``sendto``). uvloop runs
the same asyncio protocols on libuv in C; measured with ``tests/bench/sfu_bench.py --quick``
(1 publisher -> 64 subscribers) it forwards about a third more packets per CPU-second
(docs/bench-sfu.md, "uvloop"). Nothing in Maeul depends on a loop-specific API: aiohttp,
python-socketio, aioice's datagram endpoints and aiortc all talk to ``asyncio`` interfaces.

``MAEUL_EVENT_LOOP=asyncio`` turns it off, e.g. to use asyncio's debug mode or to rule the loop
out when chasing a bug; ``uvloop`` (or empty) is the default.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Literal

ENV_VAR = "MAEUL_EVENT_LOOP"
LoopKind = Literal["uvloop", "asyncio"]
KINDS: tuple[LoopKind, ...] = ("uvloop", "asyncio")


def parse_kind(value: str) -> LoopKind:
    """``value`` of :data:`ENV_VAR` as a loop kind (empty: the default, uvloop).

    Raises ``ValueError`` with a message an operator can act on for anything else.
    """
    cleaned = value.strip().lower()
    if not cleaned:
        return "uvloop"
    for kind in KINDS:
        if cleaned == kind:
            return kind
    raise ValueError(f"{ENV_VAR} must be one of {', '.join(KINDS)} (or empty for uvloop), got {value!r}")


def kind_from_env(environ: Mapping[str, str]) -> LoopKind:
    return parse_kind(environ.get(ENV_VAR, ""))


def new_event_loop(kind: LoopKind) -> asyncio.AbstractEventLoop:
    """A new, not yet running loop of ``kind``, for ``aiohttp.web.run_app(loop=...)`` or
    ``asyncio.Runner(loop_factory=...)``. Nothing process-wide (no loop policy) is changed,
    so other loops the process makes (``asyncio.run`` in a sub-command) are asyncio's."""
    if kind == "uvloop":
        # Imported here: a process that asked for asyncio never loads the C extension.
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def is_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` is uvloop's (for logs and tests; its class lives in ``uvloop``)."""
    return type(loop).__module__.split(".")[0] == "uvloop"
