"""Link-lab tests: network namespaces joined by shaped veth links (see tests/lab/linklab.py).
They need root with CAP_NET_ADMIN/CAP_SYS_ADMIN, as the whole suite runs (inside `unshare -n`)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: runs in the link lab (namespaces with shaped veth links)")
