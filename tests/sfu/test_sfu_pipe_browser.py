"""A Chromium simulcast publisher on SFU A, two subscribers on SFU B through a pipe
(server/sfu/pipe.py): every layer crosses, and each subscriber on B decodes the layer its tile
asks for, as it would were the publisher on B."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from server.sfu import Sfu
from server.sfu.simulcast_inbound import SimulcastInbound
from tests.sfu.browser_publisher import OFFICIAL_CAMERA_OFFER_JS, chromium_page, publish
from tests.sfu.sfu_testkit import Client, join, wait_until
from tests.sfu.test_sfu_pipe import PIPE, connect_ends, pipe_sfu_config

# "lab" as the other simulcast browser tests: it waits for a layer to be reached, which needs
# the machine's CPU (Chromium drops its top layer under load).
pytestmark = [pytest.mark.e2e, pytest.mark.network, pytest.mark.lab]


async def test_chromium_simulcast_on_a_each_subscriber_on_b_gets_its_tiles_layer(
    make_client: Callable[..., Client], page_url: str
) -> None:
    a, b = Sfu(pipe_sfu_config()), Sfu(pipe_sfu_config())
    try:
        a.open_room("r")
        b.open_room("r")
        await connect_ends(a, b)
        small = await join(b, make_client, "small", video_slots=1)
        large = await join(b, make_client, "large", video_slots=1)
        assert small.handle is not None and large.handle is not None
        small.handle.set_tile_sizes({"chair": [320, 180]})
        large.handle.set_tile_sizes({"chair": [1280, 720]})
        async with chromium_page(page_url) as page:
            await publish(page, a, "r", "chair", OFFICIAL_CAMERA_OFFER_JS)
            a.pipe_out(PIPE, "chair")
            await wait_until(lambda: "chair" in b._room("r").participants, 10, "chair announced on B")
            track = b._room("r").get("chair").inbound["video"]
            assert isinstance(track, SimulcastInbound) and track.simulcast.rids == ("q", "h", "f")

            def size(client: Client) -> tuple[int, int] | None:
                return client.log(client.slot_of("chair", "video")).size

            def layer_size(layer: int) -> tuple[int, int] | None:
                w, h = track.layer_widths[layer], track.layer_heights[layer]
                return (w, h) if w is not None and h is not None else None

            def top_layer() -> int:
                """The highest layer arriving on B now (Chromium drops its top one under load)."""
                live = [i for i, info in enumerate(track.layer_info(time.monotonic())) if info.live]
                return live[-1] if live else 0

            def each_has_its_layer() -> bool:
                top = top_layer()
                return (
                    top > 0
                    and layer_size(0) is not None
                    and size(small) == layer_size(0)
                    and layer_size(top) is not None
                    and size(large) == layer_size(top)
                )

            def state() -> str:
                slots = {
                    name: (o.layers.current, o.layers.target) if o.layers else None
                    for name in ("small", "large")
                    for o in b._room("r").get(name).video_slots
                }
                return (
                    f"decoded small={size(small)} large={size(large)}; layers on B "
                    f"{[layer_size(i) for i in range(3)]} packets {[x.packets for x in track.layers]}; "
                    f"slots (current, target) {slots}; pipe {b.pipe_stats(PIPE)}"
                )

            try:
                await wait_until(each_has_its_layer, 45, "small decodes q and large the top layer, on B")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {state()}") from None
            low, top = layer_size(0), layer_size(top_layer())
            assert low is not None and top is not None and top[0] > low[0], (low, top)
            assert track.unknown_layer_packets == 0
            # A keeps sending what B's slots take: B's wants reached A's track
            track_a = a._room("r").get("chair").inbound["video"]

            def b_wants_what_it_takes() -> bool:
                wants = track_a.remote_layers.get(PIPE, frozenset())
                return 0 in wants and top_layer() in wants

            try:
                await wait_until(b_wants_what_it_takes, 5, "B's wants reach A")
            except AssertionError as exc:
                raise AssertionError(
                    f"{exc}: A has {track_a.remote_layers}, B's room {b._room('r').layers_wanted}, "
                    f"B's pipe {b._pipes[PIPE]._wants()}: {state()}"
                ) from None
            assert a.pipe_stats(PIPE).sending == ("chair",)
    finally:
        await a.close()
        await b.close()
