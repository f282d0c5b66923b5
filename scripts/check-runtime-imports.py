#!/usr/bin/env python3
"""Import every module of the server, the kiosk and their rtc library, and fail if one cannot be imported.

`make install` runs this right after installing the runtime dependencies and before the test extras
go in, so a module that imports a test-only package (pytest, playwright…) at load time fails the build
instead of failing on the county's server.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys


def main() -> int:
    failed: list[str] = []
    count = 0
    for root in ("server", "kiosk", "rtc"):
        package = importlib.import_module(root)
        for info in pkgutil.walk_packages(package.__path__, f"{root}."):
            count += 1
            try:
                importlib.import_module(info.name)
            except Exception as exc:  # any failure to import is what this check reports
                failed.append(f"{info.name}: {exc!r}")
    for line in failed:
        print(f"cannot import with the runtime dependencies only: {line}", file=sys.stderr)
    if not failed:
        print(f"{count} modules import with the runtime dependencies only")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
