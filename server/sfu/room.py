"""A room: its participants and the decision of what is forwarded to whom."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rtc.recorded import RecordedFile

from .config import SfuConfig
from .errors import AlreadyJoined, InvalidRequest, InvalidState, NotInRoom, RoomNotFound
from .events import (
    ActiveSpeakerChanged,
    LinkQualityChanged,
    ParticipantConnected,
    ParticipantLeft,
    ReceivedLayersChanged,
    SfuEvent,
    SimulcastLayersChanged,
    SlotAssigned,
    VideoDemandChanged,
)
from .participant import Participant
from .recording import RecordingSession
from .relay import InboundStream, Kind, OutStream
from .simulcast import (
    BANDWIDTH_SHARE,
    KEYFRAME_GIVE_UP_S,
    KEYFRAME_RETRY_S,
    LayerInfo,
    LayerPause,
    choose_layer,
    choose_layers,
)
from .simulcast_inbound import SimulcastInbound

logger = logging.getLogger(__name__)

#: Loudness bonus for streams a subscriber already hears, so the 3rd/4th
#: loudest do not flap between slots on every evaluation.
AUDIO_STICKINESS = 6.0
#: How much louder than the active speaker someone must be to take over.
SPEAKER_HYSTERESIS = 6.0
#: Publishers one tile-size report may name (a page shows far fewer tiles).
MAX_TILE_REPORTS = 64


@dataclass(frozen=True)
class ForwardedStream:
    """One receive slot of a subscriber and what it carries."""

    kind: str
    mid: str
    publisher_id: str | None
    packets: int
    bytes: int
    retransmitted: int
    #: Simulcast: the layer forwarded now (0 = lowest) and the one it switches to; None for a
    #: single-layer source (what the chair's list is to show, issue 18 item 6).
    layer: int | None = None
    target_layer: int | None = None
    #: Layer switches made on this slot.
    layer_switches: int = 0
    #: Simulcast: the highest temporal layer (VP8 TID) forwarded of that layer, None for all.
    temporal_layer: int | None = None


@dataclass(frozen=True)
class ParticipantStats:
    participant_id: str
    connection_state: str
    published: tuple[str, ...]
    packets_in: int
    bytes_in: int
    packets_out: int
    bytes_out: int
    keyframe_requests_sent: int
    #: NACK packets sent to this participant for media it published that arrived with gaps.
    nacks_sent: int
    loudness: float
    video_wanted: bool
    #: Mean time spent forwarding one received packet to all its subscribers (seconds).
    relay_time_per_packet: float
    forwarded: tuple[ForwardedStream, ...]
    #: What the participant's Opus audio carried (rtc/codecs/opus.py).
    audio_packets_in: int
    opus_dtx_packets: int
    opus_fec_packets: int


@dataclass(frozen=True)
class RoomStats:
    room_id: str
    active_speaker: str | None
    participants: dict[str, ParticipantStats]


class Room:
    """Participants of one meeting in this worker. Created by :meth:`Sfu.open_room`."""

    def __init__(self, room_id: str, config: SfuConfig, emit: Callable[[SfuEvent], None]) -> None:
        self.id = room_id
        self._config = config
        self._emit = emit
        self.participants: dict[str, Participant] = {}
        self._order = itertools.count()
        self._active_speaker: str | None = None
        self._video_demand: dict[str, bool] = {}
        #: Simulcast: tile height (px) each subscriber shows each publisher in, as its page
        #: reported (set_tile_sizes), and its last downlink estimate (bit/s) and loss (0..1).
        self._tile_heights: dict[str, dict[str, int]] = {}
        self._downlink: dict[str, tuple[float | None, float | None]] = {}
        #: Per subscriber taking simulcast video: some slot got a lower layer than its tile
        #: wants, for want of bandwidth (set by _update_layers, read by the link controller).
        self._held_down: dict[str, bool] = {}
        #: Simulcast publishers' paused layers (issue 18 item 4), with the track they are of.
        self._layer_pause: dict[str, tuple[SimulcastInbound, LayerPause]] = {}
        #: The simulcast layer (rid) each subscriber was last said to receive of each publisher.
        self._received_layers: dict[str, dict[str, str]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Publishers whose tracks come through a pipe from another SFU (admit_piped): their
        #: demand and layers go back through the pipe, not to their page (it is on that SFU).
        self.piped: set[str] = set()
        #: Per publisher, the simulcast layers this room's slots take or would take (the last
        #: _update_layers), for a pipe to tell the publisher's own SFU (pipe.py).
        self.layers_wanted: dict[str, set[int]] = {}
        #: The running recording, if any (see recording.py).
        self.recording: RecordingSession | None = None
        self.closed = False

    # -- membership -----------------------------------------------------------------------
    def admit(self, participant_id: str, audio_max_bitrate: int | None = None) -> Participant:
        if self.closed:
            raise RoomNotFound(f"room {self.id!r} is closed")
        if not isinstance(participant_id, str) or not participant_id or len(participant_id) > 200:
            raise InvalidRequest("participant id must be a non-empty string of at most 200 characters")
        if participant_id in self.participants:
            raise AlreadyJoined(f"participant {participant_id!r} is already in room {self.id!r}")
        if audio_max_bitrate is not None and (
            not isinstance(audio_max_bitrate, int) or not 6000 <= audio_max_bitrate <= 510000
        ):
            raise InvalidRequest("audio_max_bitrate must be an integer in [6000, 510000] bit/s")
        p = Participant(self, participant_id, self._config, next(self._order), audio_max_bitrate)
        self.participants[participant_id] = p
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(
                self._run_ticker(), name=f"sfu-room-{self.id}"
            )
        return p

    def admit_piped(self, participant_id: str, inbound: Mapping[Kind, InboundStream]) -> Participant:
        """A publisher of another SFU whose tracks arrive through a pipe (pipe.py): a participant
        with no peer connection and no slots here, whose ``inbound`` streams (started, fed by
        the pipe) are forwarded, chosen and switched like any publisher's. It leaves by
        :meth:`remove`; no :class:`ParticipantConnected` is emitted for it (its own SFU does)."""
        p = self.admit(participant_id)
        p.inbound = dict(inbound)
        self.piped.add(participant_id)
        self._reassign()  # (not recorded here: its own SFU records it)
        return p

    def get(self, participant_id: str) -> Participant:
        p = self.participants.get(participant_id)
        if p is None:
            raise NotInRoom(f"participant {participant_id!r} is not in room {self.id!r}")
        return p

    async def remove(self, participant_id: str, reason: str = "left") -> None:
        p = self.participants.pop(participant_id, None)
        if p is None:
            raise NotInRoom(f"participant {participant_id!r} is not in room {self.id!r}")
        self._video_demand.pop(participant_id, None)
        self._tile_heights.pop(participant_id, None)
        self._downlink.pop(participant_id, None)
        self._layer_pause.pop(participant_id, None)
        self._received_layers.pop(participant_id, None)
        self.piped.discard(participant_id)
        if self.recording is not None:
            self.recording.detach(participant_id)  # leaving closes their file
        gone = set(p.inbound.values())
        for sub in self.participants.values():
            for slot in sub.audio_slots + sub.video_slots:
                if slot.source in gone and slot.assign(None):
                    self._emit(SlotAssigned(self.id, sub.id, slot.mid, slot.kind, None))
        await p.close()
        self._reassign()
        if self._active_speaker == participant_id:
            self._active_speaker = None
            self._emit(ActiveSpeakerChanged(self.id, None))
        self._emit(ParticipantLeft(self.id, participant_id, reason))

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        if self.recording is not None:
            await self.stop_recording()
        for pid in list(self.participants):
            p = self.participants.pop(pid)
            await p.close()
            self._emit(ParticipantLeft(self.id, pid, "room-closed"))
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- callbacks from participants ---------------------------------------------------------
    def _participant_media_ready(self, p: Participant) -> None:
        if self.recording is not None:
            self.recording.attach(p)  # a late joiner gets its own file from now on
        self._reassign()

    # -- recording -------------------------------------------------------------------------
    def start_recording(self, directory: Path) -> RecordingSession:
        if self.closed:
            raise RoomNotFound(f"room {self.id!r} is closed")
        if self.recording is not None:
            raise InvalidState(f"room {self.id!r} is already being recorded")
        session = RecordingSession(self.id, directory, asyncio.get_running_loop())
        self.recording = session
        for p in self.participants.values():
            session.attach(p)  # participants still negotiating attach when their media is ready
        self._update_demand()
        return session

    async def stop_recording(self) -> list[RecordedFile]:
        session, self.recording = self.recording, None
        if session is None:
            raise InvalidState(f"room {self.id!r} is not being recorded")
        files = await session.stop()
        self._update_demand()
        return files

    def _participant_connected(self, p: Participant) -> None:
        self._emit(ParticipantConnected(self.id, p.id))

    def _participant_transport_gone(self, p: Participant, reason: str) -> None:
        # Called from aiortc event handlers (sync): remove in a task we keep track of.
        if self.closed or self.participants.get(p.id) is not p:
            return

        async def remove() -> None:
            if self.participants.get(p.id) is not p:
                return
            try:
                await self.remove(p.id, reason)
            except Exception:
                logger.exception("room %s: removing %s after %s failed", self.id, p.id, reason)

        task = asyncio.get_running_loop().create_task(remove())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- selective forwarding ----------------------------------------------------------------
    def set_visible_videos(self, participant_id: str, publisher_ids: Sequence[str] | None) -> None:
        """Choose whose video ``participant_id`` receives (None: everyone, in join order).

        Ids not (yet) in the room are kept and take effect when they publish.
        More ids than the subscriber has video slots: the first ones win.
        """
        p = self.get(participant_id)
        if publisher_ids is None:
            p.visible_videos = None
        else:
            if isinstance(publisher_ids, str) or not all(isinstance(x, str) for x in publisher_ids):
                raise InvalidRequest("publisher_ids must be a list of participant ids")
            p.visible_videos = list(dict.fromkeys(publisher_ids))
        self._reassign()

    def set_tile_sizes(self, participant_id: str, sizes: Mapping[str, Sequence[int]]) -> None:
        """The size (CSS px, [width, height]) of the tile ``participant_id``'s page shows each
        publisher in; simulcast publishers are then forwarded in the smallest layer that
        fills the tile (a thumbnail never gets 720p). Replaces the previous report."""
        p = self.get(participant_id)
        if not isinstance(sizes, Mapping) or len(sizes) > MAX_TILE_REPORTS:
            raise InvalidRequest(f"tile sizes must be an object of at most {MAX_TILE_REPORTS} publishers")
        heights: dict[str, int] = {}
        for publisher_id, size in sizes.items():
            if (
                not isinstance(publisher_id, str)
                or not isinstance(size, (list, tuple))
                or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10_000 for v in size)
            ):
                raise InvalidRequest("each tile size must be [width, height] in pixels (0..10000)")
            heights[publisher_id] = int(size[1])
        self._tile_heights[p.id] = heights
        self._update_layers(time.monotonic())

    def _update_layers(self, now: float) -> None:
        """Choose the simulcast layer of every video slot whose source has layers
        (:func:`choose_layer`: tile size, the subscriber's share of its downlink, its loss), then
        which layers each simulcast publisher is to send (:meth:`_update_paused_layers`)."""
        infos: dict[str, list[LayerInfo]] = {}
        #: Per publisher, the same with its paused and silent layers counted as live at their
        #: last rate: what a slot would choose were they sent (a paused layer sends nothing, so
        #: it is not live, and would otherwise never be chosen, nor resumed).
        resumable: dict[str, list[LayerInfo] | None] = {}
        wanted: dict[str, set[int]] = {}
        held: dict[str, bool] = {}  # per subscriber: see LinkSample.layers_held_down
        for sub in self.participants.values():
            layered = [o for o in sub.video_slots if o.layers is not None and o.source is not None]
            if not layered:
                continue
            downlink, loss = self._downlink.get(sub.id, (None, None))
            active = [o for o in sub.video_slots if o.source is not None and not o.paused]
            rates = {id(o): o.send_rate(now) for o in active}
            tiles = self._tile_heights.get(sub.id, {})
            probe = sub.prober.take_finished()  # (prober.py)
            for slot in layered:
                source = slot.source
                if not isinstance(source, SimulcastInbound):
                    continue
                budget = _slot_budget(downlink, rates, slot)
                info = infos.get(source.publisher_id)
                if info is None:
                    info, resumable[source.publisher_id] = self._layer_infos(source, now)
                    infos[source.publisher_id] = info
                switch = slot.layers
                assert switch is not None
                tile = tiles.get(source.publisher_id)
                # a paused slot waits for nothing; one not started yet (its DTLS still coming
                # up) cannot receive the keyframe: its wait starts once it can
                idle = slot.paused or not slot.started
                waited = switch.waited(now, idle)
                if waited >= KEYFRAME_GIVE_UP_S:
                    # The target's keyframe never came: a slot that forwards nothing meanwhile
                    # is frozen. Take another layer (the current one if it flows) and leave this
                    # one alone for a while.
                    logger.info(
                        "room %s: %s gives up layer %d of %s (no keyframe in %.1f s)",
                        self.id,
                        sub.id,
                        switch.target,
                        source.publisher_id,
                        waited,
                    )
                    switch.give_up(now)
                    if switch.current is not None:
                        switch.target = switch.current  # it flows: no keyframe to ask for
                probed = probe is not None and probe.slot is slot and bool(probe.passed)
                if probe is not None and probe.slot is slot and probe.passed is False:
                    switch.probe_failed(now)
                    logger.info(
                        "room %s: %s probe for layer %d of %s failed (%s); next in %.0f s",
                        self.id,
                        sub.id,
                        probe.layer,
                        source.publisher_id,
                        probe.why,
                        switch.backoff,
                    )
                usable = switch.usable(info, now)
                if switch.first_choice_at is None:
                    switch.first_choice_at = now
                # no estimate yet: the lowest layer for a while
                unknown = budget is None and now - switch.first_choice_at < self._config.first_estimate_wait
                may_step_up = now >= switch.up_after
                ramping = switch.ramping(now, budget, info[switch.target].rate(switch.temporal_target))
                choice = functools.partial(
                    choose_layers,
                    tile_height=tile,
                    budget_bps=budget,
                    loss=loss,
                    current=switch.target,
                    may_step_up=may_step_up,
                    ramping=ramping,
                    temporal=switch.temporal_target,
                )
                if unknown:
                    layer, temporal = _lowest_live(usable), None
                else:
                    layer, temporal = choice(usable, probed=probed)
                if probed and probe is not None and switch.target < layer != probe.layer:
                    layer, temporal = choice(usable, probed=False)  # probed for another layer
                paused_info = resumable[source.publisher_id]
                view = usable if paused_info is None else switch.usable(paused_info, now)
                if layer < switch.target and paused_info is not None:
                    # A step down past a paused layer (nobody took it) would fall to the
                    # lowest: the link lab's hall B went from f to q on an estimate that
                    # carried h, and then waited out its hold-off there. Take the paused layer
                    # in between: it is resumed for this slot, which keeps forwarding its
                    # layer until the keyframe comes (or gives up on it, see above).
                    between, between_temporal = choice(view, probed=False)
                    if layer < between < switch.target:
                        layer, temporal = between, between_temporal
                if layer != switch.target and sub.prober.probing(slot) is not None:
                    sub.prober.cancel()  # the slot moves anyway: the probe would say nothing
                elif layer == switch.target == switch.current and not (probed or slot.paused):
                    # (counting paused layers as they were sent: one wanted is resumed for it)
                    self._probe_up(sub, slot, view, choice(view)[0], budget, now)
                unconstrained = choose_layer(
                    usable, tile_height=tile, budget_bps=None, loss=loss, current=switch.target
                )
                if not slot.paused:
                    held[sub.id] = held.get(sub.id, False) or layer < unconstrained or temporal is not None
                if unknown:
                    pass  # not the bandwidth's doing: no hold-off, no ramp
                elif layer < switch.target and layer < unconstrained:
                    switch.bandwidth_down(now)
                elif layer > switch.target:
                    switch.stepped_up(now, budget)
                elif layer == switch.target and _fewer(temporal, switch.temporal_target):
                    switch.bandwidth_down(now)
                elif layer == switch.target and _fewer(switch.temporal_target, temporal):
                    switch.stepped_up(now, budget)
                if slot.set_temporal(temporal):
                    logger.debug(
                        "room %s: %s takes temporal layers up to %s of layer %d of %s (budget %s)",
                        self.id,
                        sub.id,
                        temporal,
                        layer,
                        source.publisher_id,
                        budget,
                    )
                if slot.set_layer(layer):
                    logger.debug(
                        "room %s: %s takes layer %d of %s (tile %s, budget %s, loss %s)",
                        self.id,
                        sub.id,
                        layer,
                        source.publisher_id,
                        tile,
                        budget,
                        loss,
                    )
                if switch.waited(now, idle) > 0 and now - switch.asked_at >= KEYFRAME_RETRY_S:
                    # still waiting for the target's keyframe: the request or the keyframe may
                    # have been lost (throttled at the publisher's layer)
                    switch.asked_at = now
                    source.request_keyframe(switch.target)
                if slot.paused:
                    continue  # an audio-only subscriber receives no video: it takes no layer
                taken = wanted.setdefault(source.publisher_id, set())
                taken.add(switch.target)
                if switch.current is not None:
                    taken.add(switch.current)
                probing = sub.prober.probing(slot)
                if probing is not None:
                    taken.add(probing)  # (the layer a probe is for stays sent, to be stepped up to)
                if paused_info is not None:
                    # (without the layers this slot gave up on: after giving up f, a slot
                    # resumes the paused h rather than sit on q)
                    taken.add(
                        choose_layer(
                            view,
                            tile_height=tile,
                            budget_bps=budget,
                            loss=loss,
                            current=switch.target,
                            may_step_up=now >= switch.up_after,
                        )
                    )
        self._held_down = held
        self.layers_wanted = wanted
        self._update_paused_layers(wanted, now)
        self._update_received_layers()

    def _probe_up(
        self,
        sub: Participant,
        slot: OutStream,
        layers: Sequence[LayerInfo],
        ahead: int,
        budget: float | None,
        now: float,
    ) -> None:
        """Start a probe of ``sub``'s line (prober.py) when ``slot`` would step up to layer
        ``ahead`` of ``layers`` on the estimate's margin alone: padding brings the slot to the
        rate that layer needs (its bitrate with the choice's headroom), and the step waits for
        the verdict. Not when the slot's ``budget`` covers that layer outright: it is a paused
        layer being resumed for the slot, which steps up once it is sent (nothing to probe)."""
        switch = slot.layers
        if switch is None or switch.current is None or ahead <= switch.current or sub.prober.running:
            return
        need = layers[ahead].bitrate / BANDWIDTH_SHARE
        if budget is None or need <= budget:
            return
        padding = need - slot.send_rate(now)
        if sub.prober.start(slot, ahead, padding):
            logger.info(
                "room %s: %s probes its line for layer %d of %s (%.0f kbit/s of padding)",
                self.id,
                sub.id,
                ahead,
                slot.source.publisher_id if slot.source is not None else "?",
                padding / 1000,
            )

    def _update_received_layers(self) -> None:
        """Tell who receives which layer of whom (:class:`ReceivedLayersChanged`), on a change."""
        for sub in self.participants.values():
            received: dict[str, str] = {}
            for slot in sub.video_slots:
                source, switch = slot.source, slot.layers
                if (
                    isinstance(source, SimulcastInbound)
                    and switch is not None
                    and switch.current is not None
                    and not slot.paused
                ):
                    received[source.publisher_id] = source.simulcast.rids[switch.current]
            if received != self._received_layers.get(sub.id, {}):
                self._received_layers[sub.id] = received
                self._emit(ReceivedLayersChanged(self.id, sub.id, dict(received)))

    def _layer_infos(
        self, source: SimulcastInbound, now: float
    ) -> tuple[list[LayerInfo], list[LayerInfo] | None]:
        """The layers of ``source`` as the choice sees them (a paused layer is never live,
        even in the second it may still send), and as they would be were every layer sent
        (None when all are live). The latter counts active layers the publisher does not send
        too (Chromium stops encoding a layer its bandwidth estimate cannot carry): wanted, they
        stay active, so the publisher takes them up when it can, instead of being paused for
        nobody taking them and resumed at once, again and again (seen in a loaded bench run)."""
        info = source.layer_info(now)
        entry = self._layer_pause.get(source.publisher_id)
        if entry is None or entry[0] is not source:
            entry = self._layer_pause[source.publisher_id] = (source, LayerPause(source.layer_count))
        pause = entry[1]
        for i, layer in enumerate(info):
            if i in pause.active and layer.live and layer.bitrate > 0:
                pause.last_bitrate[i] = layer.bitrate
        real = [
            layer if i in pause.active else LayerInfo(False, layer.bitrate, layer.height)
            for i, layer in enumerate(info)
        ]
        if all(layer.live for layer in real):
            return real, None
        resumed = [
            layer if layer.live else LayerInfo(True, pause.last_bitrate[i], layer.height)
            for i, layer in enumerate(real)
        ]
        return real, resumed

    def _update_paused_layers(self, wanted: Mapping[str, set[int]], now: float) -> None:
        """Tell each simulcast publisher which layers to send (:class:`LayerPause`). A recording
        keeps the top layer (the recorder records it)."""
        for p in self.participants.values():
            source = p.inbound.get("video")
            if not isinstance(source, SimulcastInbound) or p.id in self.piped:
                continue
            entry = self._layer_pause.get(p.id)
            if entry is None or entry[0] is not source:
                entry = self._layer_pause[p.id] = (source, LayerPause(source.layer_count))
            layers = set(wanted.get(p.id, ()))
            for remote in source.remote_layers.values():  # subscribers on other SFUs (pipe.py)
                layers |= remote
            if source.taps:
                layers.add(source.layer_count - 1)
            change = entry[1].update(layers, now)
            if change is None:
                continue
            active, resumed = change
            for layer in sorted(resumed):
                source.request_keyframe(layer)
            rids = tuple(rid for i, rid in enumerate(source.simulcast.rids) if i in active)
            logger.info("room %s: %s is to send simulcast layers %s", self.id, p.id, ",".join(rids))
            self._emit(SimulcastLayersChanged(self.id, p.id, rids))

    def _reassign(self) -> None:
        if self.closed:
            return
        self._reassign_video()
        self._reassign_audio()
        self._update_demand()

    def _assign(self, sub: Participant, slots: list[OutStream], sources: list[InboundStream]) -> None:
        # Slots already carrying a wanted source keep it (no needless switch,
        # no keyframe wait); the remaining sources fill the other slots in order.
        pending = [s for s in sources if all(slot.source is not s for slot in slots)]
        for slot in slots:
            if slot.source is not None and slot.source in sources:
                continue
            new = pending.pop(0) if pending else None
            if slot.assign(new):
                self._emit(
                    SlotAssigned(self.id, sub.id, slot.mid, slot.kind, new.publisher_id if new else None)
                )

    def _reassign_video(self) -> None:
        publishers = [p for p in self.participants.values() if "video" in p.inbound]
        for sub in self.participants.values():
            if not sub.video_slots:
                continue
            if sub.visible_videos is None:
                ids = [p.id for p in publishers if p is not sub]
            else:
                ids = sub.visible_videos
            sources: list[InboundStream] = []
            for pid in ids:
                pub = self.participants.get(pid)
                if pub is not None and pub is not sub and "video" in pub.inbound:
                    sources.append(pub.inbound["video"])
            self._assign(sub, sub.video_slots, sources[: len(sub.video_slots)])

    def _reassign_audio(self) -> None:
        publishers = [p for p in self.participants.values() if "audio" in p.inbound]
        for sub in self.participants.values():
            if not sub.audio_slots:
                continue
            current = {slot.source for slot in sub.audio_slots}
            candidates = [p for p in publishers if p is not sub]
            candidates.sort(
                key=lambda p: (
                    -(p.loudness + (AUDIO_STICKINESS if p.inbound["audio"] in current else 0.0)),
                    p.order,
                )
            )
            n = min(self._config.max_audio_streams, len(sub.audio_slots))
            self._assign(sub, sub.audio_slots, [p.inbound["audio"] for p in candidates[:n]])

    def _update_demand(self) -> None:
        for p in self.participants.values():
            video = p.inbound.get("video")
            if video is None or p.id in self.piped:
                continue
            wanted = video.wanted
            # Publishers start sending, so "wanted" is the assumed initial state.
            if self._video_demand.get(p.id, True) != wanted:
                self._emit(VideoDemandChanged(self.id, p.id, wanted))
            self._video_demand[p.id] = wanted

    # -- loudness / active speaker ----------------------------------------------------------
    async def _run_ticker(self) -> None:
        loop = asyncio.get_running_loop()
        next_link = loop.time() + self._config.link_interval
        while True:
            await asyncio.sleep(self._config.speaker_interval)
            try:
                self._update_loudness()
                self._reassign_audio()
            except Exception:
                logger.exception("room %s: loudness update failed", self.id)
            if loop.time() >= next_link:
                next_link = loop.time() + self._config.link_interval
                try:
                    self._update_links(loop.time())
                except Exception:
                    logger.exception("room %s: link quality update failed", self.id)

    # -- link quality / downlink adaptation -------------------------------------------------
    def _update_links(self, now: float) -> None:
        demand_changed = False
        for p in list(self.participants.values()):
            if not p.connected or p.closed:
                continue
            sample = p.link_sample(now, self._held_down.get(p.id))
            state = p.link.update(now, sample)
            p.pacer.set_estimate(None if state.downlink_kbps is None else state.downlink_kbps * 1000.0)
            self._downlink[p.id] = (
                None if state.downlink_kbps is None else state.downlink_kbps * 1000.0,
                # (the downlink's loss only: a hall's lossy uplink says nothing of what it can
                # receive)
                None if state.downlink_loss_pct is None else state.downlink_loss_pct / 100,
            )
            logger.debug("room %s: %s %s -> %s", self.id, p.id, sample, state)
            demand_changed |= p.apply_link_mode()
            old = p.link_state
            if (state.bars, state.mode) != (old.bars, old.mode):
                p.link_state = state
                logger.info(
                    "room %s: %s link %s bars=%d (%s kbit/s, loss %s%%)",
                    self.id,
                    p.id,
                    state.mode,
                    state.bars,
                    state.downlink_kbps,
                    state.loss_pct,
                )
                self._emit(
                    LinkQualityChanged(
                        self.id, p.id, state.bars, state.mode, state.downlink_kbps, state.loss_pct
                    )
                )
        if demand_changed:
            self._update_demand()
        self._update_layers(time.monotonic())

    def _update_loudness(self) -> None:
        s = self._config.speaker_smoothing
        for p in self.participants.values():
            audio = p.inbound.get("audio")
            value = audio.take_loudness() if audio is not None else None
            p.loudness = s * p.loudness + (1 - s) * (value or 0.0)
        threshold = self._config.speaker_min_loudness
        loud = [p for p in self.participants.values() if p.loudness >= threshold]
        if not loud:
            return  # keep the last speaker while everybody is quiet
        best = max(loud, key=lambda p: (p.loudness, -p.order))
        current = self.participants.get(self._active_speaker) if self._active_speaker else None
        if best is current:
            return
        if (
            current is not None
            and current.loudness >= threshold
            and best.loudness < current.loudness + SPEAKER_HYSTERESIS
        ):
            return
        self._active_speaker = best.id
        self._emit(ActiveSpeakerChanged(self.id, best.id))

    @property
    def active_speaker(self) -> str | None:
        return self._active_speaker

    # -- stats ------------------------------------------------------------------------------
    def stats(self) -> RoomStats:
        result: dict[str, ParticipantStats] = {}
        for p in self.participants.values():
            forwarded = tuple(
                ForwardedStream(
                    kind=o.kind,
                    mid=o.mid,
                    publisher_id=o.source.publisher_id if o.source else None,
                    packets=o.packets,
                    bytes=o.bytes,
                    retransmitted=o.retransmitted,
                    layer=o.layers.current if o.layers is not None else None,
                    target_layer=o.layers.target if o.layers is not None else None,
                    layer_switches=o.layers.switches if o.layers is not None else 0,
                    temporal_layer=o.layers.temporal if o.layers is not None else None,
                )
                for o in p.audio_slots + p.video_slots
            )
            ins = list(p.inbound.values())
            audio = p.inbound.get("audio")
            packets_in = sum(s.packets for s in ins)
            relay_time = sum(s.relay_time_total for s in ins)
            result[p.id] = ParticipantStats(
                participant_id=p.id,
                connection_state=p.connection_state,
                published=tuple(sorted(p.inbound)),
                packets_in=packets_in,
                bytes_in=sum(s.bytes for s in ins),
                packets_out=sum(f.packets for f in forwarded),
                bytes_out=sum(f.bytes for f in forwarded),
                keyframe_requests_sent=sum(s.plis_sent for s in ins),
                nacks_sent=sum(s.nacks_sent for s in ins),
                loudness=p.loudness,
                video_wanted=bool(p.inbound.get("video") and p.inbound["video"].wanted),
                relay_time_per_packet=relay_time / packets_in if packets_in else 0.0,
                forwarded=forwarded,
                audio_packets_in=audio.packets if audio else 0,
                opus_dtx_packets=audio.opus_dtx_packets if audio else 0,
                opus_fec_packets=audio.opus_fec_packets if audio else 0,
            )
        return RoomStats(room_id=self.id, active_speaker=self._active_speaker, participants=result)


def _lowest_live(layers: Sequence[LayerInfo]) -> int:
    """The lowest layer that sends (the lowest one when none does)."""
    return next((i for i, info in enumerate(layers) if info.live), 0)


def _fewer(a: int | None, b: int | None) -> bool:
    """Temporal layers up to ``a`` are fewer than up to ``b`` (None: all of them)."""
    return a is not None and (b is None or a < b)


def _slot_budget(downlink: float | None, rates: Mapping[int, float], slot: OutStream) -> float | None:
    """The share of a subscriber's downlink estimate one video slot may use: what the others
    do not take now (a hall's second tile showing a camera that is off takes next to nothing;
    an equal split halved the chair's budget and held the hall TV below the top layer), but no
    less than an equal share (the others may be taking more than their due)."""
    if downlink is None:
        return None
    others = sum(rate for key, rate in rates.items() if key != id(slot))
    return max(downlink - others, downlink / max(1, len(rates)))
