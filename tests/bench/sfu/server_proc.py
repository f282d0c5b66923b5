"""The bench's server process: the real ``server.sfu.Sfu`` (mode "sfu") or the
naive baseline, aiortc's ``MediaRelay`` that decodes each published track once
and re-encodes it for every subscriber (mode "mediarelay").

Offers arrive over a minimal loopback HTTP endpoint (``POST /offer`` with JSON
``{"pid", "sdp", "role"}`` -> ``{"sdp": answer}``); the orchestrator drives the
rest over its pipe. Only the instrumentation below is added to the SFU: a
class-level timing wrapper around aiortc's ``RTCDtlsTransport._handle_rtp_data``
(decrypt + parse + the SFU's synchronous forwarding to every subscriber) so
per-packet server-side forwarding time can be reported as percentiles.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import web

from .common import LOOPBACK, Handler, percentile, run_child

MAX_SAMPLES = 400_000


class DelayRecorder:
    """Per-RTP-packet timing inside the server process.

    * ``residence``: from the moment the event loop read the datagram from the
      socket (aioice ``Connection.data_received``) until the SFU handed the
      last forwarded copy to the kernel: queueing in the event loop, SRTP
      decryption, parsing, and forwarding (rewrite + SRTP + sendto) to every
      subscriber of that stream. This is the delay the server adds for the
      last subscriber served.
    * ``dispatch``: the part inside ``RTCDtlsTransport._handle_rtp_data``
      (parse + forwarding), without queueing and decryption.

    Installed as class-level wrappers in the server process only; no SFU code
    is changed.
    """

    def __init__(self) -> None:
        self.samples: list[tuple[int, float, float | None]] = []
        self.video_pts: set[int] = set()
        self._arrivals: dict[int, tuple[bytes, float]] = {}
        self._last_arrival: float | None = None

    def install(self) -> None:
        import aioice.ice
        from aiortc.rtcdtlstransport import RTCDtlsTransport

        rec = self
        conn_cls = aioice.ice.Connection
        original_received = conn_cls.data_received
        original_recv = conn_cls.recv
        original_handle = RTCDtlsTransport._handle_rtp_data

        def data_received(self: Any, data: bytes, component: int) -> None:
            if len(rec._arrivals) > 20000:  # datagrams never read (closed connections)
                rec._arrivals.clear()
            rec._arrivals[id(data)] = (data, time.perf_counter())
            original_received(self, data, component)

        async def recv(self: Any) -> bytes:
            data = await original_recv(self)
            entry = rec._arrivals.pop(id(data), None)
            # _recv_next decrypts and dispatches right after this returns, without yielding
            rec._last_arrival = entry[1] if entry is not None and entry[0] is data else None
            return data

        async def timed(self: Any, data: bytes, arrival_time_ms: int) -> None:
            arrival, rec._last_arrival = rec._last_arrival, None
            t0 = time.perf_counter()
            await original_handle(self, data, arrival_time_ms)
            t1 = time.perf_counter()
            if len(rec.samples) < MAX_SAMPLES and len(data) > 1:
                rec.samples.append((data[1] & 0x7F, t1 - t0, None if arrival is None else t1 - arrival))

        conn_cls.data_received = data_received  # type: ignore[method-assign]
        conn_cls.recv = recv  # type: ignore[method-assign]
        RTCDtlsTransport._handle_rtp_data = timed  # type: ignore[method-assign]

    def take(self) -> dict[str, Any]:
        samples, self.samples = self.samples, []
        out: dict[str, Any] = {}
        for kind in ("video", "audio"):
            mine = [s for s in samples if (s[0] in self.video_pts) == (kind == "video")]
            out[f"n_{kind}"] = len(mine)
            for what, vals in (
                ("dispatch", [s[1] for s in mine]),
                ("residence", [s[2] for s in mine if s[2] is not None]),
            ):
                for q in (50, 95, 99):
                    v = percentile(vals, q)
                    out[f"{kind}_{what}_p{q}_ms"] = None if v is None else v * 1000.0
        return out


class LoopLag:
    """Measures how late a 10 ms timer fires: a proxy for queueing in the event loop."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.01)
            self.samples.append(max(0.0, loop.time() - t - 0.01))
            del self.samples[:-20000]

    def take(self) -> dict[str, Any]:
        s, self.samples = self.samples, []
        return {f"loop_lag_p{q}_ms": (None if not s else percentile(s, q) * 1000.0) for q in (50, 95, 99)}


def serve(conn: Connection, mode: str) -> None:
    # The server process runs on the loop run.py would choose (MAEUL_EVENT_LOOP, default
    # uvloop), so the figures are production's; the clients stay on asyncio's, unchanged.
    from rtc import event_loop

    kind = event_loop.kind_from_env(os.environ)
    run_child(conn, lambda: _setup(mode), lambda: event_loop.new_event_loop(kind))


