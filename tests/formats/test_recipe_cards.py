"""Issue 14's recipe checkpoints (fixtures/checkpoints, `scripts/build_quant_panel.py recipes`): every card field by
field against the recipe in provenance.json that made it, and every lint exactly where it fires."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil

import pytest

from tests.formats.conftest import MEDIA_TOKENS, MEDIA_WEIGHTS, MODELOPT, PANEL, RECIPE_BASES, RECIPE_VARIANTS, SERVED

PROVENANCE = {r["name"]: r for r in json.loads((PANEL / "provenance.json").read_text())}
LM_LINEAR = ("attention_q", "attention_k", "attention_v", "attention_o", "mlp")


@pytest.mark.parametrize("name", RECIPE_BASES + RECIPE_VARIANTS)
def test_recipe_checkpoints_are_the_tools_output_as_recorded(name):
    record = PROVENANCE[name]
    weights = PANEL / name / "model.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == record["sha256"]["model.safetensors"]
    if name in RECIPE_VARIANTS:
        assert record["tool"] in ("llmcompressor", "nvidia-modelopt")
        assert record["versions"].get("llmcompressor", record["versions"].get("nvidia-modelopt")) in ("0.14.0.1", "0.47.0")
        assert record["base"] in RECIPE_BASES + ["base-bf16"]


def _recipe_ignores(recipe_ignore: list[str], runtime_name: str) -> bool:
    from omnicheck.formats.compressed_tensors import target_matches

    return any(target_matches(entry, runtime_name, None) for entry in recipe_ignore)


@pytest.mark.parametrize("name", [n for n in RECIPE_VARIANTS if PROVENANCE[n]["tool"] == "llmcompressor"])
def test_llmcompressor_cards_follow_their_recipe_module_by_module(cards, name):
    """Targets "Linear" minus the recipe's ignore list, matched on run-time names as compressed-tensors does: every
    module's quantized flag, weight format and activation follow from the recipe."""
    recipe = PROVENANCE[name]["recipe"]
    card = cards[name]
    scheme = recipe.get("scheme") or "FP8_BLOCK_A16"
    assert card.scheme == scheme and card.format == "compressed-tensors"
    assert card.producer["name"] == "llmcompressor"
    linear = {n for n, cls in card.runtime_names.items() if cls == "Linear"}
    for fact in card.modules:
        runtime = fact.runtime_name or fact.name
        expected = runtime in linear and not _recipe_ignores(recipe["ignore"], runtime)
        assert fact.weight.quantized is expected, runtime
        if not expected:
            assert fact.activation is None, runtime
            continue
        if scheme.startswith("NVFP4"):
            assert (fact.weight.format, fact.weight.bits, fact.weight.group_size, fact.weight.block) == ("nvfp4", 4, 16, None)
        else:
            assert (fact.weight.format, fact.weight.bits, fact.weight.block) == ("fp8", 8, (128, 128))
            assert fact.weight.scales == "per-block 128x128 scales"
        if scheme == "NVFP4":
            assert (fact.activation.format, fact.activation.group_size, fact.activation.dynamic,
                    fact.activation.stored_scale) == ("nvfp4", 16, "local", "input_global_scale")
        else:
            assert fact.activation is None
    if recipe.get("kv_cache_scheme"):
        layers = card.config_json["text_config"]["num_hidden_layers"]
        assert card.kv_cache["format"] == "FP8" and card.kv_cache["dynamic"] is False
        assert card.kv_scale_tensors == sorted(f"model.language_model.layers.{i}.self_attn.{kv}_scale"
                                               for i in range(layers) for kv in "kv")
    else:
        assert card.kv_cache is None


def test_the_12b_writeup_ignore_list_leaves_the_vision_input_projection_quantized(cards):
    for name in ("ct-12b-nvfp4a16-writeup", "ct-12b-nvfp4-writeup-textcal"):
        card = cards[name]
        quantized_media = {m.runtime_name for m in card.quantized_modules if m.modality != "text"}
        assert quantized_media == {"model.embed_vision.patch_dense"}
        assert card.groups()["vision_projector"]["quantized_modules"] == 1
        assert "media modules quantized: vision_projector" in card.scope


