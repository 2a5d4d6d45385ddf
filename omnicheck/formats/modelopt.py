"""NVIDIA ModelOpt checkpoints: the card, and a loader transformers does not have.

A ModelOpt NVFP4 export stores, per quantized Linear: `weight` (uint8, two e2m1 codes per byte, low nibble
first), `weight_scale` (float8 e4m3, one per 16 inputs), `weight_scale_2` (fp32 per-tensor) and, when activations
are quantized, `input_scale` (fp32 per-tensor, = calibrated amax / (6 * 448)). transformers refuses these files
(shape mismatch), so omnicheck dequantizes the weights once at load and fake-quantizes each quantized Linear's
input in every forward with the stored input_scale, as an FP4 GEMM would see it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnicheck.checkpoint import load_processor, model_class
from omnicheck.errors import ModelLoadError
from omnicheck.formats.card import ActQuant, ModuleFacts, QuantCard, module_facts, stored_weight

WEIGHT_ONLY_ALGOS = ("W4A16_NVFP4", "FP8_PB_WO", "W4A16_AWQ", "W4A8_AWQ", "NVFP4_WO")
_QUANT_PARAMS = ("weight_scale", "weight_scale_2", "input_scale", "pre_quant_scale", "k_scale", "v_scale",
                 "k_bmm_quantizer._amax", "v_bmm_quantizer._amax")


def quant_section(hf_quant: dict[str, Any], qcfg: dict[str, Any]) -> dict[str, Any]:
    """ModelOpt's settings, from hf_quant_config.json or config.json's quantization_config (newer exports)."""
    section = dict(hf_quant.get("quantization") or {})
    for key in ("quant_algo", "kv_cache_quant_algo", "group_size", "exclude_modules"):
        if key not in section and key in qcfg:
            section[key] = qcfg[key]
    if "exclude_modules" not in section and "ignore" in qcfg:
        section["exclude_modules"] = qcfg["ignore"]
    return section


def activation_of(algo: str, weight_format: str, params: dict[str, Any]) -> ActQuant | None:
    if "input_scale" not in params or algo.upper() in WEIGHT_ONLY_ALGOS:
        return None
    if weight_format == "nvfp4":
        return ActQuant("nvfp4", 4, "tensor_group", 16, "local", "input_scale")
    if weight_format == "fp8":
        return ActQuant("fp8", 8, "tensor", None, False, "input_scale")
    return None


def describe(path: Path, config: dict[str, Any], hf_quant: dict[str, Any], qcfg: dict[str, Any], modules_by_name,
             table) -> QuantCard:
    section = quant_section(hf_quant, qcfg)
    algo = str(section.get("quant_algo") or "UNKNOWN")
    layer_algos = section.get("quantized_layers") or {}
    modules: list[ModuleFacts] = []
    for name, params in modules_by_name.items():
        weight = stored_weight(params)
        layer_algo = str((layer_algos.get(name) or {}).get("quant_algo", algo))
        activation = activation_of(layer_algo, weight.format, params) if weight.quantized else None
        modules.append(module_facts(name, weight, activation))
    kv_algo = section.get("kv_cache_quant_algo")
    kv_cache = {"format": str(kv_algo), "bits": 8 if "FP8" in str(kv_algo).upper() else None} if kv_algo else None
    producer = dict(hf_quant.get("producer") or {"name": "modelopt"})
    return QuantCard(
        path=path,
        format="modelopt",
        scheme=algo,
        model_type=str(config.get("model_type", "unknown")),
        modules=modules,
        producer=producer,
        kv_cache=kv_cache,
        ignore=list(section.get("exclude_modules") or []),
        config=section,
    )


# --- loading ---


def _emulated_linear_class():
    import torch
    import torch.nn.functional as F

    from omnicheck.formats import fp4

    class EmulatedQuantLinear(torch.nn.Linear):
        """A Linear holding dequantized weights that fake-quantizes its input as the deployed kernel would."""

        activation_format: str | None
        input_s2: torch.Tensor | None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.activation_format == "nvfp4":
                x = fp4.fake_quantize_nvfp4(x, self.input_s2)
            elif self.activation_format == "fp8":
                x = fp4.fake_quantize_fp8_static(x, self.input_s2)
            return F.linear(x, self.weight, self.bias)

        def extra_repr(self) -> str:
            return f"{super().extra_repr()}, activations={self.activation_format or 'unquantized'}"

    return EmulatedQuantLinear


_CLASS_CACHE: dict[str, type] = {}


def emulated_linear_class() -> type:
    if "cls" not in _CLASS_CACHE:
        _CLASS_CACHE["cls"] = _emulated_linear_class()
    return _CLASS_CACHE["cls"]


def make_emulated_linear(weight, bias, activation: str | None, input_s2):
    """An EmulatedQuantLinear around an already-dequantized weight."""
    import torch

    cls = emulated_linear_class()
    layer = cls(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    layer.weight = torch.nn.Parameter(weight, requires_grad=False)
    if bias is not None:
        layer.bias = torch.nn.Parameter(bias, requires_grad=False)
    layer.activation_format = activation
    layer.register_buffer("input_s2", input_s2 if input_s2 is None else input_s2.float().reshape(()), persistent=False)
    return layer


def dequantize_module(params: dict[str, Any], fmt: str):
    """Stored tensors of one quantized module -> float32 weight."""
    from omnicheck.formats import fp4

    if fmt == "nvfp4":
        return fp4.dequantize_nvfp4(params["weight"], params["weight_scale"], params["weight_scale_2"])
    if fmt == "fp8":
        return fp4.dequantize_fp8(params["weight"], params["weight_scale"])
    raise ModelLoadError(f"ModelOpt weight format {fmt!r} is not supported by omnicheck's loader",
                         "export the variant as NVFP4, W4A16_NVFP4 or FP8")


def load_modelopt_model(path: Path | str, device: str = "cpu", dtype: str | None = None, card: QuantCard | None = None):
    """Build the model from config.json and fill it from a ModelOpt export, quantized Linears emulated.

    Returns (model, info) where info records what was emulated. Raises ModelLoadError when a stored tensor has no
    place in the model or a model weight has no stored tensor (the module would run on random weights).
    """
    import torch
    from safetensors import safe_open
    from transformers import AutoConfig

    from omnicheck.formats.card import read_card
    from omnicheck.formats.headers import weight_files
    from omnicheck.formats.runtime import runtime_renamer

    path = Path(path)
    card = card or read_card(path)
    if card.format != "modelopt":
        raise ModelLoadError(f"{path} is a {card.format} checkpoint, not ModelOpt", "load it with transformers")
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    for holder in (config, getattr(config, "text_config", None)):
        if holder is not None and hasattr(holder, "quantization_config"):
            delattr(holder, "quantization_config")
    torch_dtype = getattr(torch, dtype) if dtype else _config_dtype(config)
    model = model_class(config.to_dict()).from_config(config, dtype=torch_dtype)
    model.eval()
    rename = runtime_renamer(model)
    facts = {m.name: m for m in card.modules}

    stored: dict[str, Any] = {}
    for file in weight_files(path):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                stored[key] = handle.get_tensor(key)

    modules = dict(model.named_modules())
    consumed: set[str] = set()
    emulated: dict[str, str] = {}
    kv_scales: list[str] = []
    for name, fact in facts.items():
        if not fact.weight.quantized:
            continue
        runtime = rename(name + ".weight").rsplit(".", 1)[0]
        target = modules.get(runtime)
        if not isinstance(target, torch.nn.Linear):
            raise ModelLoadError(
                f"{path}: quantized tensor {name}.weight has no Linear {runtime!r} in {type(model).__name__}",
                "check that config.json matches the exported weights (re-export with the same transformers model)",
            )
        params = {p: stored[f"{name}.{p}"] for p in ("weight", "weight_scale", "weight_scale_2", "input_scale", "bias")
                  if f"{name}.{p}" in stored}
        consumed.update(f"{name}.{p}" for p in params)
        weight = dequantize_module(params, fact.weight.format).to(torch_dtype)
        if tuple(weight.shape) != (target.out_features, target.in_features):
            raise ModelLoadError(
                f"{path}: {name} dequantizes to {tuple(weight.shape)} but {runtime} is "
                f"{(target.out_features, target.in_features)}",
                "re-export the checkpoint",
            )
        act = fact.activation.format if fact.activation else None
        bias = params.get("bias")
        layer = make_emulated_linear(weight, None if bias is None else bias.to(torch_dtype), act,
                                     params.get("input_scale"))
        parent_name, _, child = runtime.rpartition(".")
        setattr(modules[parent_name] if parent_name else model, child, layer)
        emulated[runtime] = f"{fact.weight.format} weights, {act or 'unquantized'} activations"

    plain: dict[str, Any] = {}
    for key, tensor in stored.items():
        if key in consumed:
            continue
        if key.rsplit(".", 1)[-1] in _QUANT_PARAMS or "_quantizer." in key:
            kv_scales.append(key)  # KV-cache and other scales with no in-process use
            consumed.add(key)
            continue
        plain[rename(key)] = tensor
    result = model.load_state_dict(plain, strict=False)
    missing = [k for k in result.missing_keys if not _derived(model, k) and k.rsplit(".", 1)[0] not in emulated]
    unexpected = list(result.unexpected_keys)
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing ({', '.join(sorted(missing)[:4])})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected ({', '.join(sorted(unexpected)[:4])})")
        raise ModelLoadError(
            f"loading ModelOpt checkpoint {path} left weights uninitialized or unused: {'; '.join(problems)}",
            "those modules would run with random weights; re-export with the model's own module names",
        )
    if getattr(model.config, "tie_word_embeddings", False) or _text_tied(model.config):
        model.tie_weights()
    model.to(device)
    info = {"emulated_modules": emulated, "unused_scales": kv_scales, "dtype": str(torch_dtype).replace("torch.", "")}
    return model, info


def load_modelopt(path: Path | str, device: str = "cpu", dtype: str | None = None):
    """(model, processor, tokenizer) for a ModelOpt export, processor and tokenizer as the hf backend loads them."""
    model, _ = load_modelopt_model(path, device=device, dtype=dtype)
    processor, tokenizer = load_processor(Path(path))
    return model, processor, tokenizer


def _config_dtype(config):
    import torch

    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str) and hasattr(torch, value):
        return getattr(torch, value)
    return torch.float32


def _text_tied(config) -> bool:
    text = getattr(config, "text_config", None)
    return bool(getattr(text, "tie_word_embeddings", False))


def _derived(model, key: str) -> bool:
    """Keys a load may leave alone: tied heads and buffers computed at construction."""
    if key.endswith(("inv_freq", "position_ids")):
        return True
    if key.startswith("lm_head.") and (getattr(model.config, "tie_word_embeddings", False) or _text_tied(model.config)):
        return True
    return False
