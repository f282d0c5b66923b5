"""Device health the agent reports with each heartbeat."""

from __future__ import annotations

import glob
import shutil
from dataclasses import dataclass
from pathlib import Path

AGENT_VERSION = "0.1.0"


@dataclass(frozen=True)
class Health:
    camera: bool
    microphone: bool
    browser_alive: bool
    rtt_ms: float | None
    free_disk_mb: int
    agent_version: str = AGENT_VERSION


def camera_present() -> bool:
    return bool(glob.glob("/dev/video*"))


def microphone_present() -> bool:
    # ALSA lists capture devices as pcmCcDpc; any one means a microphone is attached.
    return bool(glob.glob("/dev/snd/pcmC*D*c"))


def free_disk_mb(path: Path) -> int:
    return int(shutil.disk_usage(path).free // (1024 * 1024))
