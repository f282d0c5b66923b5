"""Simulcast (RFC 8853 ``a=simulcast``, RFC 8851 ``a=rid``): what the SFU reads from an offer,
what it writes into the answer, and how one subscriber slot picks and switches layers.

aiortc's SDP layer knows neither attribute and its answer carries no RID header extension, so
the offer code (:mod:`.offer`) reads them here and :meth:`SimulcastOffer.answer_lines` puts
``a=extmap`` (rtp-stream-id, repaired-rtp-stream-id), ``a=rid:<id> recv`` and
``a=simulcast:recv ...`` into the answer; without them Chromium sends only its first encoding.

Layers are named by rid, LiveKit's convention: ``q`` (quarter), ``h`` (half), ``f`` (full
resolution), low to high. An offer the SFU cannot map (another rid, alternatives, more than
three layers, no rtp-stream-id extension) is answered as a single-layer section: the answer
simply leaves simulcast out, which RFC 8853 §5.3 defines as "send one stream" (Chromium then
sends its first encoding). Why it was refused is kept in :attr:`Offer.simulcast_refused` and
logged, so the page can be told.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from rtc import aiortc_internals as ai
from rtc.codecs import vp8
from rtc.rtputil import seq_diff

RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
#: Spatial layer index (0 = lowest) of each rid the SFU maps.
LAYER_OF_RID = MappingProxyType({"q": 0, "h": 1, "f": 2})
MAX_LAYERS = 3


@dataclass(frozen=True)
class SimulcastOffer:
    """The simulcast a sending video section offers, once the SFU has accepted it."""

    mid: str
    #: The offered rids, lowest layer first (index = spatial layer).
    rids: tuple[str, ...]
    #: Rids the offer lists as paused (``~q``): accepted, echoed paused.
    paused: frozenset[str]
    rid_ext_id: int
    repaired_ext_id: int | None

    def layer_of(self, rid: str | None) -> int | None:
        return self.rids.index(rid) if rid in self.rids else None

    def answer_lines(self) -> list[str]:
        """The answer's lines for this section (RFC 8853 §5.3: recv, same order as offered)."""
        lines = [f"a=extmap:{self.rid_ext_id} {RID_URI}"]
        if self.repaired_ext_id is not None:
            lines.append(f"a=extmap:{self.repaired_ext_id} {REPAIRED_RID_URI}")
        lines += [f"a=rid:{rid} recv" for rid in self.rids]
        lines.append("a=simulcast:recv " + ";".join(("~" if r in self.paused else "") + r for r in self.rids))
        return lines


def extmap_id(section: list[str], uri: str) -> int | None:
    """The id a section's ``a=extmap`` gives the header extension ``uri``, if any."""
    for line in section:
        if line.startswith("a=extmap:"):
            parts = line[len("a=extmap:") :].split()
            if len(parts) >= 2 and parts[1] == uri:
                try:
                    return int(parts[0].split("/")[0])
                except ValueError:
                    return None
    return None


