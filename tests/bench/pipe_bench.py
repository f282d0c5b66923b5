"""What a pipe between two SFUs (server/sfu/pipe.py) costs per packet that crosses it, in process
CPU time: the sending end's relay (RTP serialize + ``sendto``) plus the receiving end's read,
parse and InboundStream handling, against the same packets received by A with no pipe.

Two ``Sfu`` objects in one process, the pipe on 127.0.0.1; the packets are synthetic VP8-sized
RTP packets handed to A's InboundStream as aiortc's router would (no SRTP, no peer connection),
so the figure is the pipe's own work. Run inside a loopback-only namespace::

    unshare -rn sh -c 'ip link set lo up && .venv/bin/python tests/bench/pipe_bench.py'

Prints ``RESULT pipe_us_per_packet=`` (send + receive, both ends) and
``RESULT inbound_us_per_packet=`` (A's own handling of a packet, the baseline subtracted).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters

from rtc import aiortc_internals as ai
from server.sfu import Sfu, SfuConfig
from server.sfu.relay import InboundStream

HOST = "127.0.0.1"
PAYLOAD = bytes([0x90, 0x80, 0x00]) + bytes(1000)  # a VP8 descriptor, then 1000 octets
BURST = 20


async def feed(stream: InboundStream, count: int, start_seq: int) -> float:
    """CPU seconds to hand ``count`` packets to ``stream`` in bursts (letting the loop run the
    pipe's reader between them)."""
    cpu = 0.0
    for first in range(0, count, BURST):
        t0 = time.process_time()
        for i in range(first, min(count, first + BURST)):
            packet = ai.RtpPacket(
                payload_type=96,
                sequence_number=(start_seq + i) & 0xFFFF,
                timestamp=(start_seq + i) * 3000 & 0xFFFFFFFF,
                ssrc=1111,
                payload=PAYLOAD,
            )
            await stream._handle_rtp_packet(packet, int(time.monotonic() * 1000))
        cpu += time.process_time() - t0
        t0 = time.process_time()
        await asyncio.sleep(0.002)  # the pipe's reader (and RTCP) run here
        cpu += time.process_time() - t0
    return cpu


async def main(count: int) -> None:
    config = SfuConfig(host_addresses=(HOST,), ice_servers=())
    a, b = Sfu(config), Sfu(config)
    a.open_room("r")
    b.open_room("r")
    stream = InboundStream(
        kind="video", publisher_id="pub", rtcp_ssrc=1, config=config, on_disconnect=lambda: None
    )
    stream.rtcp_sink = lambda data: None  # (its RTCP goes nowhere: no real publisher)
    await stream.start(
        None,
        RTCRtpReceiveParameters(
            codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)]
        ),
    )
    a._room("r").admit_piped("pub", {"video": stream})
    try:
        baseline = await feed(stream, count, 0)
        addr_a = await a.open_pipe("r", "p")
        addr_b = await b.open_pipe("r", "p")
        a.connect_pipe("p", addr_b)
        b.connect_pipe("p", addr_a)
        a.pipe_out("p", "pub")
        deadline = time.monotonic() + 5
        while "pub" not in b._room("r").participants and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        piped = b._room("r").get("pub").inbound["video"]
        before = piped.packets
        with_pipe = await feed(stream, count, count)
        t0 = time.process_time()
        while piped.packets - before < count and time.monotonic() < deadline + 10:
            await asyncio.sleep(0.01)
        with_pipe += time.process_time() - t0
        received = piped.packets - before
        print(f"packets {count}, received through the pipe {received}, lost {count - received}")
        print(f"RESULT inbound_us_per_packet={baseline / count * 1e6:.1f}")
        print(f"RESULT pipe_us_per_packet={(with_pipe - baseline) / count * 1e6:.1f}")
    finally:
        await a.close()
        await b.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packets", type=int, default=20000)
    args = parser.parse_args()
    asyncio.run(main(args.packets))
