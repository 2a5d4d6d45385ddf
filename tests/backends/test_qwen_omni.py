"""The transformers backend on a second omni family: a tiny Qwen2.5-Omni laid out as Qwen/Qwen2.5-Omni-7B is published
(thinker writes text, talker speaks). Every modality, media reaching the model, batching, and the checkpoint layouts
users have (full with talker, without spk_dict.pt, thinker only)."""

from __future__ import annotations

import shutil

import pytest

from omnicheck.backends.hf import HFBackend
from omnicheck.errors import ModelLoadError
from omnicheck.types import GenerationSettings

SETTINGS = GenerationSettings(max_new_tokens=6, batch_size=4)


@pytest.fixture(scope="module")
def qwen(tiny_qwen_omni):
    backend = HFBackend(tiny_qwen_omni, name="qwen")
    yield backend
    backend.close()


def test_full_checkpoint_takes_every_modality_and_writes_through_its_thinker(qwen):
    assert qwen.modalities == {"text", "image", "audio", "video"}
    info = qwen.describe()
    assert info["model_type"] == "qwen2_5_omni"
    assert info["model_class"] == "Qwen2_5OmniForConditionalGeneration"
    assert info["generates_with"] == "Qwen2_5OmniThinkerForConditionalGeneration"


def test_generates_for_each_modality_within_the_token_budget(qwen, modality_samples):
    for sample in modality_samples:
        (generation,) = qwen.generate([sample], SETTINGS)
        assert generation.text, sample.id
        assert 0 < generation.tokens <= SETTINGS.max_new_tokens


def test_media_changes_the_output(qwen, photo_and_black_image):
    """The image really reaches the model: a different image gives different greedy tokens."""
    photo, black = [qwen.generate([sample], SETTINGS)[0] for sample in photo_and_black_image]
    assert photo.text != black.text


def test_batched_greedy_matches_one_at_a_time_across_modalities(qwen, modality_samples):
    """One left-padded batch of text, image, audio and video prompts of different lengths gives each its own answer."""
    samples = modality_samples
    single = qwen.generate(samples, GenerationSettings(max_new_tokens=6, batch_size=1))
    batched = qwen.generate(samples, GenerationSettings(max_new_tokens=6, batch_size=4))
    assert [g.text for g in batched] == [g.text for g in single]


def test_lm_eval_wraps_the_thinker(qwen):
    lm = qwen.lm_eval_model()
    assert lm.model is qwen.generator is qwen.model.thinker


def test_checkpoint_without_speaker_file_loads(tiny_qwen_omni, media, tmp_path, modality_samples):
    """Quantization tools save model and processor but not spk_dict.pt; omnicheck never needs the voices."""
    copy = tmp_path / "no-speakers"
    shutil.copytree(tiny_qwen_omni, copy)
    (copy / "spk_dict.pt").unlink()
    backend = HFBackend(copy)
    try:
        assert backend.modalities == {"text", "image", "audio", "video"}
        assert backend.generate(modality_samples[:1], SETTINGS)[0].text
    finally:
        backend.close()


def test_thinker_only_checkpoint_answers_like_the_full_one(qwen, media, tmp_path, modality_samples):
    """A qwen2_5_omni_thinker folder (the thinker saved alone) loads as that class and gives the same greedy text."""
    thinker_dir = tmp_path / "thinker"
    qwen.generator.save_pretrained(thinker_dir)
    qwen.processor.save_pretrained(thinker_dir)
    backend = HFBackend(thinker_dir)
    try:
        assert backend.model_type == "qwen2_5_omni_thinker"
        assert backend.generator is backend.model
        assert backend.modalities == {"text", "image", "audio", "video"}
        samples = modality_samples[:3]
        assert [g.text for g in backend.generate(samples, SETTINGS)] == [g.text for g in qwen.generate(samples, SETTINGS)]
    finally:
        backend.close()


def test_missing_vision_weights_are_refused(tiny_qwen_omni, tmp_path):
    """Loading info is still checked for this family (its from_pretrained override loses it)."""
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "missing-vision"
    shutil.copytree(tiny_qwen_omni, broken)
    tensors = load_file(broken / "model.safetensors")
    dropped = [k for k in tensors if k.startswith("thinker.visual.merger")]
    assert dropped
    for key in dropped:
        del tensors[key]
    save_file(tensors, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError) as err:
        HFBackend(broken)
    assert "missing" in str(err.value) and "visual.merger" in str(err.value)