def read_simulcast(mid: str, section: list[str]) -> tuple[SimulcastOffer | None, str | None]:
    """(the accepted simulcast, None), (None, why it was refused), or (None, None) when the
    section offers no simulcast. A refusal means: answer it as one layer."""
    simulcast = [line for line in section if line.startswith("a=simulcast:")]
    send_rids = []
    for line in section:
        if line.startswith("a=rid:"):
            parts = line[len("a=rid:") :].split()
            if len(parts) >= 2 and parts[1] == "send":
                send_rids.append(parts[0])
    if not simulcast and not send_rids:
        return None, None
    if len(simulcast) != 1:
        return None, "a=rid without exactly one a=simulcast line"
    words = simulcast[0][len("a=simulcast:") :].split()
    if len(words) < 2 or words[0] != "send" or (len(words) > 2 and words[2] != "recv"):
        return None, f"unsupported a=simulcast: {simulcast[0][len('a=simulcast:') :]!r} (send only)"
    if len(words) > 2:
        return None, "a=simulcast recv streams are not supported (the SFU only receives layers)"
    paused: set[str] = set()
    rids: list[str] = []
    for stream in words[1].split(";"):
        if "," in stream:
            return None, f"simulcast alternatives ({stream!r}) are not supported"
        rid = stream[1:] if stream.startswith("~") else stream
        if rid != stream:
            paused.add(rid)
        rids.append(rid)
    if len(rids) > MAX_LAYERS:
        return None, f"{len(rids)} simulcast layers offered; at most {MAX_LAYERS}"
    if len(set(rids)) != len(rids):
        return None, "a simulcast rid is listed twice"
    unknown = [r for r in rids if r not in LAYER_OF_RID]
    if unknown:
        return None, f"simulcast rids {unknown} cannot be mapped (the SFU knows q, h, f)"
    missing = [r for r in rids if r not in send_rids]
    if missing:
        return None, f"simulcast rids {missing} have no a=rid:<id> send line"
    rid_ext = extmap_id(section, RID_URI)
    if rid_ext is None:
        return None, "the rtp-stream-id header extension is not offered, layers cannot be told apart"
    ordered = tuple(sorted(rids, key=LAYER_OF_RID.__getitem__))
    return (
        SimulcastOffer(
            mid=mid,
            rids=ordered,
            paused=frozenset(paused),
            rid_ext_id=rid_ext,
            repaired_ext_id=extmap_id(section, REPAIRED_RID_URI),
        ),
        None,
    )


def with_simulcast_answer(answer_sdp: str, offer: SimulcastOffer) -> str:
    """``answer_sdp`` with :meth:`SimulcastOffer.answer_lines` added to the section of
    ``offer.mid`` (right after its ``a=mid`` line)."""
    lines = answer_sdp.split("\r\n")
    out: list[str] = []
    done = False
    for line in lines:
        out.append(line)
        if not done and line == f"a=mid:{offer.mid}":
            out += offer.answer_lines()
            done = True
    if not done:
        raise ValueError(f"the answer has no section with mid {offer.mid!r}")
    return "\r\n".join(out)


# -- one subscriber slot: which layer it forwards, and switching at keyframes ----------------

DROP, PASS, SWITCHED = 0, 1, 2
#: After a step up, the estimate has this long to climb to the new layer's rate (seconds; it
#: grows ~8 %/s; a step on the estimate's margin alone came after a padding probe, prober.py);
#: meanwhile only loss, a falling estimate (the estimator saw overuse) or a flat one (below)
#: bring the slot down.
UP_GRACE_S = 15.0
#: While ramping, the estimate must grow by :data:`RAMP_GROWTH` every :data:`RAMP_CHECK_S`: a
#: delay-based estimate with room grows ~8 %/s (+26 % in 3 s); one that stays flat is at the
#: line's capacity (or capped, like the benchmark's weak hall), so the new layer does not fit.
RAMP_CHECK_S = 3.0
RAMP_GROWTH = 1.1
#: A pending switch whose target keyframe has not come is asked for again this often (seconds;
#: the request or the keyframe may have been lost, the publisher's throttle defers the rest),
#: and given up after :data:`KEYFRAME_GIVE_UP_S`: the slot then takes another layer, and does
#: not try that one again for :data:`GIVE_UP_HOLD_S`. A slot that forwards nothing meanwhile
#: (nothing switched to yet, or its layer stopped) is frozen for as long as it waits.
KEYFRAME_RETRY_S = 1.0
KEYFRAME_GIVE_UP_S = 2.5
GIVE_UP_HOLD_S = 10.0
#: Padding-only packets forwarded in a row at most (see :meth:`LayerSwitch.media`).
MAX_PADDING_RUN = 100
#: After a step down forced by bandwidth, no step up for this long (then doubling, see
#: :meth:`LayerSwitch.bandwidth_down`): a 300 kbit/s hall must not flap between layers.
HOLD_DOWN_S = 4.0
HOLD_DOWN_MAX_S = 60.0


