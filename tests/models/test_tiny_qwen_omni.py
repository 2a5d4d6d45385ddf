"""The tiny Qwen2.5-Omni builder: the published folder layout, a processor that expands every media placeholder, and
byte-identical output for a seed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from omnicheck.models.tiny_qwen_omni import build_tiny_qwen2_5_omni


def _digests(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


def test_folder_has_the_published_layout(tiny_qwen_omni):
    config = json.loads((tiny_qwen_omni / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_omni"
    assert config["architectures"] == ["Qwen2_5OmniForConditionalGeneration"]
    assert config["enable_audio_output"] is True
    assert {"thinker_config", "talker_config", "token2wav_config"} <= set(config)
    assert (tiny_qwen_omni / "spk_dict.pt").exists()
    processor = json.loads((tiny_qwen_omni / "processor_config.json").read_text())
    assert processor["processor_class"] == "Qwen2_5OmniProcessor"
    assert processor["feature_extractor"]["feature_extractor_type"] == "WhisperFeatureExtractor"
    assert processor["image_processor"]["image_processor_type"] == "Qwen2VLImageProcessor"
    assert processor["video_processor"]["video_processor_type"] == "Qwen2VLVideoProcessor"


def test_processor_expands_each_media_placeholder_to_the_model_token(tiny_qwen_omni, media):
    from transformers import AutoProcessor

    from omnicheck.messages import load_audio, load_image

    processor = AutoProcessor.from_pretrained(tiny_qwen_omni, local_files_only=True)
    thinker = json.loads((tiny_qwen_omni / "config.json").read_text())["thinker_config"]
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "audio"}, {"type": "text", "text": "Hi"}]}]
    text = processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    assert "<|vision_bos|><|IMAGE|><|vision_eos|><|audio_bos|><|AUDIO|><|audio_eos|>Hi<|im_end|>" in text
    inputs = processor(text=[text], images=[load_image(media["image"])], audio=[load_audio(media["audio"])],
                       return_tensors="pt")
    ids = inputs["input_ids"][0].tolist()
    assert ids.count(thinker["image_token_index"]) == int(inputs["image_grid_thw"].prod()) // 4  # 2x2 merge
    assert ids.count(thinker["audio_token_index"]) == 50  # 2 s: 200 mel frames, halved twice by the encoder


def test_same_seed_same_bytes_other_seed_other_weights(tmp_path):
    first = _digests(build_tiny_qwen2_5_omni(tmp_path / "a", seed=0))
    again = _digests(build_tiny_qwen2_5_omni(tmp_path / "b", seed=0))
    other = _digests(build_tiny_qwen2_5_omni(tmp_path / "c", seed=1))
    assert first == again
    assert {name for name in first if first[name] != other[name]} == {
        "model.safetensors", "spk_dict.pt", "omnicheck_build.json"}
