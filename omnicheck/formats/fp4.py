"""NVFP4 and FP8 arithmetic in torch: unpack, dequantize, fake-quantize.

Conventions (ModelOpt's): a value is code_e2m1 * block_scale_fp8 * s2, where s2 is the per-tensor second-level
scale (ModelOpt `weight_scale_2` / `input_scale` = amax / (6 * 448)). compressed-tensors stores the inverse,
`*_global_scale` = 1 / s2. Every function takes s2.

torch is imported inside functions: the formats package is imported by the pytest plugin's session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

E2M1_MAX = 6.0
E4M3_MAX = 448.0
# e2m1 magnitudes by 3-bit code; bit 3 is the sign.
E2M1_MAGNITUDES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
BLOCK = 16


def unpack_e2m1(packed: "torch.Tensor") -> "torch.Tensor":
    """uint8 [..., n/2] holding two e2m1 codes per byte, low nibble first -> float32 [..., n]."""
    import torch

    if packed.dtype != torch.uint8:
        raise TypeError(f"packed e2m1 weights must be uint8, got {packed.dtype}")
    low = packed & 0x0F
    high = packed >> 4
    codes = torch.stack((low, high), dim=-1).flatten(-2)
    table = torch.tensor(
        list(E2M1_MAGNITUDES) + [-m for m in E2M1_MAGNITUDES], dtype=torch.float32, device=packed.device
    )
    return table[codes.long()]


def pack_e2m1(values: "torch.Tensor") -> "torch.Tensor":
    """Float values already on the e2m1 grid [..., n] -> uint8 [..., n/2], low nibble first."""
    import torch

    magnitudes = torch.tensor(E2M1_MAGNITUDES, dtype=torch.float32, device=values.device)
    index = (values.abs().float().unsqueeze(-1) - magnitudes).abs().argmin(-1)
    codes = (index | ((values < 0).long() << 3)).to(torch.uint8)
    pairs = codes.unflatten(-1, (-1, 2))
    return pairs[..., 0] | (pairs[..., 1] << 4)


def round_to_e2m1(x: "torch.Tensor") -> "torch.Tensor":
    """Nearest e2m1 value, ties to the even code (as hardware and compressed-tensors round), saturating at +-6."""
    import torch

    a = x.abs().clamp(max=E2M1_MAX)
    # Between grid points the step is 0.5 below 2, 1 up to 4, then 2: round-half-even within each band.
    fine = torch.round(a * 2) / 2
    mid = torch.round(a)
    coarse = torch.round(a / 2) * 2
    out = torch.where(a < 2, fine, torch.where(a < 4, mid, coarse))
    return torch.copysign(out, x)


def round_to_e4m3(x: "torch.Tensor") -> "torch.Tensor":
    """Nearest float8 e4m3fn value (saturating at 448), returned as float32."""
    import torch

    return x.float().clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float()


def dequantize_nvfp4(
    packed: "torch.Tensor", block_scale: "torch.Tensor", s2: "torch.Tensor | float", block: int = BLOCK
) -> "torch.Tensor":
    """NVFP4 weight [out, in/2] uint8 + FP8 block scales [out, in/block] + per-tensor s2 -> float32 [out, in]."""
    values = unpack_e2m1(packed)
    scales = block_scale.float().repeat_interleave(block, dim=-1)
    if scales.shape != values.shape:
        raise ValueError(f"block scales {tuple(block_scale.shape)} do not fit weights {tuple(values.shape)}")
    return values * scales * _as_float(s2, values)


def nvfp4_block_scales(x: "torch.Tensor", s2: "torch.Tensor | float", block: int = BLOCK) -> "torch.Tensor":
    """The FP8 per-block scales NVFP4 derives for x under second-level scale s2 (float32, [..., n/block])."""
    blocks = x.float().unflatten(-1, (-1, block))
    amax = blocks.abs().amax(-1)
    # amax / (6 * s2) in this order, as ModelOpt's kernels compute it: with bf16 inputs the ideal scale often sits
    # exactly on an FP8 rounding midpoint, and another order of operations can round the other way.
    return round_to_e4m3(amax / (E2M1_MAX * _as_float(s2, amax)))


def fake_quantize_nvfp4(x: "torch.Tensor", s2: "torch.Tensor | float", block: int = BLOCK) -> "torch.Tensor":
    """Quantize x to NVFP4 (per-block FP8 scales under the stored s2) and back, in x's dtype.

    Blocks whose scale rounds to zero come back as zeros; values beyond 6 * scale are clipped, as in deployment.
    """
    import torch

    if x.shape[-1] % block:
        raise ValueError(f"NVFP4 needs the last dimension ({x.shape[-1]}) to be a multiple of {block}")
    s2f = _as_float(s2, x)
    scales = nvfp4_block_scales(x, s2f, block).unsqueeze(-1) * s2f
    blocks = x.float().unflatten(-1, (-1, block))
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    q = round_to_e2m1(blocks / safe) * scales
    return q.flatten(-2).to(x.dtype)


def dequantize_fp8(weight: "torch.Tensor", scale: "torch.Tensor") -> "torch.Tensor":
    """FP8 weight with a per-tensor, per-channel [out, 1] or per-block [out/b, in/b] (or [out/b, 1, in/b, 1]) scale
    -> float32."""
    w = weight.float()
    s = scale.float()
    if s.ndim == 4 and s.shape[1] == s.shape[3] == 1:  # ModelOpt FP8_PB_WO: the blocked amax's [rb, 1, cb, 1]
        s = s.reshape(s.shape[0], s.shape[2])
    if s.numel() == 1 or (s.ndim == 2 and s.shape[1] == 1 and s.shape[0] == w.shape[0]):
        return w * s.reshape(-1, 1) if s.numel() > 1 else w * s.reshape(())
    if s.ndim == 2:
        rows = -(-w.shape[0] // s.shape[0])
        cols = -(-w.shape[1] // s.shape[1])
        expanded = s.repeat_interleave(rows, 0)[: w.shape[0]].repeat_interleave(cols, 1)[:, : w.shape[1]]
        return w * expanded
    raise ValueError(f"FP8 scale of shape {tuple(scale.shape)} does not fit weight {tuple(weight.shape)}")


def fake_quantize_fp8_static(x: "torch.Tensor", scale: "torch.Tensor | float") -> "torch.Tensor":
    """Per-tensor static FP8 e4m3 activation quantization with a stored scale, and back."""
    s = _as_float(scale, x)
    return (round_to_e4m3(x.float() / s) * s).to(x.dtype)


def fake_quantize_fp8_dynamic(x: "torch.Tensor") -> "torch.Tensor":
    """Dynamic per-tensor FP8 e4m3 (the scale is the whole tensor's amax / 448), and back."""
    scale = x.detach().float().abs().amax() / E4M3_MAX
    return x if float(scale) == 0 else fake_quantize_fp8_static(x, scale)


def fake_quantize_fp8_per_token(x: "torch.Tensor") -> "torch.Tensor":
    """Dynamic per-token FP8 e4m3 (the scale is each row's amax / 448), and back."""
    import torch

    xf = x.float()
    scale = xf.abs().amax(-1, keepdim=True) / E4M3_MAX
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (round_to_e4m3(xf / safe) * safe).to(x.dtype)


def _as_float(value: "torch.Tensor | float", like: "torch.Tensor") -> "torch.Tensor":
    import torch

    if isinstance(value, torch.Tensor):
        return value.float().reshape(()).to(like.device) if value.numel() == 1 else value.float().to(like.device)
    return torch.tensor(float(value), dtype=torch.float32, device=like.device)
