"""docs/signaling.md's table of server → client events says what the server sends: the same event
names as ``server.signaling.events.SERVER_EVENTS``, each with the same top-level payload fields."""

from __future__ import annotations

import dataclasses
import re

from server.config import PROJECT_ROOT
from server.signaling.events import SERVER_EVENTS, LinkQuality, Participants, ServerEvent

DOC = PROJECT_ROOT / "docs" / "signaling.md"


def _braces(text: str) -> list[str]:
    """The top-level ``{…}`` groups of ``text``, without their braces."""
    groups, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "{":
            if depth == 0:
                start = i + 1
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                groups.append(text[start:i])
    return groups


def _keys(group: str) -> set[str]:
    """The field names of one payload: ``mid, kind, publisher_id \\| null`` -> {mid, kind, publisher_id}."""
    parts, depth, current = [], 0, ""
    for char in group:
        depth += char in "{[("
        depth -= char in "}])"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return {m.group(1) for part in parts if (m := re.match(r"\s*([a-z_]+)", part))}


def documented_events() -> dict[str, set[str]]:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("### Server → client", 1)[1].split("\n### ", 1)[0]
    events: dict[str, set[str]] = {}
    for row in table.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([a-z_]+)`", cells[0])
        payloads = _braces(cells[1])
        assert payloads, f"no payload documented for {names}"
        # "`a` / `b` | `{}` / `{floor: bool}`": one payload each; a single payload: shared.
        for name, payload in zip(
            names, payloads if len(payloads) == len(names) else payloads[:1] * len(names), strict=True
        ):
            events[name] = _keys(payload)
    return events


def sent_events() -> dict[str, set[str]]:
    return {event.NAME: {f.name for f in dataclasses.fields(event)} for event in SERVER_EVENTS}


def test_the_documented_server_events_are_the_ones_sent() -> None:
    assert documented_events() == sent_events()


def test_the_reader_sees_fields_and_nested_payloads() -> None:
    documented = documented_events()
    assert documented["participants"] == {"participants"}
    assert documented["ask_unmute"] == {"floor"} and documented["chair_mute"] == set()
    assert documented["slot"] == {"mid", "kind", "publisher_id"}


def test_an_event_serializes_its_fields() -> None:
    link = LinkQuality(bars=2, mode="low_video", downlink_kbps=300, loss_pct=1.5)
    assert link.to_dict() == {"bars": 2, "mode": "low_video", "downlink_kbps": 300, "loss_pct": 1.5}
    people: ServerEvent = Participants([{"id": "k1"}])
    assert (people.NAME, people.to_dict()) == ("participants", {"participants": [{"id": "k1"}]})
