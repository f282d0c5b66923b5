"""Payloads of the room events: each is a pydantic model validated from the raw socket.io data, and
one adapter (:func:`refusal`) turns pydantic's ValidationError into a :class:`SignalingError` with a
stable code and a message that says what was expected.

Errors reach the client as ``{"error": {"code", "message"}}`` (ack) and as an ``error`` event.
The models are strict (no ``"1"`` for 1, no ``1`` for ``true``) and refuse unknown fields.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

#: Largest SDP offer accepted (a 16-slot browser offer is about 20 KB).
MAX_SDP_BYTES = 64 * 1024
#: Largest engine.io message; bigger frames close that connection (websocket close 1009).
MAX_MESSAGE_BYTES = 96 * 1024
MAX_CANDIDATE_CHARS = 1024
MAX_MEDIA_SECTIONS = 24
MAX_VISIBLE = 32
MAX_ID_CHARS = 64
#: Largest still picture a page may send (a 320x180 JPEG is about 10-20 KB).
MAX_STILL_BYTES = 64 * 1024

#: The pydantic error type of a refusal that carries its own code (:func:`refuse`).
_CODED = "signaling"


class SignalingError(Exception):
    """A request the server refuses; the connection and the room carry on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def refuse(code: str, message: str) -> PydanticCustomError:
    """A validator's refusal with a code of its own (``sdp_too_large`` rather than ``invalid_payload``)."""
    return PydanticCustomError(_CODED, "{message}", {"code": code, "message": message})


def refusal(payload: type[Payload], exc: ValidationError, data: Any) -> SignalingError:
    """The one adapter from pydantic's errors to the codes and messages the pages rely on."""
    event = payload.EVENT
    errors = exc.errors()
    if coded := next((e for e in errors if e["type"] == _CODED), None):
        ctx = coded.get("ctx") or {}
        return SignalingError(str(ctx["code"]), str(ctx["message"]))
    if unknown := sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"):
        return SignalingError("invalid_payload", f"'{event}' has unknown fields {unknown}")
    first = errors[0]
    if not first["loc"]:  # not an object at all
        return SignalingError("invalid_payload", f"'{event}' needs a JSON object")
    return SignalingError("invalid_payload", payload.field_message(str(first["loc"][0]), data))


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    EVENT: ClassVar[str]
    #: What a page is told when a field is missing or wrong, by field name (as sent).
    FIELD_MESSAGES: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise refusal(cls, exc, data) from None

    @classmethod
    def field_message(cls, field: str, data: dict[str, Any]) -> str:
        """What to tell the page when ``field`` of ``data`` is missing or wrong."""
        return cls.FIELD_MESSAGES.get(field, f"'{cls.EVENT}' has an invalid {field}")


ParticipantId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
PositiveId = Annotated[int, Field(gt=0, lt=2**31)]


class JoinRequest(Payload):
    EVENT = "join"
    FIELD_MESSAGES = {
        "room_id": "'join' needs room_id, a positive integer",
        "resume": "'join' resume must be the token of an earlier join",
    }

    room_id: PositiveId
    # The resume token of this page's earlier join: after a lost socket, the page keeps its
    # media connection and asks to be bound to it again instead of starting over.
    resume: Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)] | None = None


class OfferRequest(Payload):
    EVENT = "offer"
    FIELD_MESSAGES = {
        "type": "'offer' type must be 'offer'",
        "sdp": "'offer' needs sdp, a string",
    }

    type: Literal["offer"] = "offer"  # checked first: an answer is a different mistake
    sdp: str

    @model_validator(mode="after")
    def _an_offer_we_can_answer(self) -> Self:
        sdp = self.sdp
        if len(sdp.encode("utf-8", "replace")) > MAX_SDP_BYTES:
            raise refuse("sdp_too_large", f"the SDP is larger than {MAX_SDP_BYTES} bytes")
        if not sdp.startswith("v=0"):
            raise refuse("invalid_sdp", "the SDP must start with 'v=0'")
        sections = sum(1 for line in sdp.splitlines() if line.startswith("m="))
        if sections == 0:
            raise refuse("no_media", "the offer has no media sections")
        if sections > MAX_MEDIA_SECTIONS:
            raise refuse("too_many_slots", f"the offer has more than {MAX_MEDIA_SECTIONS} media sections")
        return self


class IceRequest(Payload):
    EVENT = "ice"
    FIELD_MESSAGES = {
        "candidate": f"candidate must be a string of at most {MAX_CANDIDATE_CHARS}",
        "sdpMid": "sdpMid must be a short string",
        "sdpMLineIndex": "sdpMLineIndex must be an integer 0-63",
    }

    candidate: Annotated[str, Field(max_length=MAX_CANDIDATE_CHARS)] | None = None  # None/"": the end
    sdp_mid: Annotated[str, Field(max_length=32)] | None = Field(default=None, alias="sdpMid")
    sdp_mline_index: Annotated[int, Field(ge=0, lt=64)] | None = Field(default=None, alias="sdpMLineIndex")
    # Browsers send it with every candidate; the SFU does not need it.
    username_fragment: Any = Field(default=None, alias="usernameFragment")

    @field_validator("candidate")
    @classmethod
    def _empty_is_the_end(cls, candidate: str | None) -> str | None:
        return candidate or None

    @model_validator(mode="after")
    def _a_candidate_names_its_section(self) -> Self:
        if self.candidate and self.sdp_mid is None and self.sdp_mline_index is None:
            raise refuse("invalid_payload", "a candidate needs sdpMid or sdpMLineIndex")
        return self


