"""A real coturn on 127.0.0.1 per test (random secret, free ports, killed afterwards) and Maeul
settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.turn.coturn import Coturn, coturn


@pytest.fixture
def turn_server(tmp_path: Path) -> Iterator[Coturn]:
    with coturn(tmp_path / "coturn") as server:
        yield server
