"""Configuration of an :class:`~server.sfu.Sfu` worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiortc import RTCIceServer

from rtc.udp_mux import UdpMux


@dataclass(frozen=True)
class SfuConfig:
    """Immutable settings of one SFU worker.

    ``host_addresses`` are the local addresses ICE gathers host candidates on.
    Empty means aioice's default (every interface except loopback); tests pass
    ``("127.0.0.1",)``. ``ice_servers`` are passed to every peer connection; an
    empty tuple means *no* STUN/TURN (aiortc would otherwise add Google's STUN
    server).
    """

    host_addresses: tuple[str, ...] = ()
    ice_servers: tuple[RTCIceServer, ...] = ()
    #: Minimum interval between two keyframe requests (PLI) sent to one publisher.
    pli_min_interval: float = 1.0
    #: How many audio streams a subscriber receives at most (the loudest ones).
    max_audio_streams: int = 3
    #: How often loudness, active speaker and audio selection are re-evaluated.
    speaker_interval: float = 0.25
    #: Loudness (0..127, 127 = 0 dBov) a speaker must exceed to become active.
    speaker_min_loudness: float = 40.0
    #: Smoothing factor of the loudness moving average (per evaluation).
    speaker_smoothing: float = 0.5
    #: Packets kept per published stream to answer subscribers' NACKs.
    nack_cache_size: int = 512
    #: NACKs toward publishers: each missing packet asked for at most this many times
    #: (paced by the RTT), and not after ``nack_max_age`` seconds.
    nack_max_retries: int = 3
    nack_max_age: float = 1.0
    #: Retransmissions to a subscriber: at most this many per packet, and at most
    #: ``retransmit_budget`` of its bandwidth estimate (0.15 = 15 % on top of the media).
    retransmit_max_per_packet: int = 2
    retransmit_budget: float = 0.15
    #: Link quality (linkquality.py): evaluated every ``link_interval`` seconds. Below
    #: ``video_min_kbps`` of estimate left next to its audio a subscriber gets audio only;
    #: below ``full_video_kbps`` it is "low_video" (it caps the publisher's rate).
    link_interval: float = 1.0
    #: A simulcast slot whose subscriber has sent no estimate yet takes the lowest layer for up
    #: to this long (seconds): its line is unknown, and a 300 kbit/s hall started on the layer
    #: its tile wants (h) lost 25-45 % for twenty seconds and went to sound only (the link lab's
    #: hall A). The lab's Chromium kiosk pages had an estimate 6-7 s after their slot's first
    #: choice; a subscriber that never sends one gets what its tile wants after this.
    first_estimate_wait: float = 10.0
    video_min_kbps: int = 90
    full_video_kbps: int = 400
    #: A subscriber's estimate at least this many times what we send it is capped by our
    #: rate (receiver-side estimators never exceed ~1.5x their incoming rate), not by its
    #: link: it makes neither "low_video" nor "audio_only".
    app_limited_ratio: float = 1.25
    #: Downlink loss (%) at which video is dropped even if the estimate looks fine.
    audio_only_loss_pct: float = 30.0
    #: A low estimate drops video only with at least this much downlink loss (%), more than
    #: a poor line's random loss: a link that cannot carry the video overflows its queue and
    #: loses far more. A delay-based estimate alone also collapses when either end is short of
    #: CPU (aiortc reported 18 kbit/s on loopback with no loss; 55 kbit/s on a 300 kbit/s lab
    #: line with 5 % loss), and then it only lowers the rate.
    starved_min_loss_pct: float = 12.0
    #: Loss (%, up or down) shown as 2 bars / 1 bar.
    degraded_loss_pct: float = 5.0
    poor_loss_pct: float = 20.0
    #: Seconds a worse/better state must last before switching (hysteresis).
    downgrade_after: float = 2.0
    upgrade_after: float = 4.0
    #: An audio-only subscriber is probed with video after ``probe_interval`` seconds
    #: (doubling after each failed probe, up to ``probe_max_interval``); a probe that
    #: stays good for ``probe_duration`` seconds keeps the video.
    probe_interval: float = 8.0
    probe_max_interval: float = 60.0
    probe_duration: float = 6.0
    #: Mean interval of RTCP reports (randomised by +-50 % as RFC 3550 asks).
    rtcp_interval: float = 1.0
    #: Mean interval of the sender reports of a subscriber's audio slot (libwebrtc's
    #: RTCPSender reports audio every 5 s, video every second: an audio SR serves lip sync
    #: and the RTT, which the video slots measure each second anyway). With 64 subscribers a
    #: report per slot per second was a tenth of the SFU's CPU.
    audio_rtcp_interval: float = 5.0
    #: Transport-wide congestion control with publishers that offer it (Chromium, Firefox):
    #: the SFU sends feedback and the browser sets its rate by its own estimate
    #: (rtc/transport_cc.py); off, the SFU's REMB estimate of the uplink does.
    transport_cc: bool = True
    #: ICE consent freshness (RFC 7675): seconds between checks, and how long no
    #: check may be answered before the peer counts as gone. aioice's own 5 s /
    #: 6 single-try misses (~30 s) ends calls during a congestion spike; a 30 s
    #: cut or 30 s at 50 kbit/s must survive, a dead peer is still noticed.
    consent_interval: float = 5.0
    consent_timeout: float = 60.0
    #: Opus ``maxaveragebitrate`` asked of publishers in the SDP answer (with in-band
    #: FEC and DTX, see opus.py); a participant admitted with ``audio_max_bitrate``
    #: (a weak hall, e.g. 24000) gets that instead.
    opus_max_average_bitrate: int = 32000
    #: One UDP socket per host address for every peer connection (rtc/udp_mux.py): the
    #: copies of a forwarded packet leave in one sendmmsg, and a firewall needs one rule.
    #: None: a socket per peer connection (aioice's way); 0: a shared socket on an ephemeral
    #: port; else that port. TURN relay candidates are unaffected.
    udp_port: int | None = None
    #: The shared sockets themselves (bound on first use), when ``udp_port`` is set.
    udp_mux: UdpMux | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.udp_port is not None:
            # frozen: the one live object of the config, made with it, shared by its rooms
            object.__setattr__(self, "udp_mux", UdpMux(self.udp_port))
        if self.pli_min_interval < 0:
            raise ValueError("pli_min_interval must be >= 0")
        if self.max_audio_streams < 0:
            raise ValueError("max_audio_streams must be >= 0")
        if self.speaker_interval <= 0 or self.rtcp_interval <= 0 or self.audio_rtcp_interval <= 0:
            raise ValueError("intervals must be > 0")
        if self.consent_interval <= 0 or self.consent_timeout < self.consent_interval:
            raise ValueError("consent_interval must be > 0 and consent_timeout >= consent_interval")
        if self.nack_max_retries < 0 or self.retransmit_max_per_packet < 0:
            raise ValueError("retry limits must be >= 0")
        if not 0 <= self.retransmit_budget <= 1:
            raise ValueError("retransmit_budget must be in [0, 1]")
        if min(self.link_interval, self.downgrade_after, self.probe_interval, self.probe_duration) <= 0:
            raise ValueError("link quality intervals must be > 0")
        if self.first_estimate_wait < 0:
            raise ValueError("first_estimate_wait must be >= 0")
        if self.probe_max_interval < self.probe_interval:
            raise ValueError("probe_max_interval must be >= probe_interval")
        if self.app_limited_ratio <= 1:
            raise ValueError("app_limited_ratio must be > 1")
        if not 0 < self.video_min_kbps <= self.full_video_kbps:
            raise ValueError("need 0 < video_min_kbps <= full_video_kbps")
        if not 6000 <= self.opus_max_average_bitrate <= 510000:
            raise ValueError("opus_max_average_bitrate must be in [6000, 510000]")
        if self.nack_cache_size < 16 or self.nack_cache_size > 32768:
            raise ValueError("nack_cache_size must be in [16, 32768]")