class MuteRequest(Payload):
    EVENT = "mute"
    FIELD_MESSAGES = {
        "audio": "'mute' needs audio and video, both true or false",
        "video": "'mute' needs audio and video, both true or false",
    }

    audio: bool
    video: bool


class VisibleRequest(Payload):
    EVENT = "visible"
    FIELD_MESSAGES = {
        "publisher_ids": f"publisher_ids must be a list of at most {MAX_VISIBLE} participant ids",
    }

    # None = everyone, in join order. A JSON list (lax: to a tuple), of strict strings.
    publisher_ids: (
        Annotated[tuple[Annotated[ParticipantId, Strict()], ...], Field(max_length=MAX_VISIBLE, strict=False)]
        | None
    ) = None

    @field_validator("publisher_ids", mode="before")
    @classmethod
    def _a_json_list(cls, ids: Any) -> Any:
        if ids is not None and not isinstance(ids, list):
            raise ValueError("not a list")
        return ids


#: Largest tile size a page reports, in device pixels (either side).
MAX_TILE_PX = 10_000
TilePx = Annotated[int, Field(ge=0, le=MAX_TILE_PX)]


class TilesRequest(Payload):
    """The size of the tile the page shows each publisher in: the SFU forwards a simulcast
    publisher in the smallest layer that fills it (docs/sfu.md, "Simulcast")."""

    EVENT = "tiles"
    FIELD_MESSAGES = {
        "sizes": f"'tiles' needs sizes: at most {MAX_VISIBLE} participant ids, each to [width, height] "
        f"in pixels (0..{MAX_TILE_PX})",
    }

    sizes: Annotated[
        dict[ParticipantId, Annotated[list[TilePx], Field(min_length=2, max_length=2)]],
        Field(max_length=MAX_VISIBLE),
    ]


class HandRequest(Payload):
    EVENT = "hand"
    FIELD_MESSAGES = {"raised": "'hand' needs raised, true or false"}

    raised: bool


class ScreenRequest(Payload):
    EVENT = "screen"
    FIELD_MESSAGES = {"active": "'screen' needs active, true or false"}

    active: bool


#: What the chair can do; actions on a participant need ``participant_id``.
CHAIR_ACTIONS = {
    "admit": True,  # let a waiting kiosk in
    "remove": True,  # send a participant (or a waiting kiosk) away for this meeting
    "mute": True,  # turn a participant's microphone off
    "ask_unmute": True,  # ask a participant to turn the microphone on (they decide)
    "give_floor": True,  # the participant speaks now (hand down, asked to unmute)
    "lower_hand": True,
    "take_floor": False,  # nobody has the floor
    "agenda": False,  # make agenda item ``item_id`` current (null: none)
    "end": False,  # end the meeting for everybody
}
ChairAction = Literal[
    "admit", "remove", "mute", "ask_unmute", "give_floor", "lower_hand", "take_floor", "agenda", "end"
]


class ChairRequest(Payload):
    EVENT = "chair"
    FIELD_MESSAGES = {"action": f"'chair' action must be one of {sorted(CHAIR_ACTIONS)}"}

    action: ChairAction
    participant_id: ParticipantId | None = None
    item_id: PositiveId | None = None

    @classmethod
    def field_message(cls, field: str, data: dict[str, Any]) -> str:
        # The action is valid here (its own error comes first): say what that action takes.
        action = data.get("action")
        if field == "participant_id" and isinstance(action, str):
            verb = "needs" if CHAIR_ACTIONS.get(action) else "takes no"
            return f"'chair' {action} {verb} participant_id"
        if field == "item_id" and action == "agenda":
            return "'chair' agenda needs item_id, a positive integer or null"
        if field == "item_id":
            return f"'chair' {action} takes no item_id"
        return super().field_message(field, data)

    @model_validator(mode="after")
    def _what_the_action_needs(self) -> Self:
        action = self.action
        if CHAIR_ACTIONS[action]:
            if self.participant_id is None:
                raise refuse("invalid_payload", f"'chair' {action} needs participant_id")
        elif self.participant_id is not None:
            raise refuse("invalid_payload", f"'chair' {action} takes no participant_id")
        if action != "agenda" and self.item_id is not None:
            raise refuse("invalid_payload", f"'chair' {action} takes no item_id")
        return self


class StillRequest(Payload):
    """A still picture of the sender's camera (JPEG), for participants who receive no video."""

    EVENT = "still"
    FIELD_MESSAGES = {"jpeg": "'still' needs jpeg, the bytes of a JPEG picture"}

    jpeg: bytes

    @model_validator(mode="after")
    def _a_small_jpeg(self) -> Self:
        if not self.jpeg.startswith(b"\xff\xd8\xff"):
            raise refuse("invalid_payload", self.FIELD_MESSAGES["jpeg"])
        if len(self.jpeg) > MAX_STILL_BYTES:
            raise refuse("still_too_large", f"the picture is larger than {MAX_STILL_BYTES} bytes")
        return self
