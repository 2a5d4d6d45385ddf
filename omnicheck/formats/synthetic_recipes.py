"""Header-only checkpoints of the Gemma 4 write-up recipes at full size, for the quant card's speed benchmark.

The tensor names and shapes come from the model itself (built on the meta device from a config of the public
class's sizes, not any real checkpoint's values); each recipe then lays them out as its tool's exporter does, as
seen in the tools' real outputs in fixtures/checkpoints:
  ct-fp8-block-kv   compressed-tensors FP8 128x128 blocks (weight F8, weight_scale [out/128, in/128]) + k/v_scale
  mo-nvfp4-mlp-kv   ModelOpt NVFP4 on the MLP (weight U8, weight_scale F8 per 16, weight_scale_2, input_scale) +
                    `k_proj.k_scale` / `v_proj.v_scale`
  mo-fp8-pb-wo      ModelOpt FP8_PB_WO (weight F8, weight_scale F32 [out/128, 1, in/128, 1])
  mo-moe-nvfp4      ModelOpt NVFP4 W4A4 on a 26B-A4B-class gemma4 MoE, experts unfused as experts.{i}.*_proj
  ct-e4b-nvfp4a16   compressed-tensors NVFP4A16 on an E4B-class gemma4 (towers, per-layer embeddings)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from omnicheck.formats.synthetic import LAYOUT_12B, config_json, write_sparse_shards

RECIPES = ("ct-fp8-block-kv", "mo-nvfp4-mlp-kv", "mo-fp8-pb-wo", "mo-moe-nvfp4", "ct-e4b-nvfp4a16")
_TOWERS = re.compile(r"(vision_tower|audio_tower|embed_vision|embed_audio|vision_embedder)")


def _gemma4_config(kind: str) -> dict[str, Any]:
    text = dict(model_type="gemma4_text", vocab_size=262144, num_attention_heads=16, head_dim=256, global_head_dim=512,
                sliding_window=1024, tie_word_embeddings=True)
    vision = dict(model_type="gemma4_vision", hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                  num_attention_heads=16, num_key_value_heads=16, head_dim=72)
    config: dict[str, Any] = {"architectures": ["Gemma4ForConditionalGeneration"], "model_type": "gemma4",
                              "dtype": "bfloat16", "tie_word_embeddings": True, "vision_config": vision}
    if kind == "moe":  # 26B-A4B class: a 128-expert MoE block beside a dense MLP in every layer
        text.update(hidden_size=2816, intermediate_size=2112, num_hidden_layers=30, num_key_value_heads=8,
                    hidden_size_per_layer_input=0, enable_moe_block=True, num_experts=128, top_k_experts=8,
                    moe_intermediate_size=704)
    else:  # E4B class: per-layer embeddings, an audio tower
        text.update(hidden_size=2560, intermediate_size=10240, num_hidden_layers=42, num_attention_heads=8,
                    num_key_value_heads=2, hidden_size_per_layer_input=256, vocab_size_per_layer_input=262144)
        vision.update(hidden_size=768, intermediate_size=3072, num_hidden_layers=16, num_attention_heads=12,
                      num_key_value_heads=12, head_dim=64)
        config["audio_config"] = {"model_type": "gemma4_audio"}
    text["layer_types"] = (["sliding_attention"] * 5 + ["full_attention"]) * (text["num_hidden_layers"] // 6)
    config["text_config"] = text
    return config


def _parameters(config: dict[str, Any]) -> dict[str, tuple[list[int], bool]]:
    """name -> (shape, is a Linear weight) of the model config.json describes, built on the meta device."""
    from omnicheck.formats.runtime import _meta_model

    model = _meta_model(json.dumps(config))
    import torch

    linear = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    return {n: (list(p.shape), n in linear) for n, p in model.named_parameters()}


def _nvfp4(name: str, shape: list[int], ct: bool, act: bool) -> dict[str, tuple[str, list[int]]]:
    base = name[: -len(".weight")]
    out, inp = shape
    if ct:
        tensors = {f"{base}.weight_packed": ("U8", [out, inp // 2]), f"{base}.weight_scale": ("F8_E4M3", [out, inp // 16]),
                   f"{base}.weight_global_scale": ("F32", [1])}
        return {**tensors, **({f"{base}.input_global_scale": ("F32", [1])} if act else {})}
    tensors = {name: ("U8", [out, inp // 2]), f"{base}.weight_scale": ("F8_E4M3", [out, inp // 16]),
               f"{base}.weight_scale_2": ("F32", [])}
    return {**tensors, **({f"{base}.input_scale": ("F32", [])} if act else {})}


def _fp8_block(name: str, shape: list[int], modelopt: bool) -> dict[str, tuple[str, list[int]]]:
    out, inp = shape
    rb, cb = -(-out // 128), -(-inp // 128)
    scale = ("F32", [rb, 1, cb, 1]) if modelopt else ("BF16", [rb, cb])
    return {name: ("F8_E4M3", shape), name[: -len(".weight")] + ".weight_scale": scale}


def recipe_layout(recipe: str) -> tuple[dict[str, Any], dict[str, tuple[str, list[int]]], dict[str, Any] | None]:
    """(config.json, tensors as name -> (dtype, shape), hf_quant_config.json or None) of one recipe at full size."""
    if recipe in ("ct-fp8-block-kv", "mo-nvfp4-mlp-kv"):
        config = config_json("bf16", LAYOUT_12B)
    else:
        config = _gemma4_config("moe" if recipe == "mo-moe-nvfp4" else "e4b")
    params = _parameters(config)
    layers = config["text_config"]["num_hidden_layers"]
    tensors: dict[str, tuple[str, list[int]]] = {}
    for name, (shape, is_linear) in params.items():
        language = "language_model" in name and not _TOWERS.search(name)
        quantize = is_linear and language and "router" not in name
        if recipe == "mo-nvfp4-mlp-kv":
            quantize = quantize and ".mlp." in name
        if recipe == "mo-moe-nvfp4" and ".experts." in name:  # 3-D fused in the model, unfused by ModelOpt's export
            experts = name.rsplit(".", 1)[0]
            for i in range(shape[0]):
                if name.endswith("gate_up_proj"):
                    half = [shape[1] // 2, shape[2]]
                    tensors.update(_nvfp4(f"{experts}.{i}.gate_proj.weight", half, False, True))
                    tensors.update(_nvfp4(f"{experts}.{i}.up_proj.weight", half, False, True))
                else:
                    tensors.update(_nvfp4(f"{experts}.{i}.down_proj.weight", shape[1:], False, True))
            continue
        if not quantize:
            tensors[name] = ("BF16", shape)
        elif recipe in ("ct-fp8-block-kv", "mo-fp8-pb-wo"):
            tensors.update(_fp8_block(name, shape, recipe.startswith("mo-")))
        else:
            tensors.update(_nvfp4(name, shape, recipe.startswith("ct-"), recipe != "ct-e4b-nvfp4a16"))
    hf_quant = None
    if recipe.startswith("ct-"):
        weights = ({"num_bits": 8, "type": "float", "strategy": "block", "block_structure": [128, 128],
                    "symmetric": True, "dynamic": False} if recipe == "ct-fp8-block-kv" else
                   {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16, "symmetric": True,
                    "dynamic": False})
        config["quantization_config"] = {
            "quant_method": "compressed-tensors", "quantization_status": "compressed", "version": "0.19.0",
            "format": "naive-quantized" if recipe == "ct-fp8-block-kv" else "nvfp4-pack-quantized",
            "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights, "input_activations": None}},
            "ignore": sorted({n.rsplit(".", 1)[0] for n, (_, lin) in params.items()
                              if lin and ("language_model" not in n or _TOWERS.search(n))}),
            "kv_cache_scheme": ({"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False,
                                 "symmetric": True} if recipe == "ct-fp8-block-kv" else None),
        }
        if recipe == "ct-fp8-block-kv":
            for i in range(layers):
                for kv in "kv":
                    tensors[f"model.language_model.layers.{i}.self_attn.{kv}_scale"] = ("BF16", [1])
    else:
        algo = {"mo-fp8-pb-wo": "fp8_pb_wo"}.get(recipe, "NVFP4")
        kv_algo = "FP8" if recipe == "mo-nvfp4-mlp-kv" else None
        hf_quant = {"producer": {"name": "modelopt", "version": "0.47.0"},
                    "quantization": {"quant_algo": algo, "kv_cache_quant_algo": kv_algo,
                                     "exclude_modules": ["lm_head", "model.embed_vision*"] + (
                                         ["model.vision_tower*"] if "vision_tower" in json.dumps(list(params)[:400])
                                         else [])}}
        if kv_algo:
            for i in range(layers):
                for kv in "kv":
                    tensors[f"model.language_model.layers.{i}.self_attn.{kv}_proj.{kv}_scale"] = ("F32", [])
    return config, tensors, hf_quant


def write_recipe_checkpoint(out: Path, recipe: str) -> int:
    """Write config.json (+ hf_quant_config.json), sparse shards and the index; returns declared tensor bytes."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config, tensors, hf_quant = recipe_layout(recipe)
    (out / "config.json").write_text(json.dumps(config, indent=1))
    if hf_quant is not None:
        (out / "hf_quant_config.json").write_text(json.dumps(hf_quant, indent=1))
    return write_sparse_shards(out, tensors)
