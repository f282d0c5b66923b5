"""A filing's Argon2id PIN hash and its media's SHA-256 and fsyncs run on worker threads: while one
filing is busy with them, the event loop keeps serving everything else (issue 16 item 4)."""

from __future__ import annotations

import asyncio
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
    """Wakes up every millisecond and records the longest time the loop left it waiting."""

    def __init__(self) -> None:
        self.longest_gap_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.longest_gap_s = max(self.longest_gap_s, now - last)
            last = now

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


def _one_expensive_hash_s() -> float:
    started = time.perf_counter()
    receipts.hash_pin("1234", pepper=b"p" * 32, params=EXPENSIVE)
    return time.perf_counter() - started


@pytest.fixture
def expensive_pin_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    def params(_settings: Settings) -> PinHashParams:
        return EXPENSIVE

    monkeypatch.setattr(pins, "pin_params", params)


async def _lag_during(filing: Any) -> tuple[Any, float, float]:
    """(the filing's reply, the loop's longest stall during it, one expensive hash's duration
    measured right before on this machine at its current load)."""
    hash_s = _one_expensive_hash_s()
    probe = LoopLagProbe()
    probe.start()
    await asyncio.sleep(0.01)  # the probe is ticking before the filing starts
    try:
        reply = await filing
    finally:
        await probe.stop()
    return reply, probe.longest_gap_s, hash_s


@pytest.mark.usefixtures("expensive_pin_hash")
async def test_the_pin_hash_of_a_filing_does_not_stall_the_loop(client: TestClient, kiosk: Kiosk) -> None:
    reply, longest_gap_s, hash_s = await _lag_during(file_json(client, kiosk))
    assert reply.status == 201, reply.body
    stored = reply.body["petition"]
    assert stored["receipt_no"] and len(reply.body["pin"]) == 4
    # Relative, not a wall-clock threshold: on the loop, the hash alone would stall it for about
    # ``hash_s``; on a worker thread the loop only waits for its own short steps.
    assert longest_gap_s < hash_s / 2, (longest_gap_s, hash_s)


@pytest.mark.usefixtures("expensive_pin_hash")
async def test_a_filing_with_media_does_not_stall_the_loop(
    client: TestClient, kiosk: Kiosk, voice_clip: bytes
) -> None:
    """The whole media path too: the upload's SHA-256 and fsync, the probe, the rename and the
    directory fsyncs, next to the hash."""
    fields = {"petition_type": "grievance", "phone": "010-1234-5678"}
    filing = kiosk_call(
        client, kiosk, "POST", "/api/v1/kiosk/petitions", data=petition_form(fields, media=voice_clip)
    )
    reply, longest_gap_s, hash_s = await _lag_during(filing)
    assert reply.status == 201, reply.body
    assert reply.body["petition"]["title"].endswith("음성 메시지")
    assert longest_gap_s < hash_s / 2, (longest_gap_s, hash_s)
