"""Tiny Qwen2.5-Omni checkpoints built offline: the second omni family the transformers backend is tested on.

Laid out as Qwen/Qwen2.5-Omni-7B is published: a full `qwen2_5_omni` config (thinker_config, talker_config,
token2wav_config), `thinker.*`, `talker.*` and `token2wav.*` weights, `spk_dict.pt`, a Qwen2-style tokenizer with
the omni special tokens, and the Qwen2.5-Omni processor (Qwen2-VL image and video processors, Whisper features)
with its chat template. Weights are random (seeded); the tokenizer is a byte-level BPE trained here.
"""

from __future__ import annotations

import json
from pathlib import Path

from omnicheck.models.tiny import CORPUS

EOS = "<|im_end|>"
PAD = "<|endoftext|>"
# Attribute names are what Qwen2_5OmniProcessor reads off the tokenizer.
MEDIA_TOKENS = {
    "audio_token": "<|AUDIO|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
    "image_token": "<|IMAGE|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
}
SPECIALS = [PAD, "<|im_start|>", EOS, *MEDIA_TOKENS.values(), "<|vision_pad|>"]
# Talker-side text tokens (its text stream's bos/eos/pad); unused by the thinker but must be valid ids.
TTS_TOKENS = ["<tts_pad>", "<tts_text_bos>", "<tts_text_eod>", "<tts_text_bos_single>"]

# The published template's structure: a default system turn, <|im_start|>role ... <|im_end|>, and each media part
# as a bos / placeholder / eos triple that the processor expands to one token per encoder output.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif part['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif part['type'] == 'video' %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Images and video frames are resized into [MIN_PIXELS, MAX_PIXELS]: 4x4 merged tokens at most per picture.
PATCH = 14
MERGE = 2
MIN_PIXELS = (PATCH * MERGE) ** 2
MAX_PIXELS = (PATCH * MERGE) ** 2 * 16
SPEAKER = "Chelsie"


def train_tokenizer(vocab_size: int = 512):
    """A byte-level BPE with Qwen2.5-Omni's special tokens; the processor finds its media tokens by attribute."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS + TTS_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        extra_special_tokens=MEDIA_TOKENS,
        model_max_length=32768,
        padding_side="left",
        eos_token=EOS,
        pad_token=PAD,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_processor(tokenizer):
    from transformers import (
        Qwen2_5OmniProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        WhisperFeatureExtractor,
    )

    pixels = {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS, "patch_size": PATCH, "merge_size": MERGE}
    return Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels),
        feature_extractor=WhisperFeatureExtractor(feature_size=128, return_attention_mask=True),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def tiny_config(tokenizer, hidden: int = 64, layers: int = 2):
    """A qwen2_5_omni config with every tower shrunk; token ids are the tokenizer's own."""
    from transformers import Qwen2_5OmniConfig

    ids = tokenizer.convert_tokens_to_ids
    head_dim = 32
    # mrope splits each rotary half (head_dim / 2 frequencies) into temporal, height, width sections
    rope = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [4, 6, 6]}
    token_ids = dict(
        audio_token_index=ids("<|AUDIO|>"),
        image_token_index=ids("<|IMAGE|>"),
        video_token_index=ids("<|VIDEO|>"),
        audio_start_token_id=ids("<|audio_bos|>"),
        audio_end_token_id=ids("<|audio_eos|>"),
    )
    thinker = dict(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
            num_attention_heads=hidden // head_dim, num_key_value_heads=1, max_position_embeddings=32768,
            rope_parameters=rope, pad_token_id=ids(PAD), eos_token_id=ids(EOS), tie_word_embeddings=False,
        ),
        vision_config=dict(
            depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=PATCH, spatial_merge_size=MERGE,
            temporal_patch_size=2, window_size=112, out_hidden_size=hidden, fullatt_block_indexes=[1],
        ),
        audio_config=dict(
            num_mel_bins=128, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, d_model=32,
            output_dim=hidden, max_source_positions=1500, n_window=100,
        ),
        # not declared by the config class, but the published config has them and position ids need the start
        vision_start_token_id=ids("<|vision_bos|>"),
        vision_end_token_id=ids("<|vision_eos|>"),
        user_token_id=ids("<|im_start|>"),
        **token_ids,
    )
    talker = dict(
        vocab_size=8448, embedding_size=hidden, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16,
        rope_parameters={**rope, "mrope_section": [2, 3, 3]},
        tts_text_start_token_id=ids("<tts_text_bos>"), tts_text_end_token_id=ids("<tts_text_eod>"),
        tts_text_pad_token_id=ids("<tts_pad>"), vision_start_token_id=ids("<|vision_bos|>"),
        vision_end_token_id=ids("<|vision_eos|>"), spatial_merge_size=MERGE, **token_ids,
    )
    token2wav = dict(
        dit_config=dict(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, head_dim=16, emb_dim=16, enc_emb_dim=16,
            enc_dim=16, enc_channels=[16, 16, 16, 16, 48], enc_attention_channels=8, enc_se_channels=8,
            look_ahead_layers=[1], look_backward_layers=[0], block_size=24,
        ),
        bigvgan_config=dict(
            upsample_initial_channel=32, upsample_rates=[5, 4], upsample_kernel_sizes=[11, 8],
            resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]],
        ),
    )
    return Qwen2_5OmniConfig(
        thinker_config=thinker, talker_config=talker, token2wav_config=token2wav, enable_audio_output=True
    )


def speakers(config, seed: int) -> dict:
    """spk_dict.pt as published: per voice, the talker's text bos token, a speaker embedding and a reference mel."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    dit = config.token2wav_config.dit_config
    return {
        SPEAKER: {
            "bos_token": config.talker_config.tts_text_start_token_id,
            "cond": torch.randn(1, dit.enc_emb_dim, generator=generator),
            "ref_mel": torch.randn(1, 40, dit.mel_dim, generator=generator),
        }
    }


def build_tiny_qwen2_5_omni(out_dir: Path, seed: int = 0, hidden: int = 64, layers: int = 2) -> Path:
    """Write a loadable qwen2_5_omni checkpoint folder (config, weights, spk_dict.pt, tokenizer, processor)."""
    import torch
    from transformers import Qwen2_5OmniForConditionalGeneration

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    processor = build_processor(tokenizer)
    config = tiny_config(tokenizer, hidden=hidden, layers=layers)
    torch.manual_seed(seed)
    model = Qwen2_5OmniForConditionalGeneration(config).eval()
    eos, pad = tokenizer.convert_tokens_to_ids([EOS, PAD])
    model.generation_config.eos_token_id = [eos, pad]
    model.generation_config.pad_token_id = pad
    model.save_pretrained(out_dir)
    torch.save(speakers(config, seed), out_dir / "spk_dict.pt")
    processor.save_pretrained(out_dir)
    (out_dir / "omnicheck_build.json").write_text(json.dumps({"builder": "tiny_qwen2_5_omni", "seed": seed}))
    return out_dir
