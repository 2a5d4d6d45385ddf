"""Where a run ran: Python, platform, device and the versions of the packages that decide its results."""

from __future__ import annotations

import functools
import platform
import sys
from typing import Any

PACKAGES = ("torch", "transformers", "compressed-tensors", "lm-eval", "jiwer", "librosa", "av", "numpy", "pytest")


def environment(device: str) -> dict[str, Any]:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "device": device,
            "packages": dict(_package_versions())}


@functools.lru_cache(maxsize=1)
def _package_versions() -> tuple[tuple[str, str], ...]:
    """Read once per process: the document is rewritten after every result, the installed versions do not change."""
    from importlib import metadata

    found = []
    for name in PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(found)
