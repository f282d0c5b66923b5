"""Validation of a client's SDP offer before it reaches aiortc (RFC 8829 JSEP, RFC 8843 BUNDLE).

Browsers differ in how they write the same offer, and aiortc does not know all of it:

- **bundle-only sections.** With ``bundlePolicy: 'max-bundle'`` Firefox (as JSEP says) offers
  every m-section after the first with port 0 and ``a=bundle-only``; Chromium puts port 9
  everywhere. Port 0 with ``a=bundle-only`` inside the BUNDLE group is a live section.
- **rejected sections.** Port 0 without ``a=bundle-only`` is a section the offerer disabled
  (a stopped transceiver). The SFU answers it rejected (port 0, RFC 3264 §6, RFC 8843 §7.3.3)
  instead of refusing the whole offer; so is a section the SFU cannot take (a data channel, a
  video section without VP8). aiortc ignores the port and cannot answer port 0, so those
  sections are taken out of the SDP it sees and put back, rejected, into its answer.
- **transport attributes.** RFC 8843 §7.2/RFC 8859 let bundled sections leave out the ICE
  and DTLS attributes they share with the offerer-tagged section (the first mid of the group);
  aiortc wants them everywhere, so the tagged section's are copied in.
- Payload type numbers (Firefox VP8 120 / Opus 109, Chromium 96 / 111), extmap ids, RTX,
  ``a=msid`` with or without a stream id and absent ``a=ssrc`` lines need nothing here: the
  answer only narrows to Opus/VP8 without RTX, and the relay rewrites payload types, SSRCs
  and header extensions per subscriber. ``a=setup`` may be ``actpass``, ``active`` or
  ``passive``; aiortc answers with the complementary role.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from rtc import aiortc_internals as ai
from rtc.transport_cc import TRANSPORT_CC_URI

from .errors import InvalidSdp
from .simulcast import SimulcastOffer, extmap_id, read_simulcast, with_simulcast_answer

MAX_SDP_BYTES = 64 * 1024
SUPPORTED_CODEC = MappingProxyType({"audio": "opus", "video": "vp8"})
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
REVERSE = MappingProxyType(
    {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
)
#: Attributes a bundled section shares with the offerer-tagged one (RFC 8859 TRANSPORT and
#: IDENTICAL categories) and may leave out.
_SHARED_ATTRIBUTES = ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:", "a=rtcp-mux")


@dataclass(frozen=True)
class OfferedMedia:
    """One live audio/video m-line of an offer, from the client's point of view."""

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


@dataclass(frozen=True)
class RejectedMedia:
    """An m-line the answer rejects (port 0), and why."""

    index: int
    kind: str
    mid: str | None
    proto: str
    fmt: str
    reason: str

    def answer_section(self) -> list[str]:
        """The answer's m-section for it: port 0, the offer's protocol and first format."""
        lines = [f"m={self.kind} 0 {self.proto} {self.fmt}", "c=IN IP4 0.0.0.0"]
        if self.mid is not None:
            lines.append(f"a=mid:{self.mid}")
        lines.append("a=inactive")
        return lines


@dataclass(frozen=True)
class Offer:
    """A checked offer: its live sections, its rejected ones, and the SDP aiortc is given."""

    media: tuple[OfferedMedia, ...]
    rejected: tuple[RejectedMedia, ...]
    #: The offer without the rejected sections, bundled sections completed (see module doc).
    engine_sdp: str
    #: The published video's simulcast layers, when offered and accepted (see simulcast.py).
    simulcast: SimulcastOffer | None = None
    #: Why offered simulcast was refused (answered as one layer); None if accepted or not offered.
    simulcast_refused: str | None = None
    #: The transport-wide sequence number extension's id, when every section the client sends
    #: offers it with the same id (rtc/transport_cc.py); the mids of those sections.
    transport_cc_id: int | None = None
    transport_cc_mids: tuple[str, ...] = ()

    def complete_answer(self, engine_answer: str) -> str:
        """aiortc's answer to :attr:`engine_sdp` with the rejected sections put back in place,
        so that the answer has the offer's m-lines in the offer's order (RFC 3264 §6), and the
        simulcast lines aiortc does not write."""
        if self.simulcast is not None:
            engine_answer = with_simulcast_answer(engine_answer, self.simulcast)
        if self.transport_cc_id is not None:
            engine_answer = with_transport_cc_answer(
                engine_answer, self.transport_cc_mids, self.transport_cc_id
            )
        if not self.rejected:
            return engine_answer
        session, sections = _split(engine_answer)
        if len(sections) != len(self.media):
            raise InvalidSdp("the answer does not match the offer's live media sections")
        for rejected in self.rejected:  # ascending index: each lands at its offer position
            sections.insert(rejected.index, rejected.answer_section())
        return "\r\n".join(session + [line for s in sections for line in s]) + "\r\n"


