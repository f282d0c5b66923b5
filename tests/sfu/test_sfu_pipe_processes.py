"""Two SFUs in two processes, joined by a pipe (server/sfu/pipe.py): they share nothing but the
pipe's UDP sockets. A publisher on A is decoded by a subscriber on B; SIGKILL of A (a worker
dying) takes the publisher out of B's room after the pipe's timeout, and B goes on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from aiortc import RTCSessionDescription

from rtc import aiortc_internals as ai
from tests.sfu.pipe_proc import SfuProcess
from tests.sfu.sfu_testkit import LOOPBACK, LUMA, Client, close_to

pytestmark = pytest.mark.network

PIPE = "r~a~b"


@pytest.fixture
async def two_processes() -> AsyncIterator[tuple[SfuProcess, SfuProcess]]:
    a, b = SfuProcess(LOOPBACK[0]), SfuProcess(LOOPBACK[0])
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


async def _connect(client: Client, proc: SfuProcess, name: str) -> None:
    offer = await client.pc.createOffer()
    ai.gather_on(client.pc, LOOPBACK)
    await client.pc.setLocalDescription(offer)
    answer = await proc.call("join", "r", name, client.pc.localDescription.sdp)
    await client.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))


async def test_a_pipe_between_two_sfu_processes_and_the_death_of_one(
    two_processes: tuple[SfuProcess, SfuProcess], make_client: Callable[..., Client]
) -> None:
    a, b = two_processes
    for proc in (a, b):
        await proc.call("open_room", "r")
    addr_a = await a.call("open_pipe", "r", PIPE, 2.0)
    addr_b = await b.call("open_pipe", "r", PIPE, 2.0)
    await a.call("connect_pipe", PIPE, addr_b)
    await b.call("connect_pipe", PIPE, addr_a)

    pub = make_client("a", luma=LUMA["a"], amplitude=8000)
    await _connect(pub, a, "a")
    await a.call("pipe_out", PIPE, "a")
    sub = make_client("s", video_slots=1, audio_slots=1)
    await _connect(sub, b, "s")

    kinds = {t.mid: t.kind for t in sub.pc.getTransceivers()}
    slots: dict[str, str | None] = {}

    async def refresh() -> None:
        slots.update(await b.call("slots", "r", "s"))

    def slot(kind: str) -> str | None:
        return next((mid for mid, pub_id in slots.items() if pub_id == "a" and kinds.get(mid) == kind), None)

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        await refresh()
        video, audio = sub.log(slot("video")), sub.log(slot("audio"))
        if video.frames >= 10 and video.lumas and close_to(video.lumas[-1], LUMA["a"]) and audio.frames >= 25:
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError(f"s on B never decoded a on A: slots {slots}, logs {sub.logs}")
    assert video.size == (640, 360)
    stats_b = await b.call("pipe_stats", PIPE)
    assert tuple(stats_b["receiving"]) == ("a",) and stats_b["malformed"] == 0

    # A dies without a word: B's end times out and a leaves B's room; B goes on
    a.kill()
    deadline = time.monotonic() + 10
    while "a" in await b.call("participants", "r"):
        assert time.monotonic() < deadline, "a still in B's room 10 s after A was killed"
        await asyncio.sleep(0.2)
    assert await b.call("participants", "r") == ["s"]
    assert all(publisher is None for publisher in (await b.call("slots", "r", "s")).values())
    frames = sub.log(slot("video")).frames
    await asyncio.sleep(1.0)
    assert sub.log(slot("video")).frames == frames  # (nothing more of a)
