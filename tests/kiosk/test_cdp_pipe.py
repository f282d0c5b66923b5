"""The DevTools pipe client matches replies to commands by id, also when several commands are in
flight and replies come back out of order (a hung page must not swallow another command's reply)."""

from __future__ import annotations

import asyncio
import json
import os

from kiosk.cdp import CdpPipe


async def test_concurrent_commands_get_their_own_replies_out_of_order() -> None:
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    cdp = CdpPipe(to_browser_w, from_browser_r)
    await cdp.start()
    loop = asyncio.get_running_loop()

    async def browser() -> None:
        """Reads three commands, then answers the first, the third, the second, echoing the method."""
        buffer = b""
        messages = []
        while len(messages) < 3:
            buffer += await loop.run_in_executor(None, os.read, to_browser_r, 4096)
            *complete, buffer = buffer.split(b"\0")
            messages += [json.loads(raw) for raw in complete]
        for message in (messages[0], messages[2], messages[1]):
            reply = {"id": message["id"], "result": {"method": message["method"]}}
            os.write(from_browser_w, json.dumps(reply).encode() + b"\0")
            await asyncio.sleep(0.1)  # let the client act on each reply before the next

    serve = asyncio.create_task(browser())
    replies = await asyncio.gather(*(cdp.send(f"Test.m{i}", timeout=5) for i in range(3)))
    await serve
    assert [r["method"] for r in replies] == ["Test.m0", "Test.m1", "Test.m2"]
    await cdp.close()
    for fd in (to_browser_r, from_browser_w):
        os.close(fd)
