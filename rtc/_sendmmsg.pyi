# Types of the C extension rtc/_sendmmsg.c (built by setup.py).
CHUNK: int

def send(
    fd: int, payloads: list[bytes], addrs: list[bytes], /
) -> tuple[int, tuple[tuple[int, int], ...]]: ...
