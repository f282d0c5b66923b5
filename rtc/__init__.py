"""Maeul's real-time media library, shared by the SFU (``server/sfu``) and the kiosk (``kiosk/``).

It holds what both ends of a call need and nothing of the application: the aiortc/aioice
internals both rely on, pinned to one version and checked by one test
(:mod:`rtc.aiortc_internals`, :mod:`rtc.tuning`); RTP sequence maths and feedback bookkeeping
(:mod:`rtc.rtputil`); one payload parser per codec (:mod:`rtc.codecs`); and the small per-stream
helpers an SFU and a sender share (keyframe throttle, retransmission gate, sequence/timestamp
rewriter). It imports nothing from ``server`` or ``kiosk`` (tests/test_import_boundaries.py), so
the kiosk loads a library, not the server's internals.
"""