async def _setup(mode: str) -> Handler:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay

    from rtc import aiortc_internals as ai
    from server.sfu import ParticipantConnected, ParticipantLeft, Sfu, SfuConfig

    recorder = DelayRecorder()
    recorder.install()
    lag = LoopLag()
    lag.task = asyncio.get_running_loop().create_task(lag.run())
    connected: set[str] = set()
    left: dict[str, str] = {}  # participant -> reason, from ParticipantLeft events
    room = "bench"

    sfu: Sfu | None = None
    relay: MediaRelay | None = None
    relay_pcs: dict[str, RTCPeerConnection] = {}
    relay_sources: dict[str, Any] = {}
    sinks: list[asyncio.Task[None]] = []

    if mode == "sfu":
        from server.config import rtc_udp_port

        # MAEUL_RTC_UDP_PORT as the server reads it: the shared UDP socket (rtc/udp_mux.py) or not
        udp_port = rtc_udp_port(os.environ.get("MAEUL_RTC_UDP_PORT", ""))
        sfu = Sfu(SfuConfig(host_addresses=(LOOPBACK,), ice_servers=(), udp_port=udp_port))
        sfu.open_room(room)

        def on_event(ev: Any) -> None:
            if isinstance(ev, ParticipantConnected):
                connected.add(ev.participant_id)
            elif isinstance(ev, ParticipantLeft):
                left[ev.participant_id] = ev.reason

        sfu.subscribe(on_event)
    else:
        relay = MediaRelay()

    async def sink(track: Any) -> None:
        # keeps the single decoder running whether or not anybody subscribes
        try:
            while True:
                await track.recv()
        except Exception:
            pass

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        pid, sdp, role = body["pid"], body["sdp"], body.get("role", "subscriber")
        for m in re.finditer(r"a=rtpmap:(\d+) VP8/90000", sdp):
            recorder.video_pts.add(int(m.group(1)))
        if sfu is not None:
            handle = await sfu.admit(room, pid)
            answer = await handle.handle_offer(sdp)
            return web.json_response({"sdp": answer})
        assert relay is not None
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        relay_pcs[pid] = pc

        @pc.on("track")
        def on_track(track: Any) -> None:
            relay_sources[track.kind] = track
            sinks.append(asyncio.get_running_loop().create_task(sink(relay.subscribe(track, buffered=False))))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected":
                connected.add(pid)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if role == "subscriber":
            for kind in ("audio", "video"):
                if kind in relay_sources:
                    pc.addTrack(relay.subscribe(relay_sources[kind], buffered=False))
        answer = await pc.createAnswer()
        ai.gather_on(pc, [LOOPBACK])
        await pc.setLocalDescription(answer)
        return web.json_response({"sdp": pc.localDescription.sdp})

    app = web.Application()
    app.router.add_post("/offer", offer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def handler(msg: tuple[Any, ...]) -> Any:
        cmd = msg[0]
        if cmd == "port":
            return {"port": port}
        if cmd == "connected":
            return {"connected": len(connected)}
        if cmd == "visible":
            assert sfu is not None
            sfu.set_visible_videos(room, msg[1], msg[2])
            return {"ok": True}
        if cmd == "mark":
            recorder.take()
            lag.take()
            mark: dict[str, Any] = {"ok": True}
            if sfu is not None:
                mark["packets_out"] = sum(p.packets_out for p in sfu.room_stats(room).participants.values())
            return mark
        if cmd == "stats":
            out: dict[str, Any] = {
                "delay": recorder.take(),
                "lag": lag.take(),
                "slots": {},
                "left": dict(left),
            }
            if sfu is not None:
                st = sfu.room_stats(room)
                out["active_speaker"] = st.active_speaker
                for pid, ps in st.participants.items():
                    out["slots"][pid] = {f.mid: (f.kind, f.publisher_id) for f in ps.forwarded}
                out["packets_in"] = sum(p.packets_in for p in st.participants.values())
                out["packets_out"] = sum(p.packets_out for p in st.participants.values())
                out["keyframe_requests"] = sum(p.keyframe_requests_sent for p in st.participants.values())
                rt = [p.relay_time_per_packet for p in st.participants.values() if p.packets_in]
                out["relay_time_per_packet_ms"] = max(rt) * 1000.0 if rt else None
                if sfu.config.udp_mux is not None:  # cumulative, over the mux's sockets
                    mux_stats = list(sfu.config.udp_mux.stats().values())
                    out["udp_mux"] = {
                        "batches": sum(m.batches for m in mux_stats),
                        "datagrams": sum(m.batched_datagrams for m in mux_stats),
                        "send_errors": sum(sum(m.send_errors.values()) for m in mux_stats),
                        "deferred": sum(m.deferred for m in mux_stats),
                        "dropped": sum(
                            m.dropped_unknown_address + m.dropped_unknown_ufrag + m.dropped_malformed
                            for m in mux_stats
                        ),
                    }
            return out
        if cmd == "stop":
            lag.task.cancel()  # type: ignore[union-attr]
            for t in sinks:
                t.cancel()
            if sfu is not None:
                await asyncio.wait_for(sfu.close(), 20)
            await asyncio.wait_for(
                asyncio.gather(*(pc.close() for pc in relay_pcs.values()), return_exceptions=True), 20
            )
            await runner.cleanup()
            return {"ok": True}
        raise ValueError(f"unknown command {cmd!r}")

    return handler