class LayerSwitch:
    """The layer an :class:`~.relay.OutStream` forwards from a simulcast source (LiveKit's
    ``Forwarder``, mediasoup's ``SimulcastConsumer``).

    ``target`` is set by the room's layer choice; ``current`` follows it only at a keyframe of
    the target layer (up or down: a delta frame of another encoder is undecodable), so until
    that keyframe comes the slot keeps forwarding ``current``. Every switch rebases the VP8
    PictureID/TL0PICIDX munger; the slot's :class:`~rtc.seq_rewriter.SeqRewriter` begins a new
    epoch, so sequence numbers and timestamps stay continuous too.
    """

    __slots__ = (
        "current",
        "target",
        "switches",
        "munger",
        "pending_since",
        "up_after",
        "up_at",
        "up_estimate",
        "last_estimate",
        "ramp_failed",
        "ramp_check",
        "backoff",
        "probe_failed_at",
        "first_choice_at",
        "last_timestamp",
        "padding_run",
        "cut_seq",
        "waiting_for",
        "wait_since",
        "asked_at",
        "given_up",
        "temporal",
        "temporal_target",
        "temporal_switches",
    )

    def __init__(self, target: int) -> None:
        self.current: int | None = None
        self.target = target
        self.switches = 0
        self.munger = vp8.PictureIdMunger()
        #: When (monotonic) the pending switch to ``target`` was asked for.
        self.pending_since: float | None = None
        #: No step up before this (monotonic): set after the bandwidth forced a step down,
        #: doubling (up to 60 s) when that step down undid a recent step up (a failed probe).
        self.up_after = 0.0
        self.up_at = float("-inf")
        self.up_estimate = 0.0
        self.last_estimate: float | None = None
        #: The last step up failed (the estimate fell, or stayed flat): no longer ramping.
        self.ramp_failed = False
        #: (when, estimate) the estimate's growth is next measured from while ramping.
        self.ramp_check = (float("-inf"), 0.0)
        self.backoff = HOLD_DOWN_S
        #: When a probe for the next layer up last failed (prober.py; see :meth:`probe_failed`).
        self.probe_failed_at = float("-inf")
        #: When the room first chose a layer for this slot (room clock; see
        #: ``SfuConfig.first_estimate_wait``).
        self.first_choice_at: float | None = None
        #: Source RTP timestamp of the last media packet forwarded (for padding, see below).
        self.last_timestamp: int | None = None
        #: Padding-only packets of the current layer since its last media packet, and the
        #: source sequence number where forwarding them stopped (see :meth:`media`).
        self.padding_run = 0
        self.cut_seq: int | None = None
        #: The pending switch the room is watching (see :meth:`waited`): its target, since when
        #: (the room's clock) and when its keyframe was last asked for.
        self.waiting_for: int | None = None
        self.wait_since = 0.0
        self.asked_at = 0.0
        #: Layers whose keyframe never came, each with when this slot may try it again.
        self.given_up: dict[int, float] = {}
        #: The highest temporal layer (VP8 TID) forwarded, None for all; and the one the room
        #: chose, taken at the next frame that allows it (see :meth:`drops`).
        self.temporal: int | None = None
        self.temporal_target: int | None = None
        self.temporal_switches = 0

    def stepped_up(self, now: float, estimate: float | None) -> None:
        self.up_at = now
        self.up_estimate = estimate or 0.0
        self.last_estimate = estimate
        self.ramp_failed = False
        self.ramp_check = (now, estimate or 0.0)

    def ramping(self, now: float, estimate: float | None, layer_bitrate: float) -> bool:
        """Within :data:`UP_GRACE_S` of a step up, the estimate still below the new layer's
        bitrate, neither below the one the step was taken at nor falling, and growing (by
        :data:`RAMP_GROWTH` per :data:`RAMP_CHECK_S`). Called once per evaluation: it remembers
        the estimate. Once a step has failed it stays failed until the next step up."""
        last, self.last_estimate = self.last_estimate, estimate
        if self.ramp_failed or now - self.up_at >= UP_GRACE_S or estimate is None:
            return False
        if estimate < 0.9 * self.up_estimate or (last is not None and estimate < 0.9 * last):
            self.ramp_failed = True  # overuse: the step failed
            return False
        if estimate >= layer_bitrate:
            return False  # caught up: the layer is judged by the estimate again
        check_at, check_estimate = self.ramp_check
        if now - check_at >= RAMP_CHECK_S:
            if estimate < RAMP_GROWTH * check_estimate:
                self.ramp_failed = True  # flat: the line is full below the new layer's rate
                return False
            self.ramp_check = (now, estimate)
        return True

    def bandwidth_down(self, now: float) -> None:
        """The bandwidth forced this slot down: hold off stepping up again."""
        self.backoff = min(HOLD_DOWN_MAX_S, self.backoff * 2) if now - self.up_at < 30 else HOLD_DOWN_S
        self.up_after = now + self.backoff

    def probe_failed(self, now: float) -> None:
        """A probe of the subscriber's line for the next layer up failed (prober.py): hold off
        probing again, twice as long each time probes keep failing (a 300 kbit/s hall must
        not have its line filled with padding every few seconds)."""
        recent = now - self.probe_failed_at < 2 * HOLD_DOWN_MAX_S
        self.backoff = min(HOLD_DOWN_MAX_S, self.backoff * 2) if recent else HOLD_DOWN_S
        self.probe_failed_at = now
        self.up_after = now + self.backoff

    def accept(self, layer: int | None, payload: bytes) -> int:
        """:data:`DROP`, :data:`PASS` or :data:`SWITCHED` (this keyframe starts the target)."""
        if layer is not None and layer == self.target and layer != self.current:
            if not vp8.is_keyframe_start(payload):
                return DROP
            self.current = layer
            self.switches += 1
            self.pending_since = None
            self.munger.rebase()
            self.padding_run = 0
            self.cut_seq = None  # another layer: another sequence number space
            self.temporal = self.temporal_target  # a keyframe: every temporal layer can start
            return SWITCHED
        return PASS if layer is not None and layer == self.current else DROP

    def drops(self, payload: bytes) -> bool:
        """Whether this packet (of the current layer, after :meth:`accept` passed it) is of a
        temporal layer above the one forwarded (issue 18: temporal layers go before a spatial
        layer, for finer steps; LiveKit's and mediasoup's VP8 forwarding).

        The choice takes effect at a frame start, so a picture is forwarded whole or not at all:
        a step down at the next frame (dropping pictures of upper layers never breaks the ones
        below: nothing of a lower layer references them); a step up at the next base-layer (TID
        0) frame, from which every upper-layer picture's references are all forwarded (Chromium's
        L1T2/L1T3 pattern refers back to the last TL0 picture at most). Costs a descriptor parse
        per packet only while some layer is held back or a change is pending."""
        temporal, target = self.temporal, self.temporal_target
        if temporal is None and target is None:
            return False
        tid, frame_start = vp8.temporal_frame(payload)
        if tid is None:
            return False  # the encoder sends no temporal layers
        if target != temporal and frame_start:
            up = target is None or (temporal is not None and target > temporal)
            if not up or tid == 0:
                self.temporal = temporal = target
                self.temporal_switches += 1
        return temporal is not None and tid > temporal

    def as_padding(self, packet: ai.RtpPacket) -> ai.RtpPacket | None:
        """A packet of a dropped picture that came out of order (its sequence number is already
        taken between packets sent, so it cannot be skipped): sent as padding in its place, with
        the timestamp of the last frame forwarded (see :meth:`media`), so the subscriber sees
        no gap and neither asks for it nor gets a piece of a picture it cannot decode."""
        if self.last_timestamp is None:
            return None
        pinned = ai.RtpPacket(
            payload_type=packet.payload_type,
            marker=0,
            sequence_number=packet.sequence_number,
            timestamp=self.last_timestamp,
            ssrc=packet.ssrc,
        )
        pinned.padding_size = 1
        pinned.extensions = packet.extensions
        return pinned

    def waited(self, now: float, paused: bool = False) -> float:
        """How long (room clock) the slot has been waiting for its target's keyframe, 0 when
        it forwards its target or is paused (waits nothing). The wait starts when the room
        first sees the target pending, whoever set it (a new slot starts pending on the top
        layer, a resumed one on its target)."""
        if paused or self.current == self.target:
            self.waiting_for = None
            return 0.0
        if self.waiting_for != self.target:
            self.waiting_for, self.wait_since, self.asked_at = self.target, now, now
        return now - self.wait_since

    def give_up(self, now: float) -> None:
        """The target's keyframe did not come: do not choose that layer for a while."""
        self.given_up[self.target] = now + GIVE_UP_HOLD_S
        self.waiting_for = None

    def usable(self, layers: Sequence[LayerInfo], now: float) -> list[LayerInfo]:
        """``layers`` as this slot may choose them: the ones it gave up on are not live."""
        for layer, until in list(self.given_up.items()):
            if now >= until:
                del self.given_up[layer]
        return [
            LayerInfo(False, info.bitrate, info.height) if i in self.given_up else info
            for i, info in enumerate(layers)
        ]

    def media(self, packet: ai.RtpPacket) -> ai.RtpPacket | None:
        """``packet`` as it is to be forwarded (after :meth:`accept` passed it), or None.

        Padding that arrives in order never gets here: the slot leaves it out and renumbers
        (``OutStream.forward``). What follows is for padding that came out of order, whose
        number is already taken between packets sent, and for a slot not numbering yet.

        Chromium pads simulcast layers (bandwidth probes without RTX): padding-only packets,
        sometimes with a timestamp of their own. A receiver that assembles frames by timestamp
        (aiortc's jitter buffer, the headless kiosk) then gets an empty frame, and an empty
        packet puts its VP8 decoder into end-of-stream for good. So a padding packet is sent
        with the timestamp of the last frame forwarded (it joins that frame, adding nothing);
        the sequence numbers stay gapless.

        But only :data:`MAX_PADDING_RUN` in a row: Chromium pads a layer it stopped encoding
        (its bandwidth estimate fell) at hundreds of packets a second, and aiortc's jitter buffer
        holds 512 packets; when one frame's packets outgrow it, it drops the frame's head (the
        picture) and later hands its decoder the padding left over as an empty frame: the
        decoder goes end-of-stream and never decodes again (what froze every subscriber of a
        loaded benchmark run for good). Past the run, None: the slot does not forward the
        packet and begins a new numbering epoch at the next one (no gap for the subscriber);
        packets from before that point are not forwarded either."""
        if self.cut_seq is not None and seq_diff(packet.sequence_number, self.cut_seq) <= 0:
            return None  # late, from before the cut: its epoch is over
        if packet.payload:
            self.last_timestamp = packet.timestamp
            self.padding_run = 0
            self.cut_seq = None  # the slot's new epoch refuses what is older from here on
            return packet
        if self.last_timestamp is None:
            return None
        self.padding_run += 1
        if self.padding_run > MAX_PADDING_RUN:
            self.cut_seq = packet.sequence_number
            return None
        if packet.timestamp == self.last_timestamp:
            return packet
        pinned = ai.RtpPacket(
            payload_type=packet.payload_type,
            marker=packet.marker,
            sequence_number=packet.sequence_number,
            timestamp=self.last_timestamp,
            ssrc=packet.ssrc,
        )
        pinned.padding_size = packet.padding_size
        pinned.extensions = packet.extensions
        return pinned


