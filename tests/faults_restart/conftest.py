"""The meetings' fixtures (enrolled kiosks of two villages) for the restart tests."""

from tests.meetings.conftest import kiosk_a, kiosk_b

__all__ = ["kiosk_a", "kiosk_b"]
