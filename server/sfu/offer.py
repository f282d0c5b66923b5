"""Validation of a client's SDP offer before it reaches aiortc."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from . import aiortc_internals as ai
from .errors import InvalidSdp

MAX_SDP_BYTES = 64 * 1024
SUPPORTED_CODEC = MappingProxyType({"audio": "opus", "video": "vp8"})
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
REVERSE = MappingProxyType(
    {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
)


@dataclass(frozen=True)
class OfferedMedia:
    """One audio/video m-line of an offer, from the client's point of view."""

    index: int
    kind: Literal["audio", "video"]
    mid: str
    direction: str

    @property
    def client_sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def client_receives(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")

    @property
    def server_direction(self) -> str:
        return REVERSE[self.direction]


def parse_offer(sdp: object) -> list[OfferedMedia]:
    """Check an offer and return its media lines, or raise :class:`InvalidSdp`.

    Accepted: every m-line is audio or video, has a mid, ICE credentials, a
    DTLS fingerprint and rtcp-mux, offers Opus (audio) or VP8 (video), and is
    in the BUNDLE group; at most one audio and one video m-line send (one
    published track per kind); at least one m-line.
    """
    if not isinstance(sdp, str) or not sdp.strip():
        raise InvalidSdp("empty SDP")
    if len(sdp.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise InvalidSdp("SDP too large")
    if not sdp.lstrip().startswith("v=0"):
        raise InvalidSdp("malformed SDP: must start with v=0")
    try:
        desc = ai.SessionDescription.parse(sdp)
    except Exception as exc:  # the parser raises ValueError, IndexError, KeyError, ...
        raise InvalidSdp(f"malformed SDP: {exc}") from exc

    if not desc.media:
        raise InvalidSdp("SDP has no media section")
    result: list[OfferedMedia] = []
    sending: dict[str, int] = {"audio": 0, "video": 0}
    for i, m in enumerate(desc.media):
        if m.kind not in ("audio", "video"):
            raise InvalidSdp(f"media section {i}: {m.kind!r} is not supported (audio/video only)")
        if m.port == 0:
            raise InvalidSdp(f"media section {i}: rejected (port 0) sections are not supported")
        mid = m.rtp.muxId
        if not mid:
            raise InvalidSdp(f"media section {i}: missing a=mid")
        if m.ice is None or not m.ice.usernameFragment or not m.ice.password:
            raise InvalidSdp(f"media section {i}: missing ICE credentials")
        if m.dtls is None or not m.dtls.fingerprints:
            raise InvalidSdp(f"media section {i}: missing DTLS fingerprint")
        if not m.rtcp_mux:
            raise InvalidSdp(f"media section {i}: rtcp-mux is required")
        wanted = SUPPORTED_CODEC[m.kind]
        if not any(c.name.lower() == wanted for c in m.rtp.codecs):
            raise InvalidSdp(f"media section {i}: no {wanted} codec offered")
        direction = m.direction or "sendrecv"
        if direction not in DIRECTIONS:
            raise InvalidSdp(f"media section {i}: bad direction {direction!r}")
        media = OfferedMedia(index=i, kind=m.kind, mid=mid, direction=direction)  # type: ignore[arg-type]
        if media.client_sends:
            sending[m.kind] += 1
        result.append(media)

    for kind, n in sending.items():
        if n > 1:
            raise InvalidSdp(f"at most one {kind} track may be published per participant (got {n})")
    mids = [m.mid for m in result]
    if len(set(mids)) != len(mids):
        raise InvalidSdp("duplicate a=mid values")
    bundle = next((g for g in desc.group if g.semantic == "BUNDLE"), None)
    if bundle is None or set(map(str, bundle.items)) != set(mids):
        raise InvalidSdp("all media sections must be in one a=group:BUNDLE")
    return result