@dataclass(frozen=True)
class LayerInfo:
    """What the room knows of one layer of a publisher when it chooses for a subscriber."""

    #: Received recently (a publisher that stops sending a layer must not freeze anyone).
    live: bool
    #: Measured bitrate (bit/s) over the last interval; 0 before any measure.
    bitrate: float
    #: Frame height from its last keyframe, None before one arrived.
    height: int | None
    #: Bitrate (bit/s) of its temporal layers up to each TID (index t: TIDs 0..t; the last
    #: is the whole layer), or empty when it has none (VP8 without the T bit).
    temporal: tuple[float, ...] = ()
    #: Frames per second of the same (index t: TIDs 0..t).
    temporal_fps: tuple[float, ...] = ()

    def lowest_temporal(self) -> int | None:
        """The fewest temporal layers a slot may be held to: the lowest TID whose frames up to
        it make :data:`MIN_TEMPORAL_FPS`; None when no upper layer can be dropped."""
        for t, fps in enumerate(self.temporal_fps[: len(self.temporal) - 1]):
            if fps >= MIN_TEMPORAL_FPS:
                return t
        return None

    def rate(self, temporal: int | None) -> float:
        """Bit/s of the temporal layers up to ``temporal`` (None: all of them)."""
        if temporal is None or temporal >= len(self.temporal) - 1:
            return self.bitrate
        return self.temporal[temporal]


