"""SDP offers captured from the browsers (capture.py), and the text surgery the tests make on them."""

from __future__ import annotations

import re

from server.auth.roles import Role
from server.signaling.room_hub import SLOT_PLAN

#: (audio slots, video slots) each captured page offers: the join ack's slot plan for its role.
PAGE_SLOTS = {
    page: (SLOT_PLAN[role]["audio"], SLOT_PLAN[role]["video"])
    for page, role in (("kiosk", Role.KIOSK), ("official", Role.OFFICIAL))
}
_SECTION = re.compile(r"\r?\nm=")


def sections(sdp: str) -> list[str]:
    """The m-sections' text (without the session part), each ending in CRLF."""
    return ["m=" + s if s.endswith("\r\n") else "m=" + s + "\r\n" for s in _SECTION.split(sdp)[1:]]


def rebuild(sdp: str, parts: list[str]) -> str:
    """``sdp``'s session part followed by ``parts`` (m-sections as :func:`sections` gives them)."""
    return _SECTION.split(sdp)[0] + "\r\n" + "".join(parts)


def mid_of(section: str) -> str:
    match = re.search(r"^a=mid:(\S+)", section, re.MULTILINE)
    if match is None:
        raise ValueError(f"no a=mid in {section[:40]!r}")
    return match.group(1)


def disable_section(sdp: str, index: int) -> tuple[str, str]:
    """``sdp`` with m-section ``index`` disabled as an offerer does it (RFC 8843 §7.5.3: port 0,
    no ``a=bundle-only``, out of the BUNDLE group); returns (new SDP, that section's mid)."""
    parts = sections(sdp)
    mid = mid_of(parts[index])
    parts[index] = re.sub(r"^(m=\w+) \d+ ", r"\1 0 ", parts[index]).replace("a=bundle-only\r\n", "")
    text = rebuild(sdp, parts)
    group = re.search(r"^a=group:BUNDLE ([^\r\n]*)", text, re.MULTILINE)
    if group is not None:
        kept = " ".join(m for m in group.group(1).strip().split() if m != mid)
        text = text[: group.start(1)] + kept + text[group.end(1) :]
    return text, mid
