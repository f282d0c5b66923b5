"""rtc.rtputil's send-time clock: abs-send-time is the NTP time's bits 14-37."""

from __future__ import annotations

import pytest

from rtc import rtputil


@pytest.mark.parametrize(
    "unix_time", [0.0, 1.5, 1_700_000_000.123456, 1_796_000_000.999999, 2_085_978_495.9999]
)
def test_abs_send_time_is_the_ntp_time_shifted(monkeypatch: pytest.MonkeyPatch, unix_time: float) -> None:
    monkeypatch.setattr(rtputil.time, "time", lambda: unix_time)
    assert rtputil.abs_send_time_now() == (rtputil.ntp_now() >> 14) & 0xFFFFFF
