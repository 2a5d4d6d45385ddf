"""compressed-tensors checkpoints (llmcompressor's output): scheme names and per-module facts."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from omnicheck.formats.card import ActQuant, ModuleFacts, QuantCard, module_facts, stored_weight
from omnicheck.formats.headers import TensorInfo


def scheme_name(weights: dict[str, Any] | None, inputs: dict[str, Any] | None) -> str:
    """The preset name compressed-tensors would give this weight/activation pair (NVFP4, FP8_DYNAMIC, W4A16...)."""
    if not weights:
        return "UNQUANTIZED"
    bits = weights.get("num_bits")
    wtype = weights.get("type", "int")
    strategy = weights.get("strategy")
    group = weights.get("group_size")
    if wtype == "float" and bits == 4:
        if strategy == "tensor_group" and group == 16:
            return "NVFP4" if inputs else "NVFP4A16"
        if group == 32:
            return "MXFP4" if inputs else "MXFP4A16"
    if wtype == "float" and bits == 8:
        if strategy == "block":
            return "FP8_BLOCK" if inputs else "FP8_BLOCK_A16"
        if inputs and inputs.get("dynamic") is True:
            return "FP8_DYNAMIC"
        return "FP8" if inputs else "FP8A16"
    if wtype == "int":
        abits = inputs.get("num_bits") if inputs else 16
        return f"W{bits}A{abits}"
    return f"{wtype.upper()}{bits}"


def activation_of(inputs: dict[str, Any] | None, params: dict[str, TensorInfo]) -> ActQuant | None:
    if not inputs:
        return None
    bits = int(inputs.get("num_bits", 8))
    kind = inputs.get("type", "int")
    fmt = "nvfp4" if (kind == "float" and bits == 4) else ("fp8" if kind == "float" and bits == 8 else f"{kind}{bits}")
    stored = next((p for p in ("input_global_scale", "input_scale") if p in params), None)
    return ActQuant(
        format=fmt,
        bits=bits,
        strategy=str(inputs.get("strategy", "tensor")),
        group_size=inputs.get("group_size"),
        dynamic=inputs.get("dynamic", False),
        stored_scale=stored,
    )


def target_matches(target: str, name: str, class_name: str | None = "Linear") -> bool:
    """compressed-tensors' matching rule: exact name, 're:' regex (re.match), or the module's class name."""
    if target.startswith("re:"):
        return re.match(target[3:], name) is not None
    return target == name or (class_name is not None and target == class_name)


def group_for(name: str, groups: dict[str, Any]) -> dict[str, Any] | None:
    """The config group whose targets claim this module (most specific first: names before class names)."""
    best = None
    for group in groups.values():
        for target in group.get("targets") or []:
            if target_matches(target, name, None):
                return group
            if target_matches(target, name, "Linear"):
                best = best or group
    return best


def describe(path: Path, config: dict[str, Any], qcfg: dict[str, Any], modules_by_name, table) -> QuantCard:
    groups = qcfg.get("config_groups") or {}
    modules: list[ModuleFacts] = []
    for name, params in modules_by_name.items():
        group = group_for(name, groups)
        int_bits = (group or {}).get("weights", {}).get("num_bits") if group else None
        weight = stored_weight(params, int_bits)
        block = ((group or {}).get("weights") or {}).get("block_structure")
        if weight.quantized and block and (group or {}).get("weights", {}).get("strategy") == "block":
            weight = dataclasses.replace(weight, block=(int(block[0]), int(block[1])), group_size=None,
                                         scales=f"per-block {block[0]}x{block[1]} scales")
        activation = activation_of(group.get("input_activations"), params) if (group and weight.quantized) else None
        modules.append(module_facts(name, weight, activation))
    names = sorted({scheme_name(g.get("weights"), g.get("input_activations")) for g in groups.values()})
    scheme = names[0] if len(names) == 1 else ("MIXED(" + ",".join(names) + ")" if names else "UNQUANTIZED")
    producer: dict[str, Any] = {"name": "compressed-tensors", "version": qcfg.get("version")}
    if (path / "recipe.yaml").exists():
        producer = {"name": "llmcompressor", "compressed_tensors_version": qcfg.get("version")}
    kv = qcfg.get("kv_cache_scheme")
    kv_cache = None
    if kv:
        kv_cache = {
            "format": scheme_name(kv, None).replace("A16", ""),
            "bits": kv.get("num_bits"),
            "type": kv.get("type"),
            "strategy": kv.get("strategy"),
            "dynamic": kv.get("dynamic"),
        }
    return QuantCard(
        path=path,
        format="compressed-tensors",
        scheme=scheme,
        model_type=str(config.get("model_type", "unknown")),
        modules=modules,
        producer=producer,
        kv_cache=kv_cache,
        ignore=list(qcfg.get("ignore") or []),
        config=dict(qcfg),
    )
