"""Tiny gemma4_unified models built offline: the architecture of Gemma 4 12B at a size a CPU runs in seconds.

Used by the demo panel and the tests. The weights are random (seeded) unless a trained checkpoint is
given; the tokenizer is a byte-level BPE trained here with `tokenizers`, so nothing comes from a hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "eos_token": "<eos>",
    "bos_token": "<bos>",
    "unk_token": "<unk>",
}
MEDIA_TOKENS = {
    "boi_token": "<start_of_image>",
    "eoi_token": "<end_of_image>",
    "image_token": "<image_soft_token>",
    "boa_token": "<start_of_audio>",
    "eoa_token": "<end_of_audio>",
    "audio_token": "<audio_soft_token>",
}
TURN_TOKENS = ["<start_of_turn>", "<end_of_turn>", "<|video|>"]

# Media placeholders are written by the template; the processor expands them to soft tokens.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}<image_soft_token>"
    "{% elif part['type'] == 'audio' %}<audio_soft_token>"
    "{% elif part['type'] == 'video' %}<|video|>"
    "{% endif %}{% endfor %}{% endif %}"
    "<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

CORPUS = [
    "A photo of a cat sitting on a wooden table next to a cup of coffee.",
    "The astronaut smiles in front of a flag. A rocket stands on the launch pad.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "How many clips did Natalia sell altogether in April and May? #### 72",
    "Write a short poem about the sea without using any commas.",
    "The quick brown fox jumps over the lazy dog. 0 1 2 3 4 5 6 7 8 9",
    "A man rides a bicycle down a busy street while cars pass by.",
    "Transcribe this audio. Describe this image in one sentence. Describe what happens in this video.",
]


def train_tokenizer(corpus: Sequence[str] | None = None, vocab_size: int = 512, split_digits: bool = False):
    """A byte-level BPE with the special tokens gemma4_unified's processor looks for.

    split_digits puts every digit in a token of its own (the trained model needs them apart for arithmetic).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL_TOKENS.values()) + list(MEDIA_TOKENS.values()) + TURN_TOKENS
    tokenizer = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level]) if split_digits else byte_level
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 4 if corpus is None else corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        extra_special_tokens=MEDIA_TOKENS,
        model_max_length=4096,
        padding_side="left",
        **SPECIAL_TOKENS,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_processor(tokenizer, video_frames: int = 4):
    from transformers import (
        Gemma4UnifiedAudioFeatureExtractor,
        Gemma4UnifiedImageProcessor,
        Gemma4UnifiedProcessor,
        Gemma4UnifiedVideoProcessor,
    )

    return Gemma4UnifiedProcessor(
        feature_extractor=Gemma4UnifiedAudioFeatureExtractor(),
        image_processor=Gemma4UnifiedImageProcessor(max_soft_tokens=70),
        tokenizer=tokenizer,
        video_processor=Gemma4UnifiedVideoProcessor(max_soft_tokens=70, num_frames=video_frames),
        chat_template=CHAT_TEMPLATE,
        image_seq_length=70,
        audio_seq_length=750,
    )


def gemma4_unified_config(
    tokenizer,
    *,
    hidden: int,
    layers: int,
    intermediate: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    vision_dim: int,
    posemb: int,
    sliding_window: int,
    layer_types: list[str],
):
    """A gemma4_unified config whose media token ids are the tokenizer's own."""
    from transformers import Gemma4UnifiedConfig

    ids = tokenizer.convert_tokens_to_ids
    return Gemma4UnifiedConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=intermediate,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            head_dim=head_dim,
            global_head_dim=head_dim,
            max_position_embeddings=4096,
            sliding_window=sliding_window,
            layer_types=layer_types,
            pad_token_id=ids("<pad>"),
            eos_token_id=[ids("<eos>"), ids("<end_of_turn>")],
            bos_token_id=ids("<bos>"),
        ),
        vision_config=dict(mm_embed_dim=vision_dim, output_proj_dims=vision_dim, mm_posemb_size=posemb),
        audio_config=dict(),
        boi_token_id=ids("<start_of_image>"),
        eoi_token_id=ids("<end_of_image>"),
        image_token_id=ids("<image_soft_token>"),
        video_token_id=ids("<|video|>"),
        boa_token_id=ids("<start_of_audio>"),
        eoa_token_index=ids("<end_of_audio>"),
        audio_token_id=ids("<audio_soft_token>"),
    )


def tiny_config(tokenizer, hidden: int = 64, layers: int = 2, intermediate: int = 128):
    return gemma4_unified_config(
        tokenizer, hidden=hidden, layers=layers, intermediate=intermediate, heads=2, kv_heads=1, head_dim=32,
        vision_dim=hidden, posemb=64, sliding_window=512,
        layer_types=["sliding_attention"] * (layers - 1) + ["full_attention"],
    )


def build_tiny_gemma4_unified(out_dir: Path, seed: int = 0, hidden: int = 64, layers: int = 2) -> Path:
    """Write a loadable gemma4_unified checkpoint folder (config, weights, tokenizer, processor)."""
    import torch
    from transformers import Gemma4UnifiedForConditionalGeneration

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    processor = build_processor(tokenizer)
    config = tiny_config(tokenizer, hidden=hidden, layers=layers)
    torch.manual_seed(seed)
    model = Gemma4UnifiedForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    (out_dir / "omnicheck_build.json").write_text(json.dumps({"builder": "tiny_gemma4_unified", "seed": seed}))
    return out_dir
