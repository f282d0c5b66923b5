"""Translations: Korean first, English second.

Message ids are English (the gettext convention); ``server/locales/<lang>/LC_MESSAGES/messages.po``
holds each language. Catalogs are compiled in memory at start-up with Babel, so there is no
build step and no stale .mo file; ``tests/test_i18n.py`` checks that every message in the
templates and code has a Korean translation.
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
SUPPORTED_LOCALES = ("ko", "en")
DOMAIN = "messages"


class Catalogs:
    """One compiled translation per supported locale."""

    def __init__(self, default_locale: str = "ko", directory: Path = LOCALES_DIR) -> None:
        if default_locale not in SUPPORTED_LOCALES:
            raise ValueError(f"default locale must be one of {SUPPORTED_LOCALES}")
        self.default_locale = default_locale
        self._translations: dict[str, gettext.NullTranslations] = {}
        for locale in SUPPORTED_LOCALES:
            po_path = directory / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
            if not po_path.exists():
                self._translations[locale] = gettext.NullTranslations()
                continue
            with po_path.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            self._translations[locale] = gettext.GNUTranslations(buffer)

    def get(self, locale: str) -> gettext.NullTranslations:
        return self._translations.get(locale) or self._translations[self.default_locale]

    def negotiate(self, requested: str | None) -> str:
        return requested if requested in SUPPORTED_LOCALES else self.default_locale
