"""Every test file the code and the docs cite exists (``tests/rtc/test_tuning.py``, or a bare
``test_tuning.py``): a docstring that sends the reader to a test that was renamed or never written
is a dead end."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("server", "kiosk", "rtc", "tests", "docs", "scripts", "web", "migrations")
TOP_FILES = ("README.md", "Makefile", "pyproject.toml", "run.py")
SUFFIXES = frozenset({".py", ".md", ".toml", ".sh", ".js", ".html", ".cfg", ".ini", ".yml", ".yaml"})
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "artifacts"})
CITED_PATH = re.compile(r"\btests/[\w/]+\.py\b")
CITED_NAME = re.compile(r"(?<![\w/])test_\w+\.py\b")


def _texts() -> list[Path]:
    files = [ROOT / name for name in TOP_FILES if (ROOT / name).is_file()]
    for top in SOURCES:
        files += [
            path
            for path in (ROOT / top).rglob("*")
            if path.suffix in SUFFIXES and path.is_file() and not SKIP_DIRS & set(path.parts)
        ]
    return sorted(files)


def test_every_cited_test_file_exists() -> None:
    names = {path.name for path in (ROOT / "tests").rglob("test_*.py")}
    dead = []
    for path in _texts():
        text = path.read_text(errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            cited = [p for p in CITED_PATH.findall(line) if not (ROOT / p).is_file()]
            cited += [n for n in CITED_NAME.findall(line) if n not in names]
            dead += [f"{path.relative_to(ROOT)}:{number} cites {c}" for c in cited]
    assert dead == []