#: Temporal layers are dropped only down to this frame rate: below it a smaller picture at the
#: full frame rate serves a resident better (issue 18 asks >= 14 fps of the hall that shows the
#: chair large, >= 10 of a 300 kbit/s one). At a 30 fps camera, L1T3 gives 7.5 / 15 / 30 fps
#: (15 measures 14-15): a slot may be held to TIDs 0-1, not to TID 0; at 20 fps, to neither.
MIN_TEMPORAL_FPS = 14.0
#: Nominal heights of q/h/f before a keyframe told the real one (the pages' 180p/360p/720p).
NOMINAL_HEIGHT = (180, 360, 720)
#: Loss at or above which a subscriber's budget is cut as GCC's loss-based controller cuts its
#: estimate (x (1 - loss/2); LiveKit, Jitsi and mediasoup all use it), and no layer is stepped up
#: to. Not a layer lower outright: a strong line that loses 10-20 % for a few seconds (the link
#: lab's busy machine: its hall B, on a 3.6 Mbit/s estimate, dropped from the top layer each time
#: and the layer was paused for nobody taking it) keeps a layer it still carries.
LOSS_STEP_DOWN = 0.10
#: Share of the per-slot bandwidth a layer may take (the rest: audio, probes, headroom).
BANDWIDTH_SHARE = 0.85
#: A delay-based estimate (REMB) never exceeds ~1.5x what arrives, so a slot at a low layer
#: can never "fit" a higher one by estimate alone. An estimate this far above the current
#: layer's bitrate shows no congestion: the slot may try one layer up, once a probe with padding
#: (prober.py) showed the line carries it (``probed``); if the step still congests, the
#: estimate falls and the slot goes back down, then waits.
UP_MARGIN = 1.2
#: ... but not to a layer above this multiple of the estimate: an unconstrained slot's estimate
#: is up to ~1.5x its layer, so q -> h (~3.3x the rate) and h -> f (~2.4x) stay within 2.5x of
#: it, while a hall whose estimate stays at 300 kbit/s on h (~300 kbit/s under load) does not
#: probe f (~1 Mbit/s), as the benchmark's weak hall did (and then held it 15 s, UP_GRACE_S).
UP_REACH = 2.5