MODELOPT_EXPECTED = {
    # name: scheme, quantized text groups, activation format, weight (format, bits, group, block), kv format
    "mo-nvfp4-mlp-fp8kv": ("NVFP4", {"mlp"}, "nvfp4", ("nvfp4", 4, 16, None), "FP8"),
    "mo-e4b-fp8-pb-wo": ("FP8_PB_WO", set(LM_LINEAR) | {"per_layer_embeddings"}, None, ("fp8", 8, None, (128, 128)), None),
    "mo-moe-nvfp4": ("NVFP4", set(LM_LINEAR) | {"moe_experts"}, "nvfp4", ("nvfp4", 4, 16, None), None),
}


@pytest.mark.parametrize("name", sorted(MODELOPT_EXPECTED))
def test_modelopt_cards_follow_their_recipe(cards, name):
    scheme, groups, act, weight, kv = MODELOPT_EXPECTED[name]
    card = cards[name]
    assert (card.format, card.scheme, card.producer) == ("modelopt", scheme, {"name": "modelopt", "version": "0.47.0"})
    text_groups = {m.group for m in card.quantized_modules if m.modality == "text"}
    assert text_groups == groups
    for fact in card.quantized_modules:
        assert (fact.weight.format, fact.weight.bits, fact.weight.group_size, fact.weight.block) == weight, fact.name
        if fact.modality == "text":
            assert (fact.activation.format if fact.activation else None) == act, fact.name
    assert not any(m.weight.quantized for m in card.modules if m.group in ("vision_tower", "moe_router", "lm_head"))
    assert (card.kv_cache or {}).get("format") == kv
    if kv:
        assert card.kv_scale_tensors == sorted(f"model.language_model.layers.{i}.self_attn.{kv}_proj.{kv}_scale"
                                               for i in range(2) for kv in "kv")


def test_moe_cards_count_fused_experts_with_the_router_apart(cards):
    base = cards["gemma4-moe-bf16"].groups()
    # two layers, each: gate_up_proj [4, 64, 64] and down_proj [4, 64, 32]
    assert (base["moe_experts"]["modules"], base["moe_experts"]["fused_expert_tensors"]) == (4, 4)
    assert base["moe_experts"]["experts_per_layer"] == 4
    assert base["moe_experts"]["parameters"] == 2 * (4 * 64 * 64 + 4 * 64 * 32)
    assert (base["moe_router"]["modules"], base["moe_router"]["parameters"]) == (2, 2 * 4 * 64)
    assert base["mlp"]["modules"] == 6
    unfused = cards["mo-moe-nvfp4"].groups()
    # ModelOpt writes every expert's gate/up/down apart: 2 layers x 4 experts x 3 projections
    assert (unfused["moe_experts"]["modules"], unfused["moe_experts"]["quantized_modules"]) == (24, 24)
    assert unfused["moe_experts"]["parameters"] == base["moe_experts"]["parameters"]
    assert "fused_expert_tensors" not in unfused["moe_experts"]
    assert unfused["moe_router"]["quantized_modules"] == 0


def test_e4b_cards_group_per_layer_embeddings_and_tower_internals(cards):
    groups = cards["ct-e4b-nvfp4a16"].groups()
    ple = groups["per_layer_embeddings"]
    assert ple["modules"] == 6  # the packed table, its projection, and each layer's gate and projection
    assert ple["quantized_modules"] == 5  # every Linear of it; the table is an embedding
    assert {"model.language_model.embed_tokens_per_layer", "model.language_model.per_layer_model_projection"} <= set(
        m.name for m in cards["ct-e4b-nvfp4a16"].modules if m.group == "per_layer_embeddings")
    assert groups["vision_tower"]["parts"] == {"input_projection": {"modules": 1, "quantized_modules": 0},
                                               "attention": {"modules": 4, "quantized_modules": 0},
                                               "mlp": {"modules": 3, "quantized_modules": 0}}
    assert groups["audio_tower"]["parts"]["input_projection"] == {"modules": 1, "quantized_modules": 0}
    assert groups["audio_tower"]["parts"]["output_projection"] == {"modules": 1, "quantized_modules": 0}
    # only the embedders that map tower features into the language model are projectors
    assert (groups["vision_projector"]["modules"], groups["audio_projector"]["modules"]) == (1, 1)
    assert cards["ct-e4b-nvfp4a16"].scope == "all language-model linear layers; media modules unquantized"


