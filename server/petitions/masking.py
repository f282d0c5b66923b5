"""Masking of personal data (개인정보 마스킹) for screens, logs and officials' lists.

Phone numbers are what reach residents here (not e-mail), so they are normalised to digits on the
way in and masked on the way out: the area/carrier prefix and the last four digits stay visible so
an official can confirm "the number ending in 5678" on the phone, the middle block is hidden.
Names keep the first and last character, the common practice on Korean public services.
"""

from __future__ import annotations

import re
import unicodedata

# Korean numbers, national format, digits only.
#   mobile: 010 + 8 digits; legacy 011/016/017/018/019 + 7 or 8 digits
#   Seoul: 02 + 7 or 8 digits; other areas: 031-033, 041-044, 051-055, 061-064 + 7 or 8 digits
#   internet telephony: 070 + 8 digits
_PHONE = re.compile(
    r"^(?:"
    r"(?P<mobile>010)\d{8}"
    r"|(?P<legacy>01[16789])\d{7,8}"
    r"|(?P<seoul>02)\d{7,8}"
    r"|(?P<area>0(?:3[1-3]|4[1-4]|5[1-5]|6[1-4]))\d{7,8}"
    r"|(?P<voip>070)\d{8}"
    r")$"
)
_ALLOWED_PUNCTUATION = re.compile(r"[\s\-.()]")


def normalize_phone(text: str) -> str:
    """Digits-only national form of a Korean phone number, or ValueError.

    Accepts hyphens, spaces, dots and parentheses, full-width digits, and the international form
    ``+82 10-1234-5678`` / ``+82 (0)10 ...``.
    """
    if not isinstance(text, str):
        raise TypeError("phone number must be a string")
    cleaned = _ALLOWED_PUNCTUATION.sub("", unicodedata.normalize("NFKC", text))
    international = cleaned.startswith("+")
    digits = cleaned[1:] if international else cleaned
    if not digits or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"{text!r} is not a phone number")
    if international:
        if not digits.startswith("82"):
            raise ValueError(f"{text!r} is not a Korean phone number")
        national = digits[2:]
        digits = national if national.startswith("0") else "0" + national
    if not _PHONE.match(digits):
        raise ValueError(f"{text!r} is not a valid Korean mobile or landline number")
    return digits


def _split_phone(digits: str) -> tuple[str, str, str]:
    prefix_len = 2 if digits.startswith("02") else 3
    return digits[:prefix_len], digits[prefix_len:-4], digits[-4:]


def format_phone(text: str) -> str:
    """Hyphenated display form: ``01012345678`` -> ``010-1234-5678``; empty once the retention
    job has erased it (server/ops/retention.py)."""
    if not text:
        return ""
    return "-".join(_split_phone(normalize_phone(text)))


def mask_phone(text: str) -> str:
    """``"01012345678"`` -> ``"010-****-5678"``; ``"061-430-3114"`` -> ``"061-***-3114"``.

    Raises ValueError for input that is not a Korean number, rather than guessing what to hide.
    """
    prefix, middle, last = _split_phone(normalize_phone(text))
    return f"{prefix}-{'*' * len(middle)}-{last}"


def mask_name(name: str) -> str:
    """``홍길동`` -> ``홍*동``, ``김철`` -> ``김*``, ``남궁민수`` -> ``남**수``.

    Four or more characters keep the first and the last; spaces inside a name (foreign names) are
    kept so the shape stays readable.
    """
    if not isinstance(name, str):
        raise TypeError("name must be a string")
    chars = unicodedata.normalize("NFC", name).strip()
    if not chars:
        raise ValueError("name is empty")
    if len(chars) == 1:
        return "*"
    if len(chars) == 2:
        return chars[0] + "*"
    middle = "".join(" " if c.isspace() else "*" for c in chars[1:-1])
    return chars[0] + middle + chars[-1]