def choose_layer(
    layers: Sequence[LayerInfo],
    *,
    tile_height: int | None,
    budget_bps: float | None,
    loss: float | None,
    current: int | None = None,
    may_step_up: bool = True,
    ramping: bool = False,
    temporal: int | None = None,
    probed: bool = True,
) -> int:
    """The spatial layer a subscriber's slot should get (its temporal layers:
    :func:`choose_temporal`).

    Wanted: the smallest live layer whose height covers the tile (the top one without a tile
    report). Bandwidth (``budget_bps``: the subscriber's downlink estimate shared by its video
    slots): a current layer whose bitrate exceeds the budget (the estimator saw overuse: it
    stays above what arrives otherwise) drops to the highest one that fits its share;
    going up is one layer at a time, only while the estimate shows room above the current layer
    (:data:`UP_MARGIN`) and ``may_step_up``. ``ramping``: the slot just stepped up and the
    estimate is still climbing to the new rate (a delay-based estimate grows ~8 %/s), so the
    current layer is not judged by it. Heavy loss (:data:`LOSS_STEP_DOWN`): the budget is cut
    by half the loss and no step up; without an estimate, one layer lower. A step up the
    estimate does not cover outright (only its margin shows room) needs ``probed``: a probe with
    padding (prober.py) passed for it. Only live layers are
    chosen (a publisher that stops sending one must not freeze anyone); with none live, the top.

    ``temporal``: the slot forwards the current layer's temporal layers up to this TID only
    (None: all). Temporal layers go first (issue 18): a current layer whose base temporal layer
    fits is kept (its upper temporal layers are dropped instead), and a slot steps up to the
    next spatial layer only once it takes all of the current one's temporal layers.
    """
    live = [i for i, info in enumerate(layers) if info.live]
    if not live:
        return len(layers) - 1
    want = live[-1]
    if tile_height is not None:
        for i in live:
            height = layers[i].height or NOMINAL_HEIGHT[min(i, len(NOMINAL_HEIGHT) - 1)]
            if height >= tile_height * 0.9:
                want = i
                break
    choice = want
    lossy = loss is not None and loss >= LOSS_STEP_DOWN
    if budget_bps is not None:
        budget_bps = loss_budget(budget_bps, loss)
        may_step_up = may_step_up and not lossy
        room = budget_bps * BANDWIDTH_SHARE
        at = current if current in live else None
        if at is None:
            # nothing forwarded yet: the highest wanted layer that fits
            fitting = [i for i in live if i <= want and layers[i].bitrate <= room]
            choice = fitting[-1] if fitting else live[0]
        elif layers[at].rate(temporal) > budget_bps and not ramping:
            # the estimate fell below what the slot receives: the estimator saw overuse
            lowest = layers[at].lowest_temporal()
            if at <= want and lowest is not None and layers[at].temporal[lowest] <= room:
                choice = at  # fewer temporal layers of it fit (choose_temporal)
            else:
                fitting = [i for i in live if i < at and i <= want and layers[i].bitrate <= room]
                choice = fitting[-1] if fitting else live[0]
        elif want > at and temporal is not None and temporal < len(layers[at].temporal) - 1:
            choice = at  # its upper temporal layers first (choose_temporal)
        elif want > at:
            up = live[live.index(at) + 1]
            step = (
                may_step_up
                and not ramping
                and (
                    layers[up].bitrate <= room
                    or (
                        probed
                        and budget_bps >= UP_MARGIN * layers[at].bitrate
                        and layers[up].bitrate <= UP_REACH * budget_bps
                    )
                )
            )
            choice = up if step else at
    elif lossy and choice != live[0]:
        choice = live[live.index(choice) - 1]
    return choice


