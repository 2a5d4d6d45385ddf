"""Mixture-of-experts exports stored per expert, re-fused into the model's own 3-D expert tensors.

transformers 5 holds a gemma4 (and Mixtral, Qwen-MoE, ...) MoE layer's experts as two fused parameters,
`experts.gate_up_proj` [experts, 2 x intermediate, hidden] and `experts.down_proj` [experts, hidden, intermediate].
ModelOpt's fused-experts plugin quantizes each expert apart and exports it unfused, as
`experts.{i}.gate_proj/up_proj/down_proj` with their own scales (the layout vLLM reads), which no transformers
module matches. omnicheck dequantizes each expert, stacks gate and up back into gate_up_proj, and runs the experts
with each projection's input fake-quantized with its stored input_scale, as the deployed grouped GEMM would see it.
"""

from __future__ import annotations

import re
from typing import Any, Callable

UNFUSED_EXPERT = re.compile(r"^(?P<experts>.+\.experts)\.(?P<index>\d+)\.(?P<proj>gate_proj|up_proj|down_proj)$")


def is_fused_experts(module) -> bool:
    """A transformers fused-experts module this re-fusing knows: gated gate_up_proj and down_proj 3-D parameters."""
    gate_up, down = getattr(module, "gate_up_proj", None), getattr(module, "down_proj", None)
    return getattr(gate_up, "ndim", 0) == 3 and getattr(down, "ndim", 0) == 3 and hasattr(module, "act_fn")


def _emulated_experts_class():
    import torch
    import torch.nn.functional as F

    from omnicheck.formats import fp4

    def quantize_input(x, fmt: str | None, s2):
        if fmt == "nvfp4":
            return fp4.fake_quantize_nvfp4(x, s2)
        if fmt == "fp8":
            return fp4.fake_quantize_fp8_static(x, s2)
        return x

    class EmulatedExperts(torch.nn.Module):
        """Dequantized fused experts; each expert's inputs are fake-quantized with its stored input scales."""

        def __init__(self, gate_up, down, act_fn, activation: str | None, gate_up_s2, down_s2):
            super().__init__()
            self.num_experts = gate_up.shape[0]
            self.gate_up_proj = torch.nn.Parameter(gate_up, requires_grad=False)
            self.down_proj = torch.nn.Parameter(down, requires_grad=False)
            self.act_fn = act_fn
            self.activation_format = activation
            self.register_buffer("gate_up_input_s2", gate_up_s2, persistent=False)
            self.register_buffer("down_input_s2", down_s2, persistent=False)

        def forward(self, hidden_states, top_k_index, top_k_weights):
            out = torch.zeros_like(hidden_states)
            hit = torch.unique(top_k_index[(top_k_index >= 0) & (top_k_index < self.num_experts)])
            for expert in hit.tolist():
                token, slot = torch.where(top_k_index == expert)
                x = hidden_states[token]
                s2 = None if self.gate_up_input_s2 is None else self.gate_up_input_s2[expert]
                gate, up = F.linear(quantize_input(x, self.activation_format, s2), self.gate_up_proj[expert]).chunk(2, -1)
                h = self.act_fn(gate) * up
                s2 = None if self.down_input_s2 is None else self.down_input_s2[expert]
                h = F.linear(quantize_input(h, self.activation_format, s2), self.down_proj[expert])
                out.index_add_(0, token, (h * top_k_weights[token, slot, None]).to(out.dtype))
            return out

        def extra_repr(self) -> str:
            return f"experts={self.num_experts}, activations={self.activation_format or 'unquantized'}"

    return EmulatedExperts


_CLASS: dict[str, type] = {}


def emulated_experts_class() -> type:
    if "cls" not in _CLASS:
        _CLASS["cls"] = _emulated_experts_class()
    return _CLASS["cls"]


def refuse(original, per_expert: dict[int, dict[str, dict[str, Any]]], dequantize: Callable, dtype,
           activation: str | None, where: str):
    """An EmulatedExperts holding `original`'s experts rebuilt from per-expert stored tensors
    (per_expert[i][proj] = {"weight": ..., "weight_scale": ..., "input_scale": ...})."""
    import torch

    from omnicheck.errors import ModelLoadError

    n, two_i, hidden = original.gate_up_proj.shape
    missing = [f"{i}.{p}" for i in range(n) for p in ("gate_proj", "up_proj", "down_proj") if p not in per_expert.get(i, {})]
    extra = sorted(set(per_expert) - set(range(n)))
    if missing or extra:
        raise ModelLoadError(
            f"{where}: the per-expert export does not cover the model's {n} experts "
            f"({'missing ' + ', '.join(missing[:4]) if missing else ''}{' extra experts ' + str(extra[:4]) if extra else ''})",
            "check that config.json's num_experts is the one the checkpoint was exported with",
        )
    gate_up, down, gate_up_s2, down_s2 = [], [], [], []
    for i in range(n):
        gate, up, dn = (dequantize(per_expert[i][p]) for p in ("gate_proj", "up_proj", "down_proj"))
        gate_up.append(torch.cat([gate, up], 0))
        down.append(dn)
        gate_up_s2.append(per_expert[i]["gate_proj"].get("input_scale"))
        down_s2.append(per_expert[i]["down_proj"].get("input_scale"))
    gate_up_t, down_t = torch.stack(gate_up).to(dtype), torch.stack(down).to(dtype)
    if gate_up_t.shape != original.gate_up_proj.shape or down_t.shape != original.down_proj.shape:
        raise ModelLoadError(
            f"{where}: re-fused experts are {tuple(gate_up_t.shape)} / {tuple(down_t.shape)} but the model's are "
            f"{tuple(original.gate_up_proj.shape)} / {tuple(original.down_proj.shape)}",
            "check that config.json (moe_intermediate_size, hidden_size) is the one the checkpoint was exported with",
        )

    def scales(values):
        if activation is None or any(v is None for v in values):
            return None
        return torch.stack([v.float().reshape(()) for v in values])

    return emulated_experts_class()(gate_up_t, down_t, original.act_fn, activation, scales(gate_up_s2), scales(down_s2))
