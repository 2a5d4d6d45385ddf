"""The transformers backend on real tiny models: every modality, batching, and every bad input as one line."""

from __future__ import annotations

import json
import shutil

import pytest

from omnicheck.backends.hf import HFBackend
from omnicheck.errors import FixtureError, ModelLoadError, UnsupportedModality
from omnicheck.types import AudioPart, GenerationSettings, ImagePart, Message, Sample

SETTINGS = GenerationSettings(max_new_tokens=6, batch_size=4)


@pytest.fixture(scope="module")
def gemma(tiny_gemma):
    backend = HFBackend(tiny_gemma, name="ref")
    yield backend
    backend.close()


def test_gemma4_unified_takes_every_modality(gemma):
    assert gemma.modalities == {"text", "image", "audio", "video"}
    info = gemma.describe()
    assert info["model_type"] == "gemma4_unified" and info["parameters"] > 100_000


def test_generates_for_each_modality_and_counts_tokens(gemma, modality_samples):
    for sample in modality_samples:
        (generation,) = gemma.generate([sample], SETTINGS)
        assert isinstance(generation.text, str)
        assert 0 <= generation.tokens <= SETTINGS.max_new_tokens


def test_media_changes_the_output(gemma, photo_and_black_image):
    """The image really reaches the model: a different image gives different greedy tokens."""
    photo, black = [gemma.generate([sample], SETTINGS)[0] for sample in photo_and_black_image]
    assert photo.text != black.text


def test_batched_greedy_matches_one_at_a_time_for_images(gemma, modality_samples):
    sample = modality_samples[1]
    single = gemma.generate([sample], GenerationSettings(max_new_tokens=6, batch_size=1))
    batched = gemma.generate([sample, sample, sample], GenerationSettings(max_new_tokens=6, batch_size=3))
    assert [g.text for g in batched] == [single[0].text] * 3


def test_text_only_model_refuses_media_as_unsupported(tiny_text_lm, modality_samples):
    backend = HFBackend(tiny_text_lm)
    try:
        assert backend.modalities == {"text"}
        (generation,) = backend.generate([Sample("t", (Message.user("Hello"),))], SETTINGS)
        assert isinstance(generation.text, str)
        with pytest.raises(UnsupportedModality, match="takes no image input"):
            backend.generate([modality_samples[1]], SETTINGS)
    finally:
        backend.close()


def test_lm_eval_model_wraps_the_loaded_model_without_reloading(gemma):
    lm = gemma.lm_eval_model()
    assert lm.model is gemma.model
    assert gemma.lm_eval_model() is lm


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda root: root / "missing", "does not exist"),
        (lambda root: (root / "empty").mkdir() or root / "empty", "not a model folder"),
        (lambda root: (root / "file.bin").write_bytes(b"x") and root / "file.bin", "is a file"),
    ],
)
def test_bad_paths_are_one_line(tmp_path, make, expected):
    with pytest.raises(ModelLoadError) as err:
        HFBackend(make(tmp_path))
    assert expected in str(err.value) and "fix:" in str(err.value) and "\n" not in str(err.value)


def test_truncated_safetensors_is_one_line(tiny_gemma, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_gemma, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="truncated"):
        HFBackend(broken)


def test_missing_weights_are_refused_not_run_randomly(tiny_gemma, tmp_path):
    """A checkpoint whose vision projection is absent must not load with random weights (issue 3's mismatch bug)."""
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "missing-key"
    shutil.copytree(tiny_gemma, broken)
    tensors = load_file(broken / "model.safetensors")
    dropped = [k for k in tensors if "embed_vision" in k]
    assert dropped
    for key in dropped:
        del tensors[key]
    save_file(tensors, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError) as err:
        HFBackend(broken)
    assert "missing" in str(err.value) and "embed_vision" in str(err.value)


def test_missing_processor_is_one_line(tiny_gemma, tmp_path):
    broken = tmp_path / "no-processor"
    shutil.copytree(tiny_gemma, broken)
    config = json.loads((broken / "processor_config.json").read_text())
    config["image_processor"] = {"image_processor_type": "NoSuchImageProcessor"}
    (broken / "processor_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="processor"):
        HFBackend(broken)


def test_corrupt_media_is_one_line(gemma, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(FixtureError) as err:
        gemma.generate([Sample("x", (Message.user(ImagePart(bad), "Describe."),))], SETTINGS)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    wav = tmp_path / "bad.flac"
    wav.write_bytes(b"RIFF....garbage")
    with pytest.raises(FixtureError):
        gemma.generate([Sample("y", (Message.user(AudioPart(wav), "Transcribe."),))], SETTINGS)
