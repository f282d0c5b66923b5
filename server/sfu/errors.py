"""Exceptions raised by the SFU.

Everything the SFU raises on bad input or a bad call sequence derives from
:class:`SfuError`, so the signaling layer can catch one type and turn it into
an error message for the client instead of a traceback.
"""

from __future__ import annotations


class SfuError(Exception):
    """Base class of all SFU errors."""


class InvalidSdp(SfuError, ValueError):
    """The offer could not be parsed or is not acceptable (no media, no supported codec, ...)."""


class InvalidRequest(SfuError, ValueError):
    """A request is malformed (bad ICE candidate, bad identifiers, ...)."""


class InvalidState(SfuError):
    """The call is not allowed in the current state (e.g. a second offer)."""


class RoomNotFound(SfuError, LookupError):
    """No open room has this id in this SFU worker."""


class NotInRoom(SfuError, LookupError):
    """The participant is not (or no longer) in the room."""


class AlreadyJoined(SfuError):
    """A participant with this id is already in the room."""
