"""A filing's Argon2id PIN hash and its media's SHA-256 and fsyncs run on worker threads: while one
filing is busy with them, the event loop keeps serving everything else (issue 16 item 4)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.config import Settings
from server.petitions import pins, receipts
from server.petitions.receipts import PinHashParams
from tests.petitions.conftest import Kiosk, file_json, kiosk_call, petition_form

# Deliberately expensive (RFC 9106's 64 MiB x 3 passes, one lane): a few hundred ms of CPU, far
# more than anything else a filing does on the loop, so a hash on the loop would stand out.
EXPENSIVE = PinHashParams(time_cost=3, memory_cost_kib=64 * 1024, parallelism=1)


class LoopLagProbe:
    """Wakes up every millisecond and records, between two wake-ups, the longest time the loop's
    thread spent computing (its CPU time, ``time.thread_time``): how long the loop was kept busy.

    Not the wall-clock gap: on a loaded machine the whole process can be left off the CPU for
    most of a second (a CI run with two test workers, PostgreSQL and browsers on two cores left
    a 0.89 s gap while the filing's hash took 0.22 s), which says nothing about what runs on the
    loop. A hash run on the loop costs its full CPU time there however the process is scheduled;
    on a worker thread it costs the loop thread nothing."""

    def __init__(self) -> None:
        self.longest_busy_s = 0.0
        self.longest_gap_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last, last_cpu = time.perf_counter(), time.thread_time()
        while True:
            await asyncio.sleep(0.001)
            now, cpu = time.perf_counter(), time.thread_time()
            self.longest_gap_s = max(self.longest_gap_s, now - last)
            self.longest_busy_s = max(self.longest_busy_s, cpu - last_cpu)
            last, last_cpu = now, cpu

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


# The real hash, for timing one on this thread: the fixture below swaps the module's for a recorder.
_HASH_PIN = receipts.hash_pin


def _one_expensive_hash_s() -> float:
    started = time.thread_time()
    _HASH_PIN("1234", pepper=b"p" * 32, params=EXPENSIVE)
    return time.thread_time() - started


@pytest.fixture
def expensive_pin_hash(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Makes the PIN hash expensive and returns the list of threads (idents) that ran it."""
    hashed_on: list[int] = []
    real_hash_pin = receipts.hash_pin

    def params(_settings: Settings) -> PinHashParams:
        return EXPENSIVE

    def recording_hash_pin(*args: Any, **kwargs: Any) -> str:
        hashed_on.append(threading.get_ident())
        return real_hash_pin(*args, **kwargs)

    monkeypatch.setattr(pins, "pin_params", params)
    monkeypatch.setattr(receipts, "hash_pin", recording_hash_pin)
    return hashed_on


async def _lag_during(filing: Any) -> tuple[Any, float, float]:
    """(the filing's reply, the longest the loop's thread was kept busy during it, one expensive
    hash's CPU time measured right before on this machine). The stall is shown with its
    wall-clock gap when the check fails.

    The cyclic garbage collector is held off meanwhile: in a test worker that has run hundreds of
    tests, one full collection keeps the loop's thread busy longer than the hash (a CI run saw
    0.77 s against a 0.20 s hash), and it says nothing about where the filing runs its work."""
    hash_s = _one_expensive_hash_s()
    gc.collect()
    gc.disable()
    probe = LoopLagProbe()
    probe.start()
    await asyncio.sleep(0.01)  # the probe is ticking before the filing starts
    try:
        reply = await filing
    finally:
        await probe.stop()
        gc.enable()
    print(f"loop busy at most {probe.longest_busy_s:.3f} s (longest gap {probe.longest_gap_s:.3f} s)")
    return reply, probe.longest_busy_s, hash_s


async def test_the_pin_hash_of_a_filing_does_not_stall_the_loop(
    client: TestClient, kiosk: Kiosk, expensive_pin_hash: list[int]
) -> None:
    reply, longest_busy_s, hash_s = await _lag_during(file_json(client, kiosk))
    assert reply.status == 201, reply.body
    assert expensive_pin_hash and threading.get_ident() not in expensive_pin_hash
    stored = reply.body["petition"]
    assert stored["receipt_no"] and len(reply.body["pin"]) == 4
    # Relative, not a wall-clock threshold: on the loop, the hash alone would keep it busy for
    # about ``hash_s`` of CPU; on a worker thread the loop only runs its own short steps.
    assert longest_busy_s < hash_s / 2, (longest_busy_s, hash_s)


async def test_a_filing_with_media_does_not_stall_the_loop(
    client: TestClient, kiosk: Kiosk, voice_clip: bytes, expensive_pin_hash: list[int]
) -> None:
    """The whole media path too: the upload's SHA-256 and fsync, the probe, the rename and the
    directory fsyncs, next to the hash."""
    fields = {"petition_type": "grievance", "phone": "010-1234-5678"}
    filing = kiosk_call(
        client, kiosk, "POST", "/api/v1/kiosk/petitions", data=petition_form(fields, media=voice_clip)
    )
    reply, longest_busy_s, hash_s = await _lag_during(filing)
    assert reply.status == 201, reply.body
    assert reply.body["petition"]["title"].endswith("음성 메시지")
    assert expensive_pin_hash and threading.get_ident() not in expensive_pin_hash
    assert longest_busy_s < hash_s / 2, (longest_busy_s, hash_s)
