"""Sequence numbers and timestamps of a forwarded stream that switches sources (mediasoup's
``SeqManager``, LiveKit's ``RTPMunger``).

An SFU slot carries one publisher's track at a time, and its subscriber must see one ordinary
stream: when the slot switches publisher, or resumes after a pause, the next packet gets the
next sequence number and a timestamp advanced by the wall time since the last packet, so the
subscriber's jitter buffer neither waits for a gap nor sees time run backwards. Each switch
begins an *epoch* with new offsets; packets from before it (late arrivals from the previous
source position) are refused.

Within an epoch a packet that is not forwarded (a publisher's padding-only probe) is *skipped*:
the packets after it are numbered one lower, so the subscriber sees no gap and never asks for
it (LiveKit's munger does the same). Each skip starts a *segment* with its own offset; NACKs
map back through the segments (the recent ones: older packets are long past resending).
The other way round, packets of the SFU's own (padding to probe the subscriber's line) are
*inserted* between two source packets: they take the next numbers and the packets after them
are numbered higher, in a segment of their own.
"""

from rtc._seq_rewriter import MAX_SEGMENTS, SeqRewriter

# The implementation is C (rtc/_seq_rewriter.c; each call's contract in rtc/_seq_rewriter.pyi):
# forwarding numbers each packet for each subscriber, and a fan-out in C will need this state
# without calling back into Python. tests/rtc/seq_rewriter_model.py keeps the Python it replaced,
# the model the C one is tested against call for call (test_seq_rewriter_model.py).
# MAX_SEGMENTS: segments of an epoch kept for mapping NACKs back (one per skipped packet or
# inserted run): at a padding packet between every two frames of 30 fps video, about four seconds.

__all__ = ["MAX_SEGMENTS", "SeqRewriter"]