@pytest.mark.parametrize("name,weights,kv", [
    ("ct-e4b-fp8-block-fp8kv", "FP8 stored compressed; dequantized by compressed-tensors",
     "emulated by omnicheck (FP8 e4m3: K and V quantized and dequantized with the stored per-layer k_scale / v_scale"),
    ("mo-nvfp4-mlp-fp8kv", "emulated by omnicheck (ModelOpt NVFP4",
     "emulated by omnicheck (FP8 e4m3: K and V quantized and dequantized with the stored per-layer k_scale / v_scale"),
    ("mo-e4b-fp8-pb-wo", "emulated by omnicheck (ModelOpt FP8 per-block 128x128: dequantized at load", "not quantized"),
    ("mo-moe-nvfp4", "per-expert exports re-fused into the model's 3-D expert tensors", "not quantized"),
    ("ct-e4b-nvfp4a16", "NVFP4 stored compressed", "not quantized"),
])
def test_recipe_execution_paths(cards, name, weights, kv):
    path = cards[name].execution_path()
    assert weights in path["weights"]
    assert path["kv_cache"].startswith(kv)


ERROR_MISMATCH = ("error", "ignore-name-mismatch")
GAP = ("warning", "ignore-misses-media-module")
KV = ("info", "kv-cache-emulated")
LINTS = {
    "gemma4-e4b-bf16": [],
    "gemma4-moe-bf16": [],
    "ct-12b-nvfp4a16-writeup": [ERROR_MISMATCH, GAP, MEDIA_WEIGHTS, SERVED],
    "ct-12b-nvfp4-writeup-textcal": [ERROR_MISMATCH, GAP, MEDIA_WEIGHTS, ("error", "activation-scale-uncalibrated"),
                                     ("warning", "act-quant-media-module"), MEDIA_TOKENS, SERVED],
    "ct-e4b-nvfp4a16": [],
    "ct-e4b-fp8-block-fp8kv": [KV],
    "mo-nvfp4-mlp-fp8kv": [KV, MODELOPT, MEDIA_TOKENS, SERVED],
    "mo-e4b-fp8-pb-wo": [MODELOPT, MEDIA_WEIGHTS],
    "mo-moe-nvfp4": [("info", "experts-unfused-refused-at-load"), MODELOPT, MEDIA_TOKENS, MEDIA_WEIGHTS,
                     ("warning", "uncalibrated-input-scale")],
}


def test_lint_table_covers_the_recipes():
    assert sorted(LINTS) == sorted(RECIPE_BASES + RECIPE_VARIANTS)


@pytest.mark.parametrize("name", RECIPE_BASES + RECIPE_VARIANTS)
def test_recipe_lints_fire_exactly_where_expected(cards, name):
    assert sorted((lint.severity, lint.code) for lint in cards[name].lints) == sorted(LINTS[name])


def test_uncalibrated_media_scale_is_named_with_its_fix(cards):
    (lint,) = [x for x in cards["ct-12b-nvfp4-writeup-textcal"].lints if x.code == "activation-scale-uncalibrated"]
    assert lint.modules == ("model.embed_vision.patch_dense",)
    assert "input_global_scale = 4.5e-44" in lint.message and "uninitialised" in lint.message
    assert "calibrate with samples that reach these modules" in lint.message and "ignore list" in lint.message
    (gap,) = [x for x in cards["ct-12b-nvfp4a16-writeup"].lints if x.code == "ignore-misses-media-module"]
    assert gap.modules == ("model.embed_vision.patch_dense",) and "'re:.*patch_dense.*'" in gap.message


