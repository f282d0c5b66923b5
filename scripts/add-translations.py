#!/usr/bin/env python3
"""Add messages to one feature's catalogs: Korean msgstr in ko/, English (the msgid) in en/.

    .venv/bin/python scripts/add-translations.py meeting translations.tsv

``translations.tsv``: one ``English msgid<TAB>Korean`` per line. Existing msgids are updated.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

LOCALES = Path(__file__).resolve().parent.parent / "server" / "locales"


def main(feature: str, table: Path) -> None:
    pairs = [line.split("\t", 1) for line in table.read_text(encoding="utf-8").splitlines() if line.strip()]
    for locale in ("ko", "en"):
        path = LOCALES / locale / "LC_MESSAGES" / f"{feature}.po"
        with path.open("rb") as f:
            catalog = read_po(f, locale=locale)
        for english, korean in pairs:
            if english in catalog:
                catalog.delete(english)  # Catalog.add keeps an existing message's old string
            catalog.add(english, korean.strip() if locale == "ko" else english)
        with path.open("wb") as f:
            write_po(f, catalog, width=0, omit_header=False)
        print(f"{path}: {len(pairs)} messages")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
