"""Import boundaries between the layers, read from the source with ``ast`` (every import,
also those inside functions and ``if TYPE_CHECKING:``; relative imports resolved):

- ``rtc/`` (the media library) imports nothing from ``server`` or ``kiosk``;
- ``server/sfu`` (the media plane) imports nothing from ``server`` outside ``server.sfu``;
- ``kiosk/`` imports nothing from ``server`` (it loads the library, not the server's internals);
- the domain packages do not import ``server.sfu``: the signaling hub translates its types.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ("petitions", "meetings", "notices", "duty", "rooms", "kiosks", "auth")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, the module ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            # ``from server import sfu`` imports server.sfu
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        module = module_name(path)
        for line, name in imported_modules(path.read_text(), module, path.name == "__init__.py"):
            if any(within(name, f) for f in forbidden) and not any(within(name, a) for a in allowed):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return sorted(set(found))


def test_rtc_imports_neither_server_nor_kiosk() -> None:
    assert violations("rtc", ("server", "kiosk")) == []


def test_sfu_imports_nothing_of_the_server_outside_sfu() -> None:
    assert violations("server.sfu", ("server",), allowed=("server.sfu",)) == []


def test_kiosk_imports_nothing_from_the_server() -> None:
    assert violations("kiosk", ("server",)) == []


@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_does_not_import_the_media_plane(domain: str) -> None:
    assert violations(f"server.{domain}", ("server.sfu",)) == []


def test_the_reader_sees_every_kind_of_import() -> None:
    source = """
from typing import TYPE_CHECKING
import server.sfu.room
from ..sfu import Sfu
from .. import sfu
from server import sfu as media
if TYPE_CHECKING:
    from server.sfu.errors import SfuError
def late():
    from server.sfu import InvalidState
"""
    names = {name for _, name in imported_modules(source, "server.meetings.views", False)}
    assert {"server.sfu.room", "server.sfu", "server.sfu.Sfu", "server.sfu.errors"} <= names
    assert "server.sfu.InvalidState" in names
    relative = {name for _, name in imported_modules("from . import x\n", "server.sfu", True)}
    assert relative == {"server.sfu", "server.sfu.x"}


def test_loading_the_kiosk_loads_no_server_module() -> None:
    """At run time too: every kiosk module imported, and not one ``server`` module came along."""
    code = (
        "import importlib, pkgutil, sys, kiosk\n"
        "for info in pkgutil.walk_packages(kiosk.__path__, 'kiosk.'):\n"
        "    importlib.import_module(info.name)\n"
        "print(sorted(m for m in sys.modules if m == 'server' or m.startswith('server.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
