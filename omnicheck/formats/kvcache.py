"""KV-cache quantization, emulated in-process: K and V are quantized and dequantized before every attention.

A deployment runtime with an FP8 KV cache (vLLM's kv_cache_dtype fp8, TensorRT-LLM's FP8 KV) stores K and V in
FP8 e4m3 and reads them back for attention; transformers keeps them in the model dtype and (5.23 with
compressed-tensors 0.20) drops the stored k_scale / v_scale as unexpected keys. omnicheck registers an attention
function that quantize-dequantizes K and V with the stored per-layer scales (scale = amax / 448, the convention of
ModelOpt, compressed-tensors and vLLM alike), or with a per-tensor scale computed per call where none are stored,
and then runs the model's own attention implementation. What a runtime does differently (some use the unquantized
K/V of a prefill's own tokens) is not reproduced: the emulation is the pessimistic reading of the format.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from omnicheck.formats.card import QuantCard

EMULATED_FORMATS = ("FP8",)
_ATTR = "_omnicheck_kv_scales"  # on each emulated attention module: (k_scale, v_scale), None for dynamic


def emulated(card: QuantCard) -> bool:
    return bool(card.kv_cache) and str(card.kv_cache.get("format", "")).upper() in EMULATED_FORMATS


def scale_owner(tensor_name: str) -> str:
    """The attention module a stored k_scale / v_scale belongs to: `...self_attn.k_scale` (compressed-tensors) or
    `...self_attn.k_proj.k_scale` (ModelOpt)."""
    module = tensor_name.rsplit(".", 1)[0]
    return module.rsplit(".", 1)[0] if module.endswith((".k_proj", ".v_proj")) else module


def attach(model, card: QuantCard, stored: dict[str, Any], rename: Callable[[str], str] = lambda k: k) -> dict[str, Any]:
    """Emulate the card's KV-cache format on `model`; `stored` holds the k_scale / v_scale tensors by on-disk name.
    Returns what was done, for the load info and the execution path."""
    import torch

    fmt = str(card.kv_cache.get("format")) if card.kv_cache else None
    if not emulated(card):
        return {"kv_cache": f"{fmt} not emulated" if fmt else "not quantized"}
    scales: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in stored.items():
        owner = rename(scale_owner(name) + ".weight").rsplit(".", 1)[0]
        scales.setdefault(owner, {})[name.rsplit(".", 1)[1][0]] = tensor.detach().float().reshape(())
    layers = _attention_layers(model)
    if any(isinstance(getattr(module, "k_scale", None), torch.nn.Parameter) for _, module in layers):
        return {"kv_cache": f"{fmt} native: the loader attached its own KV-cache quantization"}
    unknown = sorted(set(scales) - {name for name, _ in layers})
    if unknown:
        from omnicheck.errors import ModelLoadError

        raise ModelLoadError(
            f"{card.path}: KV-cache scales stored for {unknown[0]} match no attention layer of {type(model).__name__}",
            "check that config.json is the one the checkpoint was exported with",
        )
    by_type: dict[Any, tuple] = {}
    static = 0
    for name, module in layers:
        own = scales.get(name)
        if own is not None and "k" in own and "v" in own:
            pair = (own["k"], own["v"])
            static += 1
        elif getattr(module, "is_kv_shared_layer", False) and getattr(module, "layer_type", None) in by_type:
            pair = by_type[module.layer_type]  # reads the cache its producer layer wrote, with that layer's scales
        else:
            pair = None  # dynamic per-tensor
        setattr(module, _ATTR, pair)
        by_type[getattr(module, "layer_type", None)] = pair
    _install(model, layers[0][1] if layers else None)
    how = "stored per-layer k_scale/v_scale" if static else "dynamic per-tensor scales (none stored)"
    return {"kv_cache": f"{fmt} emulated: K and V quantize-dequantized with {how}", "kv_layers": len(layers),
            "kv_static_layers": static}


def _attention_layers(model) -> list[tuple[str, Any]]:
    """The language model's attention modules, in layer order: those with a layer index and a k_proj (or sharing
    another layer's K/V)."""
    return [(name, module) for name, module in model.named_modules()
            if hasattr(module, "layer_idx") and (hasattr(module, "k_proj") or getattr(module, "is_kv_shared_layer", False))
            and "vision" not in name and "audio" not in name]


def _install(model, example) -> None:
    """Route the language model's attention through the quantizing wrapper around its current implementation."""
    if example is None:
        return
    from transformers import AttentionInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    config = example.config
    base_name = config._attn_implementation or "eager"
    if base_name.startswith("omnicheck_kv_"):
        return
    base = (ALL_ATTENTION_FUNCTIONS[base_name] if base_name in ALL_ATTENTION_FUNCTIONS
            else sys.modules[type(example).__module__].eager_attention_forward)
    name = f"omnicheck_kv_{base_name}"
    AttentionInterface.register(name, _wrapper(base))
    key = next((k for k in getattr(model.config, "sub_configs", {}) if getattr(model.config, k, None) is config), None)
    model.set_attn_implementation({key: name} if key else name)


def _wrapper(base: Callable) -> Callable:
    from omnicheck.formats import fp4

    def attention(module, query, key, value, attention_mask, **kwargs):
        if hasattr(module, _ATTR):
            pair = getattr(module, _ATTR)
            if pair is None:
                key, value = fp4.fake_quantize_fp8_dynamic(key), fp4.fake_quantize_fp8_dynamic(value)
            else:
                key, value = fp4.fake_quantize_fp8_static(key, pair[0]), fp4.fake_quantize_fp8_static(value, pair[1])
        return base(module, query, key, value, attention_mask, **kwargs)

    return attention


def kv_scale_tensors(path: Path, card: QuantCard) -> dict[str, Any]:
    """The stored k_scale / v_scale tensors of a checkpoint (small: one number per attention layer each)."""
    from safetensors import safe_open

    from omnicheck.formats.headers import weight_files

    wanted = set(card.kv_scale_tensors)
    out: dict[str, Any] = {}
    for file in weight_files(Path(path)):
        with safe_open(str(file), framework="pt") as handle:
            for key in wanted & set(handle.keys()):
                out[key] = handle.get_tensor(key)
    return out
