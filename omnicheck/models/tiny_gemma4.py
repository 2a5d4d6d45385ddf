"""Tiny `gemma4` checkpoints built offline: the E4B family's layout and the 26B-A4B's MoE layout at CPU size.

`gemma4` (not `gemma4_unified`) has real vision and audio towers (a ViT with pooling, a conformer), a
multimodal embedder per tower, and optionally per-layer embeddings (PLE: E2B/E4B) or a mixture-of-experts block
beside the dense MLP in every decoder layer (26B-A4B: fused 3-D expert tensors and a router). Both variants share
the tokenizer and chat template of `omnicheck.models.tiny`; weights are random (seeded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from omnicheck.models.tiny import CHAT_TEMPLATE, train_tokenizer

Variant = Literal["e4b", "moe"]
IMAGE_SOFT_TOKENS = 70  # the smallest budget Gemma4ImageProcessor accepts


def gemma4_config(tokenizer, variant: Variant, hidden: int = 64, layers: int = 2):
    """A small Gemma4Config: E4B-style (per-layer embeddings, MLP 4x wide as E4B's: 128x128 FP8 blocks tile it) or
    MoE-style (a dense MLP as wide as the model beside 4 experts of half that, top 2, as 26B-A4B proportions go)."""
    from transformers import Gemma4Config

    ids = tokenizer.convert_tokens_to_ids
    text = dict(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden if variant == "e4b" else hidden, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, global_head_dim=32, max_position_embeddings=4096,
        sliding_window=512, layer_types=["sliding_attention"] * (layers - 1) + ["full_attention"],
        pad_token_id=ids("<pad>"), eos_token_id=[ids("<eos>"), ids("<end_of_turn>")], bos_token_id=ids("<bos>"),
        vocab_size_per_layer_input=len(tokenizer), hidden_size_per_layer_input=16 if variant == "e4b" else 0,
    )
    if variant == "moe":
        text.update(enable_moe_block=True, num_experts=4, top_k_experts=2, moe_intermediate_size=hidden // 2)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  num_key_value_heads=2, head_dim=16, patch_size=16, pooling_kernel_size=3,
                  position_embedding_size=256)
    # subsampling_conv_channels: the first must equal the 128 mel bins
    audio = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, subsampling_conv_channels=[128, 4],
                 output_proj_dims=32, conv_kernel_size=5)
    return Gemma4Config(
        text_config=text, vision_config=vision, audio_config=audio,
        boi_token_id=ids("<start_of_image>"), eoi_token_id=ids("<end_of_image>"),
        image_token_id=ids("<image_soft_token>"), video_token_id=ids("<|video|>"),
        boa_token_id=ids("<start_of_audio>"), eoa_token_index=ids("<end_of_audio>"),
        audio_token_id=ids("<audio_soft_token>"),
    )


def build_processor(tokenizer, video_frames: int = 4):
    from transformers import Gemma4AudioFeatureExtractor, Gemma4ImageProcessor, Gemma4Processor, Gemma4VideoProcessor

    return Gemma4Processor(
        feature_extractor=Gemma4AudioFeatureExtractor(),
        image_processor=Gemma4ImageProcessor(max_soft_tokens=IMAGE_SOFT_TOKENS),
        tokenizer=tokenizer,
        video_processor=Gemma4VideoProcessor(max_soft_tokens=IMAGE_SOFT_TOKENS, num_frames=video_frames),
        chat_template=CHAT_TEMPLATE,
        image_seq_length=IMAGE_SOFT_TOKENS,
    )


def build_tiny_gemma4(out_dir: Path, variant: Variant = "e4b", seed: int = 0) -> Path:
    """Write a loadable gemma4 checkpoint folder (config, weights, tokenizer, processor)."""
    import torch
    from transformers import Gemma4ForConditionalGeneration

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    config = gemma4_config(tokenizer, variant)
    torch.manual_seed(seed)
    model = Gemma4ForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.save_pretrained(out_dir)
    build_processor(tokenizer).save_pretrained(out_dir)
    (out_dir / "omnicheck_build.json").write_text(json.dumps({"builder": f"tiny_gemma4_{variant}", "seed": seed}))
    return out_dir
