"""In words: what will actually run in-process (transformers / omnicheck) for a checkpoint on this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omnicheck.formats.card import QuantCard

_ACT_WORDS = {
    "nvfp4": "NVFP4: e2m1 per 16-value block, FP8 block scales under the stored global scale",
    "fp8": "FP8 e4m3",
}


def _activation_words(card: "QuantCard") -> str:
    acts = [m.activation for m in card.modules if m.activation is not None]
    linear = [m for m in card.modules if m.group not in ("embeddings",)]
    first = acts[0]
    what = _ACT_WORDS.get(first.format, first.format)
    if first.format == "fp8":
        what += ", dynamic per-token scales" if first.dynamic is True else ", static stored scale"
    return f"{what}; on {len(acts)} of {len(linear)} linear layers ({card.scope})"


def _kv_words(card: "QuantCard") -> str:
    if not card.kv_cache:
        return "not quantized (model dtype)"
    from omnicheck.formats.kvcache import emulated

    fmt = card.kv_cache.get("format")
    if not emulated(card):
        return f"{fmt} in deployment; not emulated in-process (KV cache in the model dtype)"
    how = ("the stored per-layer k_scale / v_scale" if card.kv_scale_tensors
           else "a per-tensor scale computed per call (no scales stored)")
    return f"emulated by omnicheck ({fmt} e4m3: K and V quantized and dequantized with {how} before every attention)"


def execution_path(card: "QuantCard") -> dict[str, str]:
    quantized = card.quantized_modules
    fmt = quantized[0].weight.format.upper() if quantized else ""
    kv = _kv_words(card)
    if card.format == "unquantized" or not quantized:
        dtype = card.modules[0].weight.format if card.modules else "unknown"
        return {"weights": f"native {dtype} (unquantized)", "activations": "not quantized", "kv_cache": kv}
    if card.format == "compressed-tensors":
        weights = f"{fmt} stored compressed; dequantized by compressed-tensors inside transformers in every forward"
        if card.activation_quantized:
            acts = f"fake-quantized by compressed-tensors ({_activation_words(card)})"
        else:
            acts = f"not quantized (weight-only {card.scheme})"
        return {"weights": weights, "activations": acts, "kv_cache": kv}
    if card.format == "modelopt":
        block = quantized[0].weight.block
        if fmt == "NVFP4":
            weights = "emulated by omnicheck (ModelOpt NVFP4: e2m1 x FP8 block scales x weight_scale_2, dequantized at load)"
        elif block:
            weights = (f"emulated by omnicheck (ModelOpt {fmt} per-block {block[0]}x{block[1]}: dequantized at load with "
                       "the stored block scales)")
        else:
            weights = f"emulated by omnicheck (ModelOpt {fmt}: dequantized at load with the stored scales)"
        if any(m.group == "moe_experts" and m.weight.quantized and not m.experts for m in card.modules):
            weights = weights[:-1] + "; per-expert exports re-fused into the model's 3-D expert tensors)"
        if card.activation_quantized:
            acts = f"fake-quantized by omnicheck ({_activation_words(card)}, stored input_scale)"
        else:
            acts = f"not quantized (weight-only {card.scheme})"
        return {"weights": weights, "activations": acts, "kv_cache": kv}
    return {
        "weights": f"loaded by transformers' {card.format} integration",
        "activations": "as transformers' integration runs them (not inspected)",
        "kv_cache": kv,
    }
