"""nftables helpers for the SFU's weak-link tests: drop (some or all) UDP toward one
local port on the input hook (the kernel here has no netem; dropping on the output hook
returns EPERM to the sender instead of losing the packet).

Rules live in a table of their own named after the port, so tests running in parallel in
the same loopback namespace do not touch each other's traffic.
"""

from __future__ import annotations

import subprocess


class PortFilter:
    """Loss toward one UDP port on this namespace's input hook; ``set_loss(100)`` is a cut."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.table = f"maeul_sfu_test_{port}"
        self._nft(f"add table inet {self.table}")
        self._nft(f"add chain inet {self.table} input {{ type filter hook input priority -10 ; }}")

    def set_loss(self, percent: int) -> None:
        self._nft(f"flush chain inet {self.table} input")
        if percent >= 100:
            self._nft(f"add rule inet {self.table} input udp dport {self.port} drop")
        elif percent > 0:
            match = f"udp dport {self.port} numgen random mod 100 < {percent}"
            self._nft(f"add rule inet {self.table} input {match} drop")

    def close(self) -> None:
        self._nft(f"delete table inet {self.table}", check=False)

    @staticmethod
    def _nft(command: str, check: bool = True) -> None:
        subprocess.run(["nft", command], check=check, capture_output=True, text=True)
