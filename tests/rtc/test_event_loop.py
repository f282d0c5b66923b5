"""rtc.event_loop: the loop choice, a real SFU call on uvloop, and run.py serving on it.

The rest of the suite runs on pytest-asyncio's (asyncio's) loop; production runs on the one
run.py picks, uvloop by default. These tests run the parts that touch the loop's transports
(aioice's UDP datagram endpoints, DTLS/SRTP, the SFU's synchronous ``sendto``, aiohttp) on
uvloop itself.
"""

from __future__ import annotations

import asyncio
import subprocess
import urllib.request
from pathlib import Path

import pytest

from rtc import event_loop
from server.sfu import Sfu, SfuConfig
from tests.pg import free_port
from tests.serve_process import start_serve, wait_healthy
from tests.sfu.sfu_testkit import LOOPBACK, LUMA, Client, hears, sees_video, wait_until


def test_parse_kind() -> None:
    assert event_loop.parse_kind("") == "uvloop"
    assert event_loop.parse_kind("uvloop") == "uvloop"
    assert event_loop.parse_kind(" Asyncio ") == "asyncio"
    with pytest.raises(ValueError, match=r"MAEUL_EVENT_LOOP must be one of uvloop, asyncio.*'trio'"):
        event_loop.parse_kind("trio")
    assert event_loop.kind_from_env({}) == "uvloop"
    assert event_loop.kind_from_env({event_loop.ENV_VAR: "asyncio"}) == "asyncio"


def test_new_event_loop_kinds() -> None:
    cases: tuple[tuple[event_loop.LoopKind, bool], ...] = (("uvloop", True), ("asyncio", False))
    for kind, expected in cases:
        loop = event_loop.new_event_loop(kind)
        try:
            assert event_loop.is_uvloop(loop) is expected
            assert loop.run_until_complete(asyncio.sleep(0, "ran")) == "ran"
        finally:
            loop.close()


async def _call_through_the_sfu() -> None:
    assert event_loop.is_uvloop(asyncio.get_running_loop())
    sfu = Sfu(SfuConfig(host_addresses=tuple(LOOPBACK), ice_servers=(), pli_min_interval=1.0))
    clients: list[Client] = []
    try:
        sfu.open_room("r")
        for name, slots in (("a", 0), ("b", 1)):
            client = Client(name, luma=LUMA[name], amplitude=8000, video_slots=slots, audio_slots=slots)
            clients.append(client)
            await client.connect(await sfu.admit("r", name))
        b = clients[1]
        # decoded at b: SRTP, sequence rewriting and the direct send all worked on uvloop
        await wait_until(lambda: sees_video(b, "a") and hears(b, "a"), 15, "b sees and hears a on uvloop")
        frames = b.log(b.slot_of("a", "video")).frames
        await wait_until(
            lambda: b.log(b.slot_of("a", "video")).frames >= frames + 10, 10, "video keeps coming"
        )
        forwarded = sfu.room_stats("r").participants["b"].forwarded
        assert sum(f.packets for f in forwarded) > 50
    finally:
        for client in clients:
            await client.close()
        await sfu.close()


@pytest.mark.network
def test_sfu_call_on_uvloop() -> None:
    """A publisher and a subscriber through the SFU, all on one uvloop loop."""
    with asyncio.Runner(loop_factory=lambda: event_loop.new_event_loop("uvloop")) as runner:
        runner.run(_call_through_the_sfu())


def _serve(tmp_path: Path, port: int, loop: str) -> subprocess.Popen[str]:
    return start_serve(
        f"sqlite+aiosqlite:///{tmp_path / 'maeul.db'}", tmp_path, port, env={event_loop.ENV_VAR: loop}
    )


@pytest.mark.parametrize("loop", ["", "asyncio"])
def test_run_py_serves_on_the_chosen_loop(tmp_path: Path, loop: str) -> None:
    port = free_port()
    server = _serve(tmp_path, port, loop)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as response:
            assert "로그인" in response.read().decode()
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    expected = "uvloop" if loop == "" else "asyncio"
    assert f"serving on the {expected} event loop" in err


def test_run_py_refuses_an_unknown_loop(tmp_path: Path) -> None:
    server = _serve(tmp_path, free_port(), "tokio")
    out, err = server.communicate(timeout=60)
    assert server.returncode == 1
    assert "error: MAEUL_EVENT_LOOP must be one of uvloop, asyncio" in err
    assert "Traceback" not in err and "serving" not in out
