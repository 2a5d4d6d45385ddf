"""Header-only synthetic checkpoints of realistic size, for the quant card's speed benchmark and tests.

Each safetensors shard holds a real header and is extended to its full declared size as a sparse file
(truncate), so a 24 GB checkpoint costs no disk and its headers are exactly what a real one would present.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

# A Gemma-4-12B-class gemma4_unified layout (sizes of the public 12B class, not any real checkpoint's values).
LAYOUT_12B = dict(hidden=3840, intermediate=15360, layers=48, heads=16, kv_heads=8, head_dim=256, vocab=262144,
                  patch=6912, audio=640)
_BYTES = {"BF16": 2, "F32": 4, "U8": 1, "F8_E4M3": 1}


def _linear(name: str, out_f: int, in_f: int, scheme: str, act: bool) -> dict[str, tuple[str, list[int]]]:
    if scheme == "bf16":
        return {f"{name}.weight": ("BF16", [out_f, in_f])}
    tensors = {
        f"{name}.weight_packed": ("U8", [out_f, in_f // 2]),
        f"{name}.weight_scale": ("F8_E4M3", [out_f, in_f // 16]),
        f"{name}.weight_global_scale": ("F32", [1]),
    }
    if act:
        tensors[f"{name}.input_global_scale"] = ("F32", [1])
    return tensors


def tensor_layout(scheme: str = "bf16", layout: dict[str, int] = LAYOUT_12B) -> dict[str, tuple[str, list[int]]]:
    """name -> (dtype, shape) for every tensor of the model, with on-disk names as llmcompressor writes them."""
    h, inter, n = layout["hidden"], layout["intermediate"], layout["layers"]
    q_out, kv_out = layout["heads"] * layout["head_dim"], layout["kv_heads"] * layout["head_dim"]
    act = scheme == "nvfp4"
    tensors: dict[str, tuple[str, list[int]]] = {
        "model.language_model.embed_tokens.weight": ("BF16", [layout["vocab"], h]),
        "model.language_model.norm.weight": ("BF16", [h]),
        "model.vision_embedder.patch_dense.weight": ("BF16", [h, layout["patch"]]),
        "model.vision_embedder.patch_dense.bias": ("BF16", [h]),
        "model.embed_vision.embedding_projection.weight": ("BF16", [h, h]),
        "model.embed_audio.embedding_projection.weight": ("BF16", [h, layout["audio"]]),
    }
    for i in range(n):
        prefix = f"model.language_model.layers.{i}"
        for norm in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                     "post_feedforward_layernorm"):
            tensors[f"{prefix}.{norm}.weight"] = ("BF16", [h])
        tensors[f"{prefix}.self_attn.q_norm.weight"] = ("BF16", [layout["head_dim"]])
        tensors[f"{prefix}.self_attn.k_norm.weight"] = ("BF16", [layout["head_dim"]])
        for proj, out_f, in_f in (("self_attn.q_proj", q_out, h), ("self_attn.k_proj", kv_out, h),
                                  ("self_attn.v_proj", kv_out, h), ("self_attn.o_proj", h, q_out),
                                  ("mlp.gate_proj", inter, h), ("mlp.up_proj", inter, h), ("mlp.down_proj", h, inter)):
            tensors.update(_linear(f"{prefix}.{proj}", out_f, in_f, scheme, act))
    return tensors


def config_json(scheme: str, layout: dict[str, int] = LAYOUT_12B) -> dict[str, Any]:
    n = layout["layers"]
    config: dict[str, Any] = {
        "architectures": ["Gemma4UnifiedForConditionalGeneration"],
        "model_type": "gemma4_unified",
        "dtype": "bfloat16",
        "tie_word_embeddings": True,
        "image_token_id": 6, "audio_token_id": 9, "video_token_id": 12, "boi_token_id": 4, "eoi_token_id": 5,
        "boa_token_id": 7, "eoa_token_index": 8,
        "text_config": {
            "model_type": "gemma4_unified_text", "hidden_size": layout["hidden"],
            "intermediate_size": layout["intermediate"], "num_hidden_layers": n,
            "num_attention_heads": layout["heads"], "num_key_value_heads": layout["kv_heads"],
            "head_dim": layout["head_dim"], "global_head_dim": layout["head_dim"], "vocab_size": layout["vocab"],
            "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * (n // 6),
            "tie_word_embeddings": True,
        },
        "vision_config": {"model_type": "gemma4_unified_vision", "mm_embed_dim": layout["hidden"],
                          "output_proj_dims": layout["hidden"]},
        "audio_config": {"model_type": "gemma4_unified_audio"},
    }
    if scheme == "nvfp4":
        args = {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16, "symmetric": True,
                "scale_dtype": "torch.float8_e4m3fn"}
        config["quantization_config"] = {
            "quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized", "version": "0.19.0",
            "quantization_status": "compressed", "kv_cache_scheme": None,
            "config_groups": {"group_0": {"targets": ["re:.*language_model.*_proj$"], "format": "nvfp4-pack-quantized",
                                          "weights": {**args, "dynamic": False},
                                          "input_activations": {**args, "dynamic": "local"}}},
            "ignore": ["lm_head", "model.vision_embedder.patch_dense", "model.embed_vision.embedding_projection",
                       "model.embed_audio.embedding_projection"],
        }
    return config


def write_header_only_checkpoint(out: Path, scheme: str = "bf16", shard_bytes: int = 5_000_000_000,
                                 layout: dict[str, int] = LAYOUT_12B) -> int:
    """Write config.json, sparse shards and the index; returns the declared total of tensor bytes."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config_json(scheme, layout), indent=1))
    return write_sparse_shards(out, tensor_layout(scheme, layout), shard_bytes)


def write_sparse_shards(out: Path, tensors: dict[str, tuple[str, list[int]]], shard_bytes: int = 5_000_000_000) -> int:
    """Safetensors shards holding real headers for `tensors` (name -> (dtype, shape)), their data regions sparse,
    and the index; returns the declared total of tensor bytes."""
    shards: list[dict[str, tuple[str, list[int]]]] = [{}]
    size = 0
    for name, (dtype, shape) in tensors.items():
        nbytes = _BYTES[dtype] * _prod(shape)
        if size and size + nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = (dtype, shape)
        size += nbytes
    weight_map, total = {}, 0
    for index, shard in enumerate(shards, 1):
        file_name = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
        header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name, (dtype, shape) in shard.items():
            end = offset + _BYTES[dtype] * _prod(shape)
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}
            offset = end
            weight_map[name] = file_name
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        with open(out / file_name, "wb") as handle:
            handle.write(struct.pack("<Q", len(raw)))
            handle.write(raw)
            handle.truncate(8 + len(raw) + offset)  # sparse: the data region occupies no disk blocks
        total += offset
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1)
    )
    return total


def _prod(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
