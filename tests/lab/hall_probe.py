"""The hall end of the lab: the real headless kiosk (kiosk/headless.py, what `python -m kiosk
headless` runs) with a bursting tone and the test pattern as its microphone and camera, noting
what it decodes. Run inside a hall namespace by the scenario runner:

    LAB_KIOSK_TOKEN=T python -m tests.lab.hall_probe --server http://198.18.0.1:8080 \
        --host-address 198.18.1.2 --out F

Prints a JSON status line every 0.5 s; on SIGTERM writes everything it saw to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection

from kiosk.headless import HeadlessKiosk
from kiosk.media import TestPatternVideo
from tests.lab.media_probe import BurstAudio, ProbeLog


class MeasuredKiosk(HeadlessKiosk):
    """HeadlessKiosk unchanged except that it writes down joins, peer states and decoded frames.
    The loudspeaker mixer is left out (speaker=None) so audio tracks reach ``_consume`` too."""

    def __init__(self, *args: Any, log: ProbeLog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = log
        self.generation = 0
        self.pc_state = "none"
        self.microphones: list[BurstAudio] = []
        self.pc: RTCPeerConnection | None = None

    def devices(self) -> tuple[MediaStreamTrack | None, MediaStreamTrack | None]:
        audio = BurstAudio()
        self.microphones.append(audio)
        return audio, TestPatternVideo()

    def _peer(self, ack: dict[str, Any]) -> RTCPeerConnection:
        pc = super()._peer(ack)
        self.pc = pc
        self.generation += 1
        generation = self.generation
        self.log.event("join", {"generation": generation, "participant_id": ack.get("participant_id")})

        @pc.on("connectionstatechange")
        def _state() -> None:
            self.pc_state = pc.connectionState
            self.log.event("pc_state", {"generation": generation, "state": pc.connectionState})

        return pc

    async def _consume(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None) or "?"
        await self.log.consume(f"{self.generation}:{mid}", track)

    def video_target(self) -> int | None:
        """The bitrate the hall's VP8 encoder is at now (follows the SFU's REMB)."""
        for t in self.pc.getTransceivers() if self.pc is not None else []:
            encoder = getattr(t.sender, "_RTCRtpSender__encoder", None)
            if t.kind == "video" and encoder is not None:
                return int(encoder.target_bitrate)
        return None

    def dump(self, path: str) -> None:
        self.log.event("tuning", dict(self.tuning.stats))
        self.log.bursts_sent = sorted(t for mic in self.microphones for t in mic.bursts_sent)
        self.log.dump(path)


async def main(args: argparse.Namespace) -> int:
    log = ProbeLog("hall")
    token = os.environ["LAB_KIOSK_TOKEN"]  # not on the command line, where `ps` shows it
    kiosk = MeasuredKiosk(
        args.server, token, lambda: kiosk.devices(), host_addresses=args.host_address, log=log
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    task = asyncio.create_task(kiosk.run(stop))
    while not stop.is_set():
        print(
            log.status(
                room=kiosk.stats.current_room,
                joined=kiosk.stats.meetings_joined,
                pc=kiosk.pc_state,
                tuning=kiosk.tuning.stats,
                video_target=kiosk.video_target(),
            ),
            flush=True,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    kiosk.dump(args.out)  # before teardown, so a slow close cannot lose the record
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(task, 15)
    return 0


if __name__ == "__main__":
    # The kiosk's own account of a drop (resumes, ICE consent, the peer connection's states)
    # goes to the probe's stderr, which the lab keeps as hallN.log.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for name in ("kiosk", "rtc"):
        logging.getLogger(name).setLevel(logging.INFO)
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--host-address", action="append", required=True)
    parser.add_argument("--out", required=True)
    sys.exit(asyncio.run(main(parser.parse_args())))
