"""Values of a checkpoint's small scale tensors (input scales, KV-cache scales), read without loading weights.

A lint that must tell a calibrated scale from one calibration never reached needs the value, not the header:
these tensors hold one number each, so reading every one of a 12B checkpoint's costs milliseconds.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Iterable

from omnicheck.formats.headers import TensorInfo

_STRUCT = {"F32": "f", "F64": "d", "F16": "e"}


def read_scalars(path: Path, tensors: Iterable[TensorInfo]) -> dict[str, list[float]]:
    """name -> its values for the given small tensors (scales hold one each), read straight from their byte ranges:
    a 26B MoE export stores ~12k input scales, and a tensor library's per-tensor overhead would cost seconds."""
    by_file: dict[str, list[TensorInfo]] = {}
    for info in tensors:
        by_file.setdefault(info.file, []).append(info)
    values: dict[str, list[float]] = {}
    for file, infos in by_file.items():
        with open(Path(path) / file, "rb") as handle:
            for info in sorted(infos, key=lambda i: i.data_start):
                handle.seek(info.data_start)
                raw = handle.read(info.nbytes)
                if info.dtype == "BF16":  # the upper half of a float32
                    values[info.name] = list(struct.unpack(f"<{info.numel}f", b"".join(b"\0\0" + raw[i:i + 2]
                                                                                    for i in range(0, len(raw), 2))))
                elif info.dtype in _STRUCT:
                    values[info.name] = list(struct.unpack(f"<{info.numel}{_STRUCT[info.dtype]}", raw))
    return values


FLOAT32_TINY = 1.1754943508222875e-38  # the smallest normal float32: anything below was never computed from data
PEER_RATIO = 1e9  # a calibrated scale a billion times off its peers' median is not a range any data produced


def unusable(values: list[float], peer_median: float | None = None) -> str | None:
    """Why a stored scale cannot have come from calibration, or None. Seen from the tools: llmcompressor 0.14 leaves
    a module no calibration sample reached with its uninitialised value (torch.empty: a subnormal such as 4.5e-44,
    or 0); NaN/inf and negative scales are never valid."""
    for v in values:
        if not math.isfinite(v):
            return "NaN/inf"
        if v == 0:
            return "0"
        if v < 0:
            return f"{v:.3g} (negative)"
        if v < FLOAT32_TINY:
            return f"{v:.2g} (a subnormal float: the uninitialised value, never computed from data)"
        if peer_median and not 1 / PEER_RATIO < v / peer_median < PEER_RATIO:
            return f"{v:.3g} ({v / peer_median:.0e} x the median of the other modules' scales)"
    return None


def median(values: list[float]) -> float | None:
    finite = sorted(v for v in values if math.isfinite(v) and v >= FLOAT32_TINY)
    return finite[len(finite) // 2] if finite else None
