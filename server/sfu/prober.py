"""Probing a subscriber's line with padding before one of its slots steps up a simulcast layer
(Jitsi's ``BandwidthProbing``, LiveKit's probe before an upgrade, libwebrtc's padding).

Why: a subscriber's delay-based estimate (the REMB its browser sends) never rises above about
1.5x what arrives, so a slot on a low layer can never show by estimate alone that the next one
fits. Until now the step itself was the probe: the slot switched up and the room watched the
estimate. On a 300 kbit/s village line that step does not fit: the new layer's keyframe and
rate filled the modem's queue, the hall lost 20-45 % for seconds, its picture froze 2.6-8 s and
the link controller took it to sound only (the link lab's hall A). A probe costs far less: the
slot keeps forwarding its layer, and padding-only packets bring what the subscriber receives up
to the next layer's rate (with the headroom a step needs) for :data:`PROBE_S`. On a line with
room the estimator, no longer held to 1.5x what arrives, grows (libwebrtc: ~8 %/s); on a full
one it holds or falls (it saw the queue grow) and the subscriber reports losses. Only a probe
whose estimate grew (:data:`PROBE_GROWTH`) with few losses lets the step be taken; a failed one
holds the slot off trying again, longer each time (:meth:`~.simulcast.LayerSwitch.probe_failed`).
It is stopped at once when the estimate falls or the losses pass :data:`PROBE_LOSS`, so a full
line carries the extra padding for a fraction of a second, and the picture keeps its layer.

One probe at a time per subscriber (it tests the subscriber's one downlink). The padding goes
through the slot (:meth:`~.relay.OutStream.send_padding`): numbered in its sequence between two
frames, and through the subscriber's pacer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

logger = logging.getLogger(__name__)

#: How long a probe pads (seconds): the estimate of a line with room grows ~16 % in that time.
PROBE_S = 2.0
#: Padding is sent this often (seconds): a few packets at a time, between two frames.
PROBE_TICK_S = 0.04
#: The estimate must have grown by this factor during the probe for it to pass.
PROBE_GROWTH = 1.08
#: The estimate falling below this share of its highest during the probe: the line is full.
PROBE_FALL = 0.9
#: Losses the subscriber reports (NACKed sequence numbers) above this share of the packets sent
#: to the slot during the probe: the line is full; the probe stops and fails.
PROBE_LOSS = 0.05
#: Padding not sent at a tick (mid-frame, or the pacer busy) is carried over, up to this many
#: ticks' worth: a probe must not turn into a burst.
CARRY_TICKS = 3


class ProbedSlot(Protocol):
    """What a probe needs of the slot it pads (an :class:`~.relay.OutStream`)."""

    nacked: int
    packets: int

    def send_padding(self, size: int) -> int: ...

    def fresh_remb(self) -> int | None: ...


@dataclass
class Probe:
    """One probe: ``slot`` tested for stepping up to ``layer`` with ``padding_bps`` of padding."""

    slot: ProbedSlot
    layer: int
    padding_bps: float
    started_at: float
    start_estimate: float
    start_nacked: int
    start_packets: int
    peak_estimate: float = 0.0
    padding_bytes: int = 0
    ended_at: float | None = None
    #: True: the estimate grew with few losses; False: it did not (or fell, or losses);
    #: None: still running, or cancelled (the slot changed: no verdict).
    passed: bool | None = None
    why: str = ""
    carry: float = field(default=0.0, repr=False)


class Prober:
    """The probes of one subscriber."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._probe: Probe | None = None
        self._finished: Probe | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.started = 0
        self.passed = 0
        self.failed = 0

    @property
    def running(self) -> bool:
        return self._probe is not None

    def probing(self, slot: ProbedSlot) -> int | None:
        """The layer a running probe of ``slot`` is for (None: no probe of it runs)."""
        probe = self._probe
        return probe.layer if probe is not None and probe.slot is slot else None

    def start(self, slot: ProbedSlot, layer: int, padding_bps: float) -> bool:
        """Begin padding ``slot`` at ``padding_bps`` to see whether its subscriber's line
        carries ``layer``. False when a probe is already running or the slot has no estimate
        (there is nothing to see grow)."""
        estimate = slot.fresh_remb()
        if self._probe is not None or estimate is None or padding_bps <= 0:
            return False
        now = self._clock()
        self._probe = Probe(
            slot=slot,
            layer=layer,
            padding_bps=padding_bps,
            started_at=now,
            start_estimate=float(estimate),
            start_nacked=slot.nacked,
            start_packets=slot.packets,
            peak_estimate=float(estimate),
        )
        self._finished = None
        self.started += 1
        self._schedule()
        return True

    def cancel(self) -> None:
        """Stop the running probe with no verdict (its slot changed or went away)."""
        probe = self._probe
        if probe is not None:
            self._end(probe, None, "cancelled")

    def take_finished(self) -> Probe | None:
        """The probe that ended since the last call (passed or failed), once."""
        probe, self._finished = self._finished, None
        return probe

    def close(self) -> None:
        self._probe = self._finished = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(PROBE_TICK_S, self._tick)

    def _tick(self) -> None:
        self._timer = None
        probe = self._probe
        if probe is None:
            return
        now = self._clock()
        slot = probe.slot
        estimate = slot.fresh_remb()
        if estimate is not None:
            probe.peak_estimate = max(probe.peak_estimate, float(estimate))
        sent = slot.packets - probe.start_packets
        lost = slot.nacked - probe.start_nacked
        if estimate is not None and estimate < PROBE_FALL * probe.peak_estimate:
            self._end(probe, False, f"estimate fell to {estimate}")
            return
        if sent > 0 and lost > PROBE_LOSS * sent:
            self._end(probe, False, f"{lost} of {sent} packets lost")
            return
        if now - probe.started_at >= PROBE_S:
            grew = probe.peak_estimate >= PROBE_GROWTH * probe.start_estimate
            self._end(probe, grew, f"estimate {probe.start_estimate:.0f} -> {probe.peak_estimate:.0f}")
            return
        want = probe.padding_bps / 8 * PROBE_TICK_S
        size = want + probe.carry
        done = slot.send_padding(int(size))
        probe.padding_bytes += done
        probe.carry = min(size - done, want * CARRY_TICKS)
        self._schedule()

    def _end(self, probe: Probe, passed: bool | None, why: str) -> None:
        probe.ended_at = self._clock()
        probe.passed = passed
        probe.why = why
        self._probe = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if passed is None:
            return
        self._finished = probe
        if passed:
            self.passed += 1
        else:
            self.failed += 1
        logger.debug(
            "probe for layer %d %s: %s (%d bytes of padding in %.1f s)",
            probe.layer,
            "passed" if passed else "failed",
            why,
            probe.padding_bytes,
            probe.ended_at - probe.started_at,
        )
