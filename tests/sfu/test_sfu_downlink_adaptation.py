"""Per-subscriber downlink adaptation under a real shaped link (tests/lab/linklab.py): a
subscriber behind a 60 kbit/s downlink is switched to audio-only (LinkQualityChanged), keeps
hearing the publisher, does not drag an unconstrained subscriber's video down, and gets video
back by itself once the link recovers (the SFU probes).

60 kbit/s cannot carry the publisher's lowest video rate (60 kbit/s, kiosk/rtc_tuning.py) next
to its audio (~36 kbit/s on the wire), so the link must lose packets and the SFU must give up
the video. A 100 kbit/s link sits on that boundary: video at its floor fits with bursts of
loss, and the SFU rightly keeps low-rate video there more often than not."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCSessionDescription

from rtc import aiortc_internals as ai
from server.sfu import LinkQualityChanged, Sfu, SfuConfig, SfuEvent
from tests.lab.linklab import COUNTY, LinkLab
from tests.sfu.sfu_testkit import Client, wait_until

pytestmark = [pytest.mark.network, pytest.mark.lab]


def modes(events: list[SfuEvent], who: str) -> list[str]:
    return [e.mode for e in list(events) if isinstance(e, LinkQualityChanged) and e.participant_id == who]


async def test_starved_subscriber_goes_audio_only_and_comes_back() -> None:
    events: list[SfuEvent] = []
    async with LinkLab(halls=1) as lab:
        county, hall = lab.address(COUNTY), lab.address(1)
        config = SfuConfig(
            host_addresses=(county,), probe_interval=4.0, probe_max_interval=8.0, probe_duration=4.0
        )

        async def county_side() -> tuple[Sfu, Client, Client]:
            sfu = Sfu(config)
            sfu.subscribe(events.append)
            sfu.open_room("r")
            a = Client("a", luma=50, amplitude=8000, tuned=True)
            await a.connect(await sfu.admit("r", "a"), [county])
            c = Client("c", video_slots=1, audio_slots=1)
            await c.connect(await sfu.admit("r", "c"), [county])
            return sfu, a, c

        sfu, a, c = await lab.run_in(COUNTY, county_side())

        async def hall_offer() -> tuple[Client, str]:
            b = Client("b", video_slots=1, audio_slots=1, tuned=True)  # the headless kiosk in a hall
            offer = await b.pc.createOffer()
            ai.gather_on(b.pc, [hall])
            await b.pc.setLocalDescription(offer)
            return b, b.pc.localDescription.sdp

        b, sdp = await lab.run_in(1, hall_offer())
        handle = await lab.run_in(COUNTY, sfu.admit("r", "b"))
        answer = await lab.run_in(COUNTY, handle.handle_offer(sdp))
        await lab.run_in(1, b.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer")))
        b.handle = handle
        mids = {t.kind: t.mid for t in b.pc.getTransceivers()}
        try:
            await wait_until(lambda: b.log(mids["video"]).frames >= 20, 30, "b sees a's video")

            lab.shape(1, down_kbit=60)
            await wait_until(lambda: "audio_only" in modes(events, "b"), 30, "b switched to audio-only")
            state = next(
                e for e in reversed(events) if isinstance(e, LinkQualityChanged) and e.participant_id == "b"
            )
            assert state.bars == 1 and state.room_id == "r"
            # Audio keeps flowing to b and c keeps getting video while b is audio-only.
            audio0, c_video0 = b.log(mids["audio"]).frames, c.log(c.slot_of("a", "video")).frames
            await asyncio.sleep(6)
            audio_frames = b.log(mids["audio"]).frames - audio0
            assert audio_frames >= 150, f"only {audio_frames} audio frames in 6 s at b"  # of ~300
            assert c.log(c.slot_of("a", "video")).frames - c_video0 >= 30
            c_events = [e for e in events if isinstance(e, LinkQualityChanged) and e.participant_id == "c"]
            assert all(e.mode != "audio_only" for e in c_events), c_events

            lab.unshape(1)
            video0 = b.log(mids["video"]).frames
            await wait_until(lambda: modes(events, "b")[-1] != "audio_only", 30, "a probe brings video back")
            await wait_until(lambda: b.log(mids["video"]).frames >= video0 + 20, 20, "b sees video again")
        finally:
            await lab.run_in(1, b.close())

            async def county_close() -> None:
                await a.close()
                await c.close()
                await sfu.close()

            await lab.run_in(COUNTY, county_close())
