"""Opus parameters the SFU asks publishers for, written into its SDP answer.

aiortc answers without any Opus ``a=fmtp`` line, so browsers send neither in-band FEC
nor DTX and encode at their default ~32-40 kbit/s (up to 510). In an answer, ``fmtp``
says what the answerer wants to *receive*; browsers configure their Opus encoder from it:

- ``useinbandfec=1``: each packet carries a low-rate copy of the previous one (LBRR),
  so a single lost packet is rebuilt by the receiver instead of becoming a gap;
- ``usedtx=1``: silence is sent as one small packet every 400 ms instead of 50 a second,
  leaving a thin link to whoever speaks;
- ``maxaveragebitrate``: the encoder's cap, modest for everyone and lower for weak halls.

The SFU forwards the audio untouched, so subscribers get the FEC the publisher sent.
"""

from __future__ import annotations

import re

MIN_BITRATE = 6000
MAX_BITRATE = 510000

_RTPMAP = re.compile(r"^a=rtpmap:(\d+) opus/48000", re.IGNORECASE)


def opus_fmtp(max_average_bitrate: int) -> str:
    """The fmtp parameters asked of every Opus publisher."""
    if not MIN_BITRATE <= max_average_bitrate <= MAX_BITRATE:
        raise ValueError(f"Opus bitrate must be in [{MIN_BITRATE}, {MAX_BITRATE}] bit/s")
    return f"minptime=10;useinbandfec=1;usedtx=1;maxaveragebitrate={max_average_bitrate}"


def with_opus_fmtp(sdp: str, max_average_bitrate: int) -> str:
    """``sdp`` with each audio section's Opus ``a=fmtp`` replaced by :func:`opus_fmtp`."""
    params = opus_fmtp(max_average_bitrate)
    eol = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(eol)
    out: list[str] = []
    audio = False
    opus_pts: set[str] = set()
    for line in lines:
        if line.startswith("m="):
            audio = line.startswith("m=audio")
            opus_pts = set()
        if audio and any(line.startswith(f"a=fmtp:{pt} ") for pt in opus_pts):
            continue  # ours replaces whatever was there
        out.append(line)
        match = _RTPMAP.match(line) if audio else None
        if match:
            opus_pts.add(match.group(1))
            out.append(f"a=fmtp:{match.group(1)} {params}")
    return eol.join(out)
