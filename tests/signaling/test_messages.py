"""Incoming socket payloads: pydantic models, and the one adapter from their ValidationError to the
codes and messages the pages act on (``invalid_payload`` and the offer's and still's own codes)."""

from __future__ import annotations

from typing import Any

import pytest

from server.signaling.messages import (
    MAX_SDP_BYTES,
    MAX_STILL_BYTES,
    ChairRequest,
    IceRequest,
    JoinRequest,
    MuteRequest,
    OfferRequest,
    Payload,
    SignalingError,
    StillRequest,
    VisibleRequest,
)

OFFER = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
JPEG = b"\xff\xd8\xff\xe0" + bytes(16)


@pytest.mark.parametrize(
    ("model", "data", "code", "message"),
    [
        (JoinRequest, None, "invalid_payload", "'join' needs a JSON object"),
        (JoinRequest, [1], "invalid_payload", "'join' needs a JSON object"),
        (
            JoinRequest,
            {"room_id": 1, "x": 1, "a": 2},
            "invalid_payload",
            "'join' has unknown fields ['a', 'x']",
        ),
        (JoinRequest, {"room_id": True}, "invalid_payload", "'join' needs room_id, a positive integer"),
        (JoinRequest, {"room_id": "1"}, "invalid_payload", "'join' needs room_id, a positive integer"),
        (JoinRequest, {"room_id": 2**31}, "invalid_payload", "'join' needs room_id, a positive integer"),
        (
            JoinRequest,
            {"room_id": 1, "resume": ""},
            "invalid_payload",
            "'join' resume must be the token of an earlier join",
        ),
        (OfferRequest, {"sdp": OFFER, "type": "answer"}, "invalid_payload", "'offer' type must be 'offer'"),
        (OfferRequest, {"sdp": 5}, "invalid_payload", "'offer' needs sdp, a string"),
        (
            OfferRequest,
            {"sdp": OFFER + "x" * MAX_SDP_BYTES},
            "sdp_too_large",
            f"the SDP is larger than {MAX_SDP_BYTES} bytes",
        ),
        (OfferRequest, {"sdp": "hello"}, "invalid_sdp", "the SDP must start with 'v=0'"),
        (OfferRequest, {"sdp": "v=0\r\n"}, "no_media", "the offer has no media sections"),
        (
            OfferRequest,
            {"sdp": "v=0\r\n" + "m=video\r\n" * 25},
            "too_many_slots",
            "the offer has more than 24 media sections",
        ),
        (
            IceRequest,
            {"candidate": "candidate:1"},
            "invalid_payload",
            "a candidate needs sdpMid or sdpMLineIndex",
        ),
        (
            IceRequest,
            {"candidate": "c", "sdpMLineIndex": 64},
            "invalid_payload",
            "sdpMLineIndex must be an integer 0-63",
        ),
        (
            MuteRequest,
            {"audio": 1, "video": False},
            "invalid_payload",
            "'mute' needs audio and video, both true or false",
        ),
        (
            VisibleRequest,
            {"publisher_ids": "a1"},
            "invalid_payload",
            "publisher_ids must be a list of at most 32 participant ids",
        ),
        (
            VisibleRequest,
            {"publisher_ids": ["a1"] * 33},
            "invalid_payload",
            "publisher_ids must be a list of at most 32 participant ids",
        ),
        (
            ChairRequest,
            {"action": "fly"},
            "invalid_payload",
            "'chair' action must be one of ['admit', 'agenda', 'ask_unmute', 'end', 'give_floor',"
            " 'lower_hand', 'mute', 'remove', 'take_floor']",
        ),
        (ChairRequest, {"action": "admit"}, "invalid_payload", "'chair' admit needs participant_id"),
        (
            ChairRequest,
            {"action": "end", "participant_id": "k1"},
            "invalid_payload",
            "'chair' end takes no participant_id",
        ),
        (
            ChairRequest,
            {"action": "agenda", "item_id": 0},
            "invalid_payload",
            "'chair' agenda needs item_id, a positive integer or null",
        ),
        (ChairRequest, {"action": "end", "item_id": 1}, "invalid_payload", "'chair' end takes no item_id"),
        (
            StillRequest,
            {"jpeg": "not bytes"},
            "invalid_payload",
            "'still' needs jpeg, the bytes of a JPEG picture",
        ),
        (
            StillRequest,
            {"jpeg": b"GIF89a"},
            "invalid_payload",
            "'still' needs jpeg, the bytes of a JPEG picture",
        ),
        (
            StillRequest,
            {"jpeg": JPEG + bytes(MAX_STILL_BYTES)},
            "still_too_large",
            f"the picture is larger than {MAX_STILL_BYTES} bytes",
        ),
    ],
)
def test_a_refusal_has_a_stable_code_and_says_what_was_expected(
    model: type[Payload], data: Any, code: str, message: str
) -> None:
    with pytest.raises(SignalingError) as refused:
        model.from_dict(data)
    assert (refused.value.code, refused.value.message) == (code, message)


def test_good_payloads_parse() -> None:
    assert JoinRequest.from_dict({"room_id": 7}) == JoinRequest(room_id=7)
    assert OfferRequest.from_dict({"sdp": OFFER, "type": "offer"}).sdp == OFFER
    ice = IceRequest.from_dict({"candidate": "", "sdpMid": "0", "usernameFragment": "u"})
    assert (ice.candidate, ice.sdp_mid, ice.sdp_mline_index) == (None, "0", None)  # "" = the end
    assert VisibleRequest.from_dict({"publisher_ids": ["a1", "k2"]}).publisher_ids == ("a1", "k2")
    assert VisibleRequest.from_dict({"publisher_ids": None}).publisher_ids is None
    chair = ChairRequest.from_dict({"action": "agenda", "item_id": None})
    assert (chair.action, chair.item_id, chair.participant_id) == ("agenda", None, None)
    assert StillRequest.from_dict({"jpeg": JPEG}).jpeg == JPEG