def loss_budget(budget_bps: float, loss: float | None) -> float:
    """The budget with heavy loss taken off (see :data:`LOSS_STEP_DOWN`)."""
    if loss is None or loss < LOSS_STEP_DOWN:
        return budget_bps
    return budget_bps * (1 - min(loss, 1.0) / 2)


def choose_temporal(
    info: LayerInfo,
    *,
    budget_bps: float | None,
    current: int | None,
    may_step_up: bool = True,
    ramping: bool = False,
) -> int | None:
    """The highest temporal layer (TID) of the chosen spatial layer ``info`` a slot forwards,
    None for all of them; ``current`` is what it forwards of that layer now (None: all, or it
    is switching to this layer).

    Down: when what the slot receives exceeds the estimate (the estimator saw overuse), the
    most temporal layers whose bitrate fits the slot's share, but not below
    :data:`MIN_TEMPORAL_FPS` (:meth:`LayerInfo.lowest_temporal`). Up: one temporal layer at a time,
    under the same rule as a spatial step (:data:`UP_MARGIN`: the estimate shows room above
    what arrives, or the next one fits outright). A temporal layer costs a third to a half of
    its spatial layer's rate, so these steps are finer than spatial ones and need no keyframe.
    """
    rates = info.temporal
    lowest = info.lowest_temporal()
    if lowest is None or budget_bps is None:
        return None
    room = budget_bps * BANDWIDTH_SHARE
    top = len(rates) - 1
    sending = info.rate(current)
    if sending > budget_bps and not ramping:
        fitting = [t for t in range(lowest, top + 1) if rates[t] <= room]
        best = fitting[-1] if fitting else lowest
        return None if best >= top else best
    if current is None or current >= top:
        return None
    step = current + 1
    if may_step_up and not ramping and (rates[step] <= room or budget_bps >= UP_MARGIN * sending):
        return None if step >= top else step
    return current


