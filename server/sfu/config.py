"""Configuration of an :class:`~server.sfu.Sfu` worker."""

from __future__ import annotations

from dataclasses import dataclass

from aiortc import RTCIceServer


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
    #: Mean interval of RTCP reports (randomised by +-50 % as RFC 3550 asks).
    rtcp_interval: float = 1.0
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

    def __post_init__(self) -> None:
        if self.pli_min_interval < 0:
            raise ValueError("pli_min_interval must be >= 0")
        if self.max_audio_streams < 0:
            raise ValueError("max_audio_streams must be >= 0")
        if self.speaker_interval <= 0 or self.rtcp_interval <= 0:
            raise ValueError("intervals must be > 0")
        if self.consent_interval <= 0 or self.consent_timeout < self.consent_interval:
            raise ValueError("consent_interval must be > 0 and consent_timeout >= consent_interval")
        if not 6000 <= self.opus_max_average_bitrate <= 510000:
            raise ValueError("opus_max_average_bitrate must be in [6000, 510000]")
        if self.nack_cache_size < 16 or self.nack_cache_size > 32768:
            raise ValueError("nack_cache_size must be in [16, 32768]")
