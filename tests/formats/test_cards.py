"""Every card of the real panel, field by field, plus the card of a synthetic 12B-class header-only checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.formats.conftest import ALL_VARIANTS

LM_GROUPS = ("attention_q", "attention_k", "attention_v", "attention_o", "mlp")
MLP_ONLY = ("mlp",)
NO_STAGE = None

# name: format, scheme, activation_quantized, weight_bits, producer name, quantized groups, activation groups,
#       weight format of the quantized groups, activation format
EXPECTED = {
    "base-bf16": ("unquantized", "BF16", False, 16, None, (), (), None, None),
    "ct-nvfp4a16": ("compressed-tensors", "NVFP4A16", False, 4, "llmcompressor", LM_GROUPS, (), "nvfp4", None),
    "ct-nvfp4-textcal": ("compressed-tensors", "NVFP4", True, 4, "llmcompressor", LM_GROUPS, LM_GROUPS, "nvfp4",
                         "nvfp4 tensor_group 16"),
    "ct-fp8-dynamic": ("compressed-tensors", "FP8_DYNAMIC", True, 8, "llmcompressor", LM_GROUPS, LM_GROUPS, "fp8",
                       "fp8 token, dynamic"),
    "ct-nvfp4-mlp": ("compressed-tensors", "NVFP4", True, 4, "llmcompressor", MLP_ONLY, MLP_ONLY, "nvfp4",
                     "nvfp4 tensor_group 16"),
    "ct-nvfp4a16-media": ("compressed-tensors", "NVFP4A16", False, 4, "llmcompressor",
                          LM_GROUPS + ("vision_projector", "audio_projector"), (), "nvfp4", None),
    "ct-nvfp4a16-ignore-mismatch": ("compressed-tensors", "NVFP4A16", False, 4, "llmcompressor", LM_GROUPS, (),
                                    "nvfp4", None),
    "mo-nvfp4": ("modelopt", "NVFP4", True, 4, "modelopt", LM_GROUPS + ("audio_projector",), LM_GROUPS, "nvfp4",
                 "nvfp4 tensor_group 16"),
    "mo-nvfp4-mlp": ("modelopt", "NVFP4", True, 4, "modelopt", MLP_ONLY, MLP_ONLY, "nvfp4", "nvfp4 tensor_group 16"),
    "mo-w4a16-nvfp4": ("modelopt", "W4A16_NVFP4", False, 4, "modelopt", LM_GROUPS + ("audio_projector",), (),
                       "nvfp4", None),
    "mo-fp8": ("modelopt", "FP8", True, 8, "modelopt", LM_GROUPS + ("audio_projector",), LM_GROUPS, "fp8",
               "fp8 tensor, static"),
}
PRESENT_GROUPS = {"vision_projector": 2, "audio_projector": 1, "embeddings": 1, "attention_q": 2, "attention_k": 2,
                  "attention_v": 2, "attention_o": 2, "mlp": 6, "lm_head": 1}


def test_expected_table_covers_the_panel():
    assert sorted(EXPECTED) == sorted(ALL_VARIANTS)


@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_card_fields(cards, name):
    fmt, scheme, act, bits, producer, qgroups, agroups, wfmt, afmt = EXPECTED[name]
    card = cards[name].to_json()
    json.dumps(card)  # the card is plain JSON
    assert card["format"] == fmt
    assert card["scheme"] == scheme
    assert card["activation_quantized"] is act
    assert card["weight_bits"] == bits
    assert card["model_type"] == "gemma4_unified"
    assert (card["producer"].get("name") if card["producer"] else None) == producer
    groups = card["groups"]
    assert {g: v["modules"] for g, v in groups.items()} == PRESENT_GROUPS
    for group, facts in groups.items():
        if group in qgroups:
            assert facts["quantized_modules"] == facts["modules"], group
            assert facts["weight"].startswith(wfmt), (group, facts["weight"])
            assert facts["weight_bits"] == bits
        else:
            assert facts["quantized_modules"] == 0, group
            assert facts["weight_bits"] is None
        if group in agroups:
            assert facts["activation_quantized_modules"] == facts["modules"], group
            assert facts["activation"].startswith(afmt), (group, facts["activation"])
        else:
            assert facts["activation"] is None and facts["activation_quantized_modules"] == 0, group
    assert groups["lm_head"]["weight"] == "tied to the token embeddings"
    assert card["kv_cache"] is None
    assert card["calibration"]["recorded"] is False and card["calibration"]["datasets"] == []
    assert card["runtime_names_checked"] is (fmt != "unquantized")
    assert card["activations_ran_quantized"] is act  # in-process: compressed-tensors and omnicheck both quantize
    assert card["calibration_datasets"] is None


def test_nvfp4_scale_facts(cards):
    ct = cards["ct-nvfp4-textcal"]
    q = next(m for m in ct.modules if m.name.endswith("layers.0.self_attn.q_proj"))
    assert (q.weight.format, q.weight.bits, q.weight.group_size) == ("nvfp4", 4, 16)
    assert "weight_global_scale" in q.weight.scales
    assert (q.activation.dynamic, q.activation.stored_scale, q.activation.group_size) == ("local", "input_global_scale", 16)
    mo = cards["mo-nvfp4"]
    q = next(m for m in mo.modules if m.name.endswith("layers.0.self_attn.q_proj"))
    assert "weight_scale_2" in q.weight.scales and q.activation.stored_scale == "input_scale"
    fp8 = next(m for m in cards["ct-fp8-dynamic"].modules if m.name.endswith("layers.1.mlp.down_proj"))
    assert fp8.weight.scales == "per-channel scales" and fp8.activation.dynamic is True
    assert fp8.activation.stored_scale is None


def test_ignore_lists_are_reported_as_stored(cards):
    assert cards["ct-nvfp4a16-ignore-mismatch"].ignore == [
        "model.vision_embedder.patch_dense", "model.embed_vision.embedding_projection",
        "model.embed_audio.embedding_projection", "lm_head"]
    assert cards["ct-nvfp4a16-media"].ignore == ["lm_head"]
    assert cards["mo-nvfp4"].ignore == ["lm_head", "model.embed_vision*"]
    assert cards["base-bf16"].ignore == []


def test_runtime_names_are_attached(cards):
    patch = next(m for m in cards["ct-nvfp4a16"].modules if m.name == "model.vision_embedder.patch_dense")
    assert patch.runtime_name == "model.embed_vision.patch_dense"
    assert patch.group == "vision_projector" and patch.modality == "vision"


@pytest.mark.parametrize("name,weights,activations", [
    ("base-bf16", "native bf16", "not quantized"),
    ("ct-nvfp4a16", "dequantized by compressed-tensors", "not quantized (weight-only NVFP4A16)"),
    ("ct-nvfp4-textcal", "dequantized by compressed-tensors", "fake-quantized by compressed-tensors (NVFP4"),
    ("ct-fp8-dynamic", "dequantized by compressed-tensors", "fake-quantized by compressed-tensors (FP8 e4m3, dynamic"),
    ("mo-nvfp4", "emulated by omnicheck (ModelOpt NVFP4", "fake-quantized by omnicheck (NVFP4"),
    ("mo-w4a16-nvfp4", "emulated by omnicheck (ModelOpt NVFP4", "not quantized (weight-only W4A16_NVFP4)"),
    ("mo-fp8", "emulated by omnicheck (ModelOpt FP8", "fake-quantized by omnicheck (FP8 e4m3, static"),
])
def test_execution_path(cards, name, weights, activations):
    path = cards[name].execution_path()
    assert set(path) == {"weights", "activations", "kv_cache"}
    assert weights in path["weights"]
    assert path["activations"].startswith(activations)
    assert path["kv_cache"] == "not quantized (model dtype)"


def test_mlp_only_scope_is_named(cards):
    assert cards["ct-nvfp4-mlp"].scope.startswith("MLP only")
    assert cards["mo-nvfp4-mlp"].scope.startswith("MLP only")
    assert cards["ct-nvfp4-textcal"].scope.startswith("all language-model linear layers")
    assert "media modules quantized: audio_projector, vision_projector" in cards["ct-nvfp4a16-media"].scope


def test_12b_header_only_card(tmp_path):
    from omnicheck.formats import read_card
    from omnicheck.formats.synthetic import write_header_only_checkpoint

    declared = write_header_only_checkpoint(tmp_path / "bf16", "bf16")
    assert declared > 20e9
    on_disk = sum(f.stat().st_blocks * 512 for f in (tmp_path / "bf16").iterdir())
    assert on_disk < 10e6  # sparse: the 24 GB are declared, not written
    card = read_card(tmp_path / "bf16").to_json()
    assert (card["format"], card["scheme"], card["weight_bits"], card["activation_quantized"]) == (
        "unquantized", "BF16", 16, False)
    assert card["groups"]["mlp"]["modules"] == 48 * 3

    write_header_only_checkpoint(tmp_path / "nvfp4", "nvfp4")
    card = read_card(tmp_path / "nvfp4").to_json()
    assert (card["format"], card["scheme"], card["weight_bits"], card["activation_quantized"]) == (
        "compressed-tensors", "NVFP4", 4, True)
    assert card["groups"]["attention_q"]["quantized_modules"] == 48
    assert card["groups"]["vision_projector"]["quantized_modules"] == 0


def test_calibration_is_read_from_a_recipe(tmp_path):
    from omnicheck.formats.card import read_calibration

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "quant_stage:\n  quant_modifiers:\n    GPTQModifier:\n      scheme: NVFP4\n"
        "      dataset: [ultrachat_200k, librispeech_asr]\n      num_calibration_samples: 512\n"
        "      observer: mse\n"
    )
    cal = read_calibration(recipe)
    assert cal["recorded"] is True
    assert cal["datasets"] == ["ultrachat_200k", "librispeech_asr"]
    assert cal["samples"] == 512 and cal["modifiers"] == ["GPTQModifier"] and cal["observers"] == ["mse"]
    tmp_card = tmp_path / "ckpt"
    tmp_card.mkdir()
    import shutil

    from omnicheck.formats import read_card

    for name in ("config.json", "model.safetensors"):
        shutil.copy2(Path(__file__).resolve().parents[2] / "fixtures" / "checkpoints" / "ct-nvfp4-textcal" / name,
                     tmp_card / name)
    shutil.copy2(recipe, tmp_card / "recipe.yaml")
    card = read_card(tmp_card).to_json()
    assert card["calibration_datasets"] == ["ultrachat_200k", "librispeech_asr"]


def test_bad_folders_raise_one_line(tmp_path):
    from omnicheck.errors import ModelLoadError
    from omnicheck.formats import read_card

    with pytest.raises(ModelLoadError, match="no config.json"):
        read_card(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        read_card(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(ModelLoadError, match="truncated inside its header"):
        read_card(tmp_path)


@pytest.mark.parametrize("name,group", [
    ("thinker.model.layers.0.mlp.up_proj", "mlp"),  # Qwen2.5-Omni on disk
    ("thinker.model.language_model.layers.0.self_attn.q_proj", "attention_q"),  # the same at run time
    ("thinker.visual.blocks.0.attn.q", "vision_tower"),
    ("thinker.model.visual.blocks.0.attn.q", "vision_tower"),
    ("thinker.model.visual.merger.mlp.0", "vision_projector"),
    ("thinker.model.audio_tower.layers.0.fc1", "audio_tower"),
    ("thinker.lm_head", "lm_head"),
    ("talker.model.layers.0.self_attn.q_proj", "speech_output"),
    ("token2wav.code2wav_dit_model.transformer_blocks.0.attn.to_q", "speech_output"),
])
def test_omni_module_groups_under_both_namings(name, group):
    from omnicheck.formats.groups import group_of

    assert group_of(name) == group


def test_qwen_omni_card_keeps_the_talker_out_of_the_language_model(tiny_qwen_omni, capsys):
    from omnicheck.cli import main

    assert main(["inspect", "--json", str(tiny_qwen_omni)]) == 0
    card = json.loads(capsys.readouterr().out)
    assert (card["format"], card["model_type"], card["scope"]) == ("unquantized", "qwen2_5_omni", "nothing quantized")
    groups = card["groups"]
    assert {g: v["modules"] for g, v in groups.items()} == {
        "vision_tower": 14, "vision_projector": 2, "audio_tower": 14, "embeddings": 1, "attention_q": 2,
        "attention_k": 2, "attention_v": 2, "attention_o": 2, "mlp": 6, "lm_head": 1, "speech_output": 30}
    assert all(n.startswith("thinker.") for g, v in groups.items() if g != "speech_output" for n in v["names"])
    assert main(["inspect", str(tiny_qwen_omni)]) == 0
    assert "speech_output     0/30 quantized" in capsys.readouterr().out
