"""The room page's ``tiles`` message (tile size per publisher, for the SFU's simulcast layer
choice): what is accepted, and the clear refusal of everything else."""

from __future__ import annotations

from typing import Any

import pytest

from server.signaling.messages import MAX_VISIBLE, SignalingError, TilesRequest


def test_tile_sizes_are_read() -> None:
    request = TilesRequest.from_dict({"sizes": {"a12": [320, 180], "k3": [1280, 720]}})
    assert request.sizes == {"a12": [320, 180], "k3": [1280, 720]}
    assert TilesRequest.from_dict({"sizes": {}}).sizes == {}


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {},
        {"sizes": []},
        {"sizes": {"a": [320]}},
        {"sizes": {"a": [320, 180, 1]}},
        {"sizes": {"a": [-1, 180]}},
        {"sizes": {"a": [320, 10_001]}},
        {"sizes": {"a": [320.5, 180]}},
        {"sizes": {"a": ["320", 180]}},
        {"sizes": {"a": [True, 180]}},
        {"sizes": {"": [320, 180]}},
        {"sizes": {"x" * 65: [320, 180]}},
        {"sizes": {str(i): [1, 1] for i in range(MAX_VISIBLE + 1)}},
        {"sizes": {"a": [1, 1]}, "extra": 1},
    ],
)
def test_bad_tile_sizes_are_refused_clearly(data: Any) -> None:
    with pytest.raises(SignalingError) as info:
        TilesRequest.from_dict(data)
    assert info.value.code == "invalid_payload"
    assert "tiles" in info.value.message
