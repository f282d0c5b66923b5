"""docs/grafana-maeul.json names only metrics /metrics exports (a renamed metric breaks a panel
silently otherwise)."""

from __future__ import annotations

import json
import re
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-maeul.json"
# The series names one family stands for (the text format already names counters with _total).
SUFFIXES = {"counter": ("", "_total"), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def dashboard_metrics() -> set[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    assert exprs, "the dashboard has no queries"
    return {name for expr in exprs for name in re.findall(r"\bmaeul_[a-z0-9_]+", expr)}


def exported_series(text: str) -> set[str]:
    """Every series name the exposition allows, from its ``# TYPE`` lines."""
    names = set()
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names |= {family + suffix for suffix in SUFFIXES.get(kind, ("",))}
    return names


def test_the_dashboard_covers_each_kind_of_number() -> None:
    """The check against a live /metrics is in test_metrics_live.py (per-participant and per-event
    families exist only once there are participants and events)."""
    named = dashboard_metrics()
    for family in (
        "maeul_http_request_duration_seconds_bucket",
        "maeul_socket_events_total",
        "maeul_rooms",
        "maeul_participants",
        "maeul_forwarded_bytes_total",
        "maeul_forwarded_packets_total",
        "maeul_nacks_sent_total",
        "maeul_plis_sent_total",
        "maeul_retransmitted_packets_total",
        "maeul_participants_by_link_mode",
        "maeul_recording_bytes",
        "maeul_kiosks",
        "maeul_requests",
        "maeul_requests_overdue",
        "maeul_db_pool_in_use",
    ):
        assert family in named, family
