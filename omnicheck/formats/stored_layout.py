"""What the stored tensors alone say about a layout: FP8 scale grids, unpacked element counts, KV-cache scales.

Shared by the card (reading) and the ModelOpt loader; headers only, no tensor data.
"""

from __future__ import annotations

import re
from typing import Any

from omnicheck.formats.headers import TensorInfo

FUSED_EXPERTS = re.compile(r"\.experts\.(gate_up_proj|up_proj|gate_proj|down_proj)$")


def logical_numel(params: dict[str, TensorInfo], bits: int) -> int:
    """Weight elements as the model uses them: packed 4-bit bytes hold two, int32 words hold 32 // bits."""
    main = params.get("weight_packed") or params.get("weight")
    if main is None:
        return 0
    per_element = {"U8": 8 // bits if bits < 8 else 1, "I32": 32 // bits if bits < 32 else 1}.get(main.dtype, 1)
    return main.numel * per_element


def kv_scale_facts(scale_tensors: list[str]) -> dict[str, Any]:
    """Where a quantized KV cache's scales are stored: per attention layer (k_scale / v_scale tensors), or none
    (a runtime then computes them per tensor at run time)."""
    k = [n for n in scale_tensors if n.endswith(".k_scale")]
    if not scale_tensors:
        return {"scales": "none stored (dynamic per-tensor)", "scale_tensors": 0}
    return {"scales": f"static per-tensor, k_scale and v_scale stored for {len(k)} attention layer(s)",
            "scale_tensors": len(scale_tensors)}


def fp8_scale_grid(scale: TensorInfo | None) -> tuple[int, int] | None:
    """(row blocks, column blocks) of an FP8 scale laid out per 2-D block: [rb, cb] (compressed-tensors) or
    [rb, 1, cb, 1] (ModelOpt FP8_PB_WO keeps its blocked amax's shape)."""
    if scale is None:
        return None
    if len(scale.shape) == 2:
        return scale.shape[0], scale.shape[1]
    if len(scale.shape) == 4 and scale.shape[1] == scale.shape[3] == 1:
        return scale.shape[0], scale.shape[2]
    return None


def fp8_group(weight: TensorInfo, scale: TensorInfo | None) -> int | None:
    grid = fp8_scale_grid(scale)
    if grid is None or grid[1] == 1 or grid[0] != weight.shape[0]:
        return None
    return -(-weight.shape[1] // grid[1])


def fp8_scale_words(weight: TensorInfo, scale: TensorInfo | None) -> str:
    if scale is None:
        return "no stored scale"
    if scale.numel == 1:
        return "per-tensor scale"
    grid = fp8_scale_grid(scale)
    if grid is not None and grid[1] == 1 and grid[0] == weight.shape[0]:
        return "per-channel scales"
    if grid is not None:
        rows = -(-weight.shape[0] // grid[0])
        cols = -(-weight.shape[1] // grid[1])
        return f"per-block {rows}x{cols} scales"
    return f"scales of shape {list(scale.shape)}"
