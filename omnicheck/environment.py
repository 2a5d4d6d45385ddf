"""Where a run ran: Python, platform, device and the versions of the packages that decide its results."""

from __future__ import annotations

import functools
import os
import platform
import sys
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "transformers", "compressed-tensors", "lm-eval", "jiwer", "librosa", "av", "numpy", "pytest")


def environment(device: str) -> dict[str, Any]:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "device": device,
            "cpu": dict(cpu_description()), "packages": dict(_package_versions())}


# The instruction-set extensions that change which kernels torch and vLLM pick on a CPU (and so what serves there).
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16")


@functools.lru_cache(maxsize=1)
def cpu_description() -> tuple[tuple[str, Any], ...]:
    """CPU model, usable cores and the kernel-relevant instruction sets, read from /proc/cpuinfo where it exists."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    model, flags = platform.processor() or platform.machine(), set()
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            model = value.strip()
        elif key.strip() in ("flags", "Features"):
            flags.update(value.split())
    found = [f for f in CPU_FEATURES if f in flags]
    return (("model", model), ("cores", cores), ("features", tuple(found)))


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
