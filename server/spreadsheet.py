"""Text bound for spreadsheets (the CSV exports of petitions and of meeting records)."""

from __future__ import annotations

#: A cell starting with one of these is run as a formula by Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: str) -> str:
    """Neutralise spreadsheet formulas in user-supplied text (CSV injection): such a cell gets a
    leading apostrophe, which spreadsheets show as text and do not evaluate."""
    return "'" + value if value[:1] in FORMULA_STARTS else value
