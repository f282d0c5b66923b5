from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from server.petitions.deadlines import SEOUL
from server.petitions.masking import format_phone, mask_name, mask_phone, normalize_phone
from server.petitions.receipts import (
    PinHashParams,
    format_receipt,
    generate_pin,
    hash_pin,
    parse_receipt,
    receipt_year,
    verify_pin,
)

# Cheap Argon2 settings for tests that only check behaviour, not cost.
FAST = PinHashParams(time_cost=1, memory_cost_kib=1024, parallelism=1)

# --- receipt numbers ------------------------------------------------------------------------------


def test_format_receipt() -> None:
    assert format_receipt(2026, 123) == "강진-2026-00123"
    assert format_receipt(2026, 99999) == "강진-2026-99999"
    # Past 99,999 the number grows a digit (up to seven) instead of running out.
    assert format_receipt(2026, 100000) == "강진-2026-100000"
    assert format_receipt(2026, 9999999) == "강진-2026-9999999"
    for year, seq in [(2026, 0), (2026, 10**7), (1999, 1), (2026, -1)]:
        with pytest.raises(ValueError):
            format_receipt(year, seq)


def test_receipt_year_uses_seoul() -> None:
    assert receipt_year(datetime(2025, 12, 31, 16, 0, tzinfo=UTC)) == 2026  # 01:00 in Seoul
    assert receipt_year(datetime(2026, 6, 1, 9, 0, tzinfo=SEOUL)) == 2026
    with pytest.raises(ValueError):
        receipt_year(datetime(2026, 6, 1))


@pytest.mark.parametrize(
    "text",
    [
        "강진-2026-00123",
        " 강진 - 2026 - 00123 ",
        "강진 2026 00123",
        "강진202600123",
        "강진2026-123",
        "GJ-2026-00123",
        "gj202600123",
        "GANGJIN-2026-00123",
        "Kangjin 2026 123",
        "2026-00123",
        "2026 123",
        "202600123",
        "２０２６－００１２３",  # full-width, as some IMEs produce
        "강진.2026.00123",
    ],
)
def test_parse_receipt_tolerant(text: str) -> None:
    assert parse_receipt(text) == (2026, 123)


def test_parse_roundtrip() -> None:
    for year, seq in [(2026, 1), (2031, 45678), (2000, 99999), (2026, 100000), (2026, 9999999)]:
        assert parse_receipt(format_receipt(year, seq)) == (year, seq)
    assert parse_receipt("20261234567") == (2026, 1234567)
    assert parse_receipt("강진 2026 123456") == (2026, 123456)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("2026001234", "10 digits"),  # a long number never starts with 0: a typo
        ("202612345678", "12 digits"),
        ("강진-2026-12345678", "not valid"),
        ("20260012", "8 digits"),
        ("서울-2026-00123", "not valid"),
        ("강진-2026-000123", "not valid"),
        ("강진-26-00123", "not valid"),
        ("강진-2026-00-123", "not valid"),
        ("강진-2026-abcde", "not valid"),
        ("강진-1999-00123", "impossible year"),
        ("강진-2026-00000", "sequence 0"),
        ("XY202600123", "not valid"),
    ],
)
def test_parse_receipt_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_receipt(text)


# --- PINs --------------------------------------------------------------------------------------


def test_generate_pin() -> None:
    pins = {generate_pin() for _ in range(300)}
    assert all(len(p) == 4 and p.isdigit() for p in pins)
    assert len(pins) > 200  # random, not a constant


def test_hash_and_verify_with_default_cost() -> None:
    start = time.perf_counter()
    stored = hash_pin("0420")
    elapsed = time.perf_counter() - start
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert "0420" not in stored
    assert verify_pin("0420", stored)
    assert not verify_pin("0421", stored)
    assert elapsed > 0.01  # deliberately slow: offline guessing of 10,000 PINs must cost something


def test_salt_and_pepper() -> None:
    salt = b"0123456789abcdef"
    a = hash_pin("1234", salt, params=FAST)
    assert a == hash_pin("1234", salt, params=FAST)
    assert a != hash_pin("1234", params=FAST)  # fresh random salt by default
    peppered = hash_pin("1234", salt, pepper=b"server-secret", params=FAST)
    assert peppered != a
    assert verify_pin("1234", peppered, pepper=b"server-secret")
    assert not verify_pin("1234", peppered)
    assert not verify_pin("1234", peppered, pepper=b"other")


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", "", "١٢٣٤"])
def test_bad_pins(pin: str) -> None:
    stored = hash_pin("1234", params=FAST)
    with pytest.raises(ValueError):
        hash_pin(pin, params=FAST)
    assert verify_pin(pin, stored) is False


def test_bad_stored_hash() -> None:
    with pytest.raises(ValueError):
        verify_pin("1234", "plaintext-1234")
    with pytest.raises(ValueError):
        hash_pin("1234", b"short", params=FAST)
    with pytest.raises(ValueError, match="malformed"):
        verify_pin("1234", "$argon2id$v=19$m=1024,t=1,p=1$garbage$garbage")


# --- masking -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized", "masked"),
    [
        ("01012345678", "01012345678", "010-****-5678"),
        ("010-1234-5678", "01012345678", "010-****-5678"),
        ("010 1234 5678", "01012345678", "010-****-5678"),
        ("+82 10-1234-5678", "01012345678", "010-****-5678"),
        ("+82 (0)10 1234 5678", "01012345678", "010-****-5678"),
        ("011-234-5678", "0112345678", "011-***-5678"),
        ("061-430-3114", "0614303114", "061-***-3114"),
        ("0614303114", "0614303114", "061-***-3114"),
        ("061-1234-5678", "06112345678", "061-****-5678"),
        ("02-123-4567", "021234567", "02-***-4567"),
        ("02-1234-5678", "0212345678", "02-****-5678"),
        ("070-1234-5678", "07012345678", "070-****-5678"),
        ("０１０－１２３４－５６７８", "01012345678", "010-****-5678"),
    ],
)
def test_phone(raw: str, normalized: str, masked: str) -> None:
    assert normalize_phone(raw) == normalized
    assert mask_phone(raw) == masked
    assert format_phone(raw).replace("-", "") == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "010-1234-567",  # 010 needs 8 digits
        "010123456789",
        "1012345678",
        "0101234567a",
        "+1 415 555 0100",
        "060-123-4567",  # not an area code
        "061-12-3456",
        "phone",
    ],
)
def test_phone_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_phone(raw)
    with pytest.raises(ValueError):
        mask_phone(raw)


def test_format_phone() -> None:
    assert format_phone("01012345678") == "010-1234-5678"
    assert format_phone("0614303114") == "061-430-3114"


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("홍길동", "홍*동"),
        ("김철", "김*"),
        ("남궁민수", "남**수"),
        ("황보데이비드", "황****드"),
        ("이", "*"),
        (" 박영희 ", "박*희"),
        ("John Smith", "J*** ****h"),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_mask_name_empty() -> None:
    with pytest.raises(ValueError):
        mask_name("  ")
