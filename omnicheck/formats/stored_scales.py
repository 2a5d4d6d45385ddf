"""Values of a checkpoint's small scale tensors (input scales, KV-cache scales), read without loading weights.

A lint that must tell a calibrated scale from one calibration never reached needs the value, not the header:
these tensors hold one number each, so reading every one of a 12B checkpoint's costs milliseconds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

from omnicheck.formats.headers import weight_files


def read_scalars(path: Path, names: Iterable[str]) -> dict[str, list[float]]:
    """name -> its values (a list: per-tensor scales hold one) for every named tensor found in the checkpoint."""
    from safetensors import safe_open

    wanted = set(names)
    values: dict[str, list[float]] = {}
    for file in weight_files(Path(path)):
        if not wanted:
            break
        with safe_open(str(file), framework="pt") as handle:
            for name in wanted & set(handle.keys()):
                values[name] = [float(v) for v in handle.get_tensor(name).float().flatten().tolist()]
        wanted -= set(values)
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
