# Types of the C extension rtc/_rtp_writer.c (built by setup.py).
from typing import Any

SRTP_MAX_TRAILER_LEN: int

class SrtpError(Exception): ...

class SrtpContext:
    def __init__(self, protect_addr: int, ctx_addr: int, owner: Any, max_size: int) -> None: ...
    @property
    def owner(self) -> Any: ...
    def protect(self, data: bytes, /) -> bytes: ...

class PacketWriter:
    def __init__(
        self, header: bytes, ast_at: int, level_header: bytes | None, level_ast_at: int, level_at: int
    ) -> None: ...
    def write(
        self,
        marker: int,
        seq: int,
        timestamp: int,
        abs_send_time: int,
        level: int,
        payload: bytes,
        padding: int,
        srtp: SrtpContext | None,
        /,
    ) -> bytes: ...