def _split(sdp: str) -> tuple[list[str], list[list[str]]]:
    """Session-level lines and the lines of each m-section (line ends dropped)."""
    lines = [line.rstrip("\r") for line in sdp.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    session: list[str] = []
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    return session, sections


def parse_offer(sdp: object) -> list[OfferedMedia]:
    """The live media lines of an acceptable offer (see :func:`read_offer`)."""
    return list(read_offer(sdp).media)


def read_offer(sdp: object) -> Offer:
    """Check an offer, or raise :class:`InvalidSdp`.

    A live section is audio or video with a non-zero port, or port 0 with ``a=bundle-only``
    inside the BUNDLE group; it has a mid, ICE credentials, a DTLS fingerprint and rtcp-mux
    (its own or the offerer-tagged section's), offers Opus (audio) or VP8 (video), and is in the
    BUNDLE group. Every other section is answered rejected, except the offerer-tagged one (the
    whole offer depends on its transport). At most one audio and one video live section send
    (one published track per kind); at least one section is live.
    """
    if not isinstance(sdp, str) or not sdp.strip():
        raise InvalidSdp("empty SDP")
    if len(sdp.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise InvalidSdp("SDP too large")
    if not sdp.lstrip().startswith("v=0"):
        raise InvalidSdp("malformed SDP: must start with v=0")
    session, sections = _split(sdp.lstrip())
    try:
        desc = ai.SessionDescription.parse(sdp)
    except Exception as exc:  # the parser raises ValueError, IndexError, KeyError, ...
        raise InvalidSdp(f"malformed SDP: {exc}") from exc
    if not desc.media:
        raise InvalidSdp("SDP has no media section")
    if len(desc.media) != len(sections):
        raise InvalidSdp("malformed SDP: media sections could not be told apart")

    bundle = next((g for g in desc.group if g.semantic == "BUNDLE"), None)
    bundled = [str(item) for item in bundle.items] if bundle is not None else []
    mids = [m.rtp.muxId for m in desc.media if m.rtp.muxId]
    if len(set(mids)) != len(mids):
        raise InvalidSdp("duplicate a=mid values")
    if not bundled:
        raise InvalidSdp("all media sections must be in one a=group:BUNDLE")
    tag_index = next((i for i, m in enumerate(desc.media) if m.rtp.muxId == bundled[0]), None)
    if tag_index is None:
        raise InvalidSdp(f"a=group:BUNDLE names mid {bundled[0]!r}, which no media section has")
    tag = sections[tag_index]
    if desc.media[tag_index].port == 0:
        # RFC 8843 §7.2.1: the offerer-tagged section carries the transport; never port 0.
        raise InvalidSdp(f"media section {tag_index}: the first mid of the BUNDLE group has port 0")

    live: list[OfferedMedia] = []
    rejected: list[RejectedMedia] = []
    engine_sections: list[list[str]] = []
    sending: dict[str, int] = {"audio": 0, "video": 0}
    simulcast: SimulcastOffer | None = None
    simulcast_refused: str | None = None
    transport_cc: dict[str, int | None] = {}
    for i, (m, text) in enumerate(zip(desc.media, sections, strict=True)):
        mid = m.rtp.muxId or None
        in_bundle = mid is not None and mid in bundled
        bundle_only = "a=bundle-only" in text
        reason = None
        if m.port == 0 and not (bundle_only and in_bundle):
            reason = "disabled by the offerer (port 0)"
        elif m.kind not in SUPPORTED_CODEC:
            reason = f"{m.kind!r} is not supported (audio/video only)"
        elif not any(c.name.lower() == SUPPORTED_CODEC[m.kind] for c in m.rtp.codecs):
            reason = f"no {SUPPORTED_CODEC[m.kind]} codec offered"
        if reason is not None:
            if i == tag_index:
                raise InvalidSdp(f"media section {i}: {reason}, and it is the first mid of the BUNDLE group")
            fmt = m.fmt[0] if m.fmt else "0"
            rejected.append(RejectedMedia(i, m.kind, mid, m.profile, str(fmt), reason))
            continue
        if mid is None:
            raise InvalidSdp(f"media section {i}: missing a=mid")
        if not in_bundle:
            raise InvalidSdp("all media sections must be in one a=group:BUNDLE")
        if i != tag_index:
            # Shared attributes left out of a bundled section are the tagged section's.
            text = text + [
                line for line in tag if line.startswith(_SHARED_ATTRIBUTES) and not _has(text, line)
            ]
        engine_sections.append(text)
        _check_transport(i, text, session)
        direction = m.direction or "sendrecv"
        if direction not in DIRECTIONS:
            raise InvalidSdp(f"media section {i}: bad direction {direction!r}")
        media = OfferedMedia(index=i, kind=m.kind, mid=mid, direction=direction)  # type: ignore[arg-type]
        if media.client_sends:
            sending[m.kind] += 1
            if m.kind == "video":
                simulcast, simulcast_refused = read_simulcast(mid, text)
            transport_cc[mid] = extmap_id(text, TRANSPORT_CC_URI)
        live.append(media)

    for kind, n in sending.items():
        if n > 1:
            raise InvalidSdp(f"at most one {kind} track may be published per participant (got {n})")
    live_mids = [m.mid for m in live]
    engine_session = [
        "a=group:BUNDLE " + " ".join(mid for mid in bundled if mid in live_mids)
        if line.startswith("a=group:BUNDLE")
        else line
        for line in session
    ]
    engine_sdp = "\r\n".join(engine_session + [line for s in engine_sections for line in s]) + "\r\n"
    # one transport, one extension id: take it only when every sending section offers the same
    ids = set(transport_cc.values())
    cc_id = ids.pop() if len(ids) == 1 else None
    return Offer(
        media=tuple(live),
        rejected=tuple(rejected),
        engine_sdp=engine_sdp,
        simulcast=simulcast,
        simulcast_refused=simulcast_refused,
        transport_cc_id=cc_id,
        transport_cc_mids=tuple(transport_cc) if cc_id is not None else (),
    )


def with_transport_cc_answer(answer_sdp: str, mids: tuple[str, ...], ext_id: int) -> str:
    """``answer_sdp`` with transport-wide congestion control accepted in the sections of
    ``mids`` (the ones the client sends): the sequence number extension (aiortc's answer
    leaves it out) and ``a=rtcp-fb:<pt> transport-cc`` for each payload type, which tells the
    browser to send by its own estimate from the SFU's feedback (rtc/transport_cc.py)."""
    session, sections = _split(answer_sdp)
    for section in sections:
        mid = next((line[len("a=mid:") :] for line in section if line.startswith("a=mid:")), None)
        if mid not in mids:
            continue
        at = section.index(f"a=mid:{mid}") + 1
        types = [line.split()[0][len("a=rtpmap:") :] for line in section if line.startswith("a=rtpmap:")]
        section[at:at] = [f"a=extmap:{ext_id} {TRANSPORT_CC_URI}"] + [
            f"a=rtcp-fb:{pt} transport-cc" for pt in types
        ]
    return "\r\n".join(session + [line for s in sections for line in s]) + "\r\n"


def _has(section: list[str], attribute_line: str) -> bool:
    """Whether ``section`` has the attribute ``attribute_line`` sets: a flag (``a=rtcp-mux``)
    as it is, a valued one (``a=ice-ufrag:...``) with a non-empty value."""
    if ":" not in attribute_line:
        return attribute_line in section
    name = attribute_line.split(":", 1)[0] + ":"
    return any(line.startswith(name) and line[len(name) :].strip() for line in section)


def _check_transport(index: int, section: list[str], session: list[str]) -> None:
    """A live section (completed from the tagged one) must have what aiortc's transport needs;
    ICE credentials and the fingerprint may also be session-level (RFC 8839 §5.4, RFC 8122)."""
    both = section + session
    if not _has(both, "a=ice-ufrag:") or not _has(both, "a=ice-pwd:"):
        raise InvalidSdp(f"media section {index}: missing ICE credentials")
    if not _has(both, "a=fingerprint:"):
        raise InvalidSdp(f"media section {index}: missing DTLS fingerprint")
    if not _has(section, "a=rtcp-mux"):
        raise InvalidSdp(f"media section {index}: rtcp-mux is required")
