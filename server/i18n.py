"""Translations: Korean first, English second.

Message ids are English (the gettext convention). Each feature keeps its own catalog,
``server/locales/<lang>/LC_MESSAGES/<feature>.po`` (``messages.po`` for the foundation,
``petitions.po``, …), so features do not edit one shared file; all catalogs of a language are
merged at start-up and compiled in memory with Babel — no build step, no stale .mo file.
``tests/foundation/test_health_and_i18n.py`` checks that every message in the templates and code
has a Korean translation.
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
SUPPORTED_LOCALES = ("ko", "en")


class Catalogs:
    """One compiled translation per supported locale."""

    def __init__(self, default_locale: str = "ko", directory: Path = LOCALES_DIR) -> None:
        if default_locale not in SUPPORTED_LOCALES:
            raise ValueError(f"default locale must be one of {SUPPORTED_LOCALES}")
        self.default_locale = default_locale
        self._translations: dict[str, gettext.NullTranslations] = {}
        for locale in SUPPORTED_LOCALES:
            self._translations[locale] = _load(directory / locale / "LC_MESSAGES", locale)

    def get(self, locale: str) -> gettext.NullTranslations:
        return self._translations.get(locale) or self._translations[self.default_locale]

    def negotiate(self, requested: str | None) -> str:
        return requested if requested in SUPPORTED_LOCALES else self.default_locale


def read_catalogs(folder: Path, locale: str) -> Catalog:
    """Every ``*.po`` of one language merged into one catalog (later files never override)."""
    merged = Catalog(locale=locale)
    for po_path in sorted(folder.glob("*.po")):
        with po_path.open("rb") as handle:
            for message in read_po(handle, locale=locale):
                if message.id and message.id not in merged:
                    merged[message.id] = message
    return merged


def _load(folder: Path, locale: str) -> gettext.NullTranslations:
    catalog = read_catalogs(folder, locale)
    if not len(catalog):
        return gettext.NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)
