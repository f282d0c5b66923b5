"""In-process benchmark of forwarding's per-subscriber step (issue 16).

One publisher's stream (:class:`server.sfu.relay.InboundStream`) fans each VP8 packet out to
``--subscribers`` slots (:class:`server.sfu.relay.OutStream`) started on a real, connected
DTLS transport on a UDP mux. Each packet is handed to the stream as aiortc hands it over
(``_handle_rtp_packet``), so the figure covers everything the server does per packet after
decryption: the fan-out, the header rewrite, SRTP and the place in the mux's ``sendmmsg``
queue. The ``sendmmsg`` itself (kernel time) is timed apart, because a loopback send also
pays the receiver's kernel work.

CPU is ``time.process_time()``, so the machine's other load does not count; the machine's
own speed still drifts, so compare two versions by alternating runs::

    unshare -n sh -c 'ip link set lo up && .venv/bin/python tests/bench/forward_step_bench.py'

Prints ``RESULT forward_step_us=`` (CPU microseconds per packet per subscriber, without the
``sendmmsg``), ``RESULT sendmmsg_us=`` (per datagram) and ``RESULT write_protect_us=`` (the step's
C call alone: header, payload and SRTP of one packet; the rest of the step is Python).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from rtc import aiortc_internals as ai  # noqa: E402
from rtc.udp_mux import UdpMux  # noqa: E402
from server.sfu.config import SfuConfig  # noqa: E402
from server.sfu.relay import InboundStream, OutStream  # noqa: E402
from tests.rtc.loopback_pair import loopback_pair  # noqa: E402


class _Discard:
    """The subscriber's end: what arrives is decrypted by aiortc, then dropped."""

    async def _handle_rtp_packet(self, packet: ai.RtpPacket, arrival_time_ms: int) -> None:
        pass

    async def _handle_rtcp_packet(self, packet: ai.AnyRtcpPacket) -> None:
        pass

    def _handle_disconnect(self) -> None:
        pass


def _write_protect_us(slot: OutStream, payload: bytes, count: int) -> float:
    """CPU microseconds of the step's C call alone (PacketWriter.write with SRTP), on ``slot``'s
    own writer and session, numbered on from its last packet (libsrtp refuses a number twice)."""
    assert slot._layout is not None and slot._direct is not None
    writer, srtp = slot._layout.writer, slot._direct._context()
    first = (slot._numbering.last_seq or 0) + 1
    t0 = time.process_time()
    for i in range(count):
        writer.write(0, (first + i) & 0xFFFF, i, 0, -1, payload, 0, srtp)
    return (time.process_time() - t0) / count * 1e6


async def run(subscribers: int, packets: int, rounds: int) -> tuple[list[float], list[float], float]:
    mux = UdpMux(0)
    pair = await loopback_pair("video", mux, _Discard())
    transport, parameters = pair.transport, pair.parameters
    config = SfuConfig()
    slots: list[OutStream] = []
    source: InboundStream | None = None
    try:
        source = InboundStream(
            kind="video", publisher_id="pub", rtcp_ssrc=1, config=config, on_disconnect=lambda: None
        )
        source.rtcp_sink = lambda data: None  # fed like a pipe's stream: no transport of its own
        await source.start(None, parameters)
        for i in range(subscribers):
            out = OutStream(kind="video", mid="0", subscriber_id=f"s{i}", ssrc=1000 + i, config=config)
            await out.start(transport, parameters)
            out.assign(source)
            slots.append(out)
        (mux_socket,) = mux.sockets()
        pt = parameters.codecs[0].payloadType
        keyframe = b"\x10\x00\x00\x9d\x01\x2a" + bytes(1094)  # VP8 keyframe start, 1 100 bytes
        delta = b"\x10\x01\x00" + bytes(1097)
        seq, ts = 1000, 90000
        step_us: list[float] = []
        send_us: list[float] = []

        def packet(payload: bytes, marker: int) -> ai.RtpPacket:
            p = ai.RtpPacket(payload_type=pt, sequence_number=seq & 0xFFFF, timestamp=ts, ssrc=42)
            p.payload, p.marker = payload, marker
            return p

        await source._handle_rtp_packet(packet(keyframe, 1), 0)  # every slot begins its epoch
        mux_socket.flush()
        for _ in range(rounds):
            batch = []
            for i in range(packets):
                seq += 1
                if i % 4 == 3:
                    ts += 6000
                batch.append(packet(delta, int(i % 4 == 3)))
            forward = send = 0.0
            for p in batch:
                t0 = time.process_time()
                await source._handle_rtp_packet(p, 0)
                t1 = time.process_time()
                mux_socket.flush()
                t2 = time.process_time()
                forward += t1 - t0
                send += t2 - t1
            step_us.append(forward / (packets * subscribers) * 1e6)
            send_us.append(send / (packets * subscribers) * 1e6)
            await asyncio.sleep(0.05)  # let the receiver drain its socket
        assert all(out.packets >= rounds * packets for out in slots), "a slot did not forward"
        return step_us, send_us, _write_protect_us(slots[0], delta, packets * subscribers)
    finally:
        for out in slots:
            await out.stop()
        if source is not None:
            await source.stop()
        await pair.close()  # the mux's socket closes with its last connection


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subscribers", type=int, default=64)
    ap.add_argument("--packets", type=int, default=200, help="packets per round")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    step, send, write = asyncio.run(run(args.subscribers, args.packets, args.rounds))
    print(f"per round, us per packet per subscriber: forward {[round(v, 2) for v in step]}")
    print(f"per round, us per datagram: sendmmsg {[round(v, 2) for v in send]}")
    print(f"RESULT forward_step_us={statistics.median(step):.2f}")
    print(f"RESULT sendmmsg_us={statistics.median(send):.2f}")
    print(f"RESULT write_protect_us={write:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