def choose_layers(
    layers: Sequence[LayerInfo],
    *,
    tile_height: int | None,
    budget_bps: float | None,
    loss: float | None,
    current: int,
    may_step_up: bool = True,
    ramping: bool = False,
    temporal: int | None = None,
    probed: bool = True,
) -> tuple[int, int | None]:
    """(spatial layer, highest temporal layer or None for all) for a slot that forwards (or
    switches to) ``current`` with temporal layers up to ``temporal``: :func:`choose_layer`,
    then :func:`choose_temporal` of the chosen layer. A step up to the next spatial layer takes
    all of it: that step is the probe, judged by the ramp as without temporal layers."""
    spatial = choose_layer(
        layers,
        tile_height=tile_height,
        budget_bps=budget_bps,
        loss=loss,
        current=current,
        may_step_up=may_step_up,
        ramping=ramping,
        temporal=temporal,
        probed=probed,
    )
    if spatial > current:
        return spatial, None
    lossy = loss is not None and loss >= LOSS_STEP_DOWN
    return spatial, choose_temporal(
        layers[spatial],
        budget_bps=None if budget_bps is None else loss_budget(budget_bps, loss),
        current=temporal if spatial == current else None,
        may_step_up=may_step_up and not lossy,
        ramping=ramping,
    )


# -- pausing layers nobody takes (issue 18 item 4) -------------------------------------------

#: A layer no slot has taken (target or current) for this long is paused (seconds): long enough
#: that a subscriber's tile resize or a probe up does not pause and resume it back and forth.
PAUSE_AFTER_S = 3.0


class LayerPause:
    """Which layers of one simulcast publisher are to be sent (see
    :class:`~.events.SimulcastLayersChanged`): a layer a slot takes, or wants once it is back,
    is active at once; one nobody takes is paused after :data:`PAUSE_AFTER_S`. The lowest
    layer is never paused."""

    __slots__ = ("count", "active", "last_bitrate", "_unwanted_since")

    def __init__(self, count: int) -> None:
        self.count = count
        #: Each layer's last bitrate measured while it was sent (bit/s): a paused layer's
        #: cost, so that a subscriber whose line cannot carry it does not resume it.
        self.last_bitrate = [0.0] * count
        #: What the publisher was last told (it starts sending every layer).
        self.active = frozenset(range(count))
        self._unwanted_since: dict[int, float] = {}

    def update(self, wanted: set[int], now: float) -> tuple[frozenset[int], frozenset[int]] | None:
        """(the new active set, the layers resumed by it), or None when nothing changed."""
        wanted = {i for i in wanted if 0 <= i < self.count} | {0}
        active = set()
        for layer in range(self.count):
            if layer in wanted:
                self._unwanted_since.pop(layer, None)
                active.add(layer)
            elif layer in self.active:
                since = self._unwanted_since.setdefault(layer, now)
                if now - since < PAUSE_AFTER_S:
                    active.add(layer)
        if active == self.active:
            return None
        resumed = frozenset(active - self.active)
        self.active = frozenset(active)
        return self.active, resumed