@pytest.mark.parametrize("value,why", [(0.0, "0"), (float("nan"), "NaN/inf"), (1e-40, "subnormal"),
                                       (1e15, "x the median")])
def test_scale_lints_fire_on_each_kind_of_uncalibrated_value(panel, tmp_path, value, why):
    """A calibrated checkpoint (clean) with one scale set to a value calibration cannot produce: the activation and
    the KV-cache lint fire on exactly that tensor."""
    import torch
    from safetensors.torch import load_file, save_file

    from omnicheck.formats import inspect_checkpoint

    for source, tensor, code in (("ct-nvfp4-textcal", "model.language_model.layers.1.mlp.up_proj.input_global_scale",
                                  "activation-scale-uncalibrated"),
                                 ("ct-e4b-fp8-block-fp8kv", "model.language_model.layers.1.self_attn.v_scale",
                                  "kv-scale-uncalibrated")):
        copy_dir = tmp_path / source
        shutil.copytree(panel / source, copy_dir)
        assert code not in {x.code for x in inspect_checkpoint(copy_dir).lints}
        tensors = load_file(copy_dir / "model.safetensors")
        tensors[tensor] = torch.full_like(tensors[tensor], value)
        save_file(tensors, copy_dir / "model.safetensors", metadata={"format": "pt"})
        (lint,) = [x for x in inspect_checkpoint(copy_dir).lints if x.code == code]
        assert lint.severity == "error" and why in lint.message
        assert lint.modules in ((tensor.rsplit(".", 1)[0],), (tensor,))


def test_unfused_experts_without_a_refusing_loader_are_an_error(cards):
    """The same per-expert layout in a format transformers loads itself has no place to go: error, cause named."""
    from omnicheck.formats.lints import unplaced_lints
    from omnicheck.formats.runtime import runtime_modules

    card = copy.deepcopy(cards["mo-moe-nvfp4"])
    card.format = "compressed-tensors"
    (lint,) = unplaced_lints(card, runtime_modules(card.path))
    assert (lint.severity, lint.code) == ("error", "experts-unfused")
    assert "Gemma4TextExperts holds each layer's experts as fused 3-D tensors" in lint.message
    assert lint.modules == ("model.language_model.layers.0.experts", "model.language_model.layers.1.experts")


def test_a_config_with_fewer_layers_leaves_quantized_tensors_without_module(panel, tmp_path, capsys):
    from omnicheck.cli import main

    copy_dir = tmp_path / "one-layer"
    shutil.copytree(panel / "mo-nvfp4-mlp-fp8kv", copy_dir)
    config = json.loads((copy_dir / "config.json").read_text())
    config["text_config"].update(num_hidden_layers=1, layer_types=["full_attention"])
    (copy_dir / "config.json").write_text(json.dumps(config))
    assert main(["inspect", str(copy_dir)]) == 1
    out = capsys.readouterr().out
    assert "ERROR   quantized-tensor-without-module: 3 quantized tensor(s)" in out
    assert "model.language_model.layers.1.mlp" in out


def test_e4b_ignore_list_is_checked_against_run_time_names(panel, tmp_path):
    """E4B's tower Linears sit inside Gemma4ClippableLinear wrappers (`q_proj.linear`): an ignore list naming the
    wrapper protects nothing, and compressed-tensors quantizes the Linear on load."""
    from omnicheck.formats import inspect_checkpoint

    copy_dir = tmp_path / "wrapper-names"
    shutil.copytree(panel / "ct-e4b-nvfp4a16", copy_dir)
    config = json.loads((copy_dir / "config.json").read_text())
    qc = config["quantization_config"]
    qc["ignore"] = [e[: -len(".linear")] if e.endswith(".linear") else e for e in qc["ignore"]]
    (copy_dir / "config.json").write_text(json.dumps(config))
    errors = inspect_checkpoint(copy_dir).errors()
    assert [lint.code for lint in errors] == ["quantized-on-load-stored-unquantized"]
    assert "model.vision_tower.encoder.layers.0.self_attn.q_proj.linear" in errors[0].modules
    assert all(n.endswith(".linear") for n in errors[0].modules)
