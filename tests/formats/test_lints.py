"""Every lint fires on the panel checkpoints where it should, and nowhere else; the inspect command's exit status."""

from __future__ import annotations

import json

import pytest

from tests.formats.conftest import ALL_VARIANTS, MEDIA_TOKENS, MEDIA_WEIGHTS, MODELOPT, SERVED

HARMLESS = ("info", "ignore-name-mismatch-harmless")
VLLM_HINT = ("warning", "vllm-gemma4-unified-unquantized")
UNCALIBRATED = ("warning", "uncalibrated-input-scale")

EXPECTED = {
    "base-bf16": [SERVED],
    "ct-nvfp4a16": [HARMLESS, HARMLESS, SERVED],
    "ct-nvfp4-textcal": [HARMLESS, HARMLESS, MEDIA_TOKENS, SERVED],
    "ct-fp8-dynamic": [HARMLESS, HARMLESS, ("info", "act-quant-media-tokens"), SERVED],
    "ct-nvfp4-mlp": [HARMLESS, HARMLESS, MEDIA_TOKENS, SERVED],
    "ct-nvfp4a16-media": [MEDIA_WEIGHTS, VLLM_HINT, SERVED],
    "ct-nvfp4a16-ignore-mismatch": [("error", "ignore-name-mismatch"), ("error", "ignore-name-mismatch"), SERVED],
    "mo-nvfp4": [MODELOPT, MEDIA_TOKENS, MEDIA_WEIGHTS, UNCALIBRATED, VLLM_HINT, SERVED],
    "mo-nvfp4-mlp": [MODELOPT, MEDIA_TOKENS, SERVED],
    "mo-w4a16-nvfp4": [MODELOPT, MEDIA_WEIGHTS, VLLM_HINT, SERVED],
    "mo-fp8": [MODELOPT, MEDIA_TOKENS, MEDIA_WEIGHTS, UNCALIBRATED, VLLM_HINT, SERVED],
}


def test_expected_table_covers_the_panel():
    assert sorted(EXPECTED) == sorted(ALL_VARIANTS)


@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_lints_fire_exactly_where_expected(cards, name):
    got = sorted((lint.severity, lint.code) for lint in cards[name].lints)
    assert got == sorted(EXPECTED[name])
    for lint in cards[name].lints:
        data = lint.to_json()
        assert set(data) >= {"severity", "code", "message"} and data["message"]


def test_mismatch_lint_names_both_names(cards):
    messages = [lint.message for lint in cards["ct-nvfp4a16-ignore-mismatch"].errors()]
    assert any("'model.vision_embedder.patch_dense'" in m and "'model.embed_vision.patch_dense'" in m for m in messages)
    assert any("'model.embed_vision.multimodal_embedder.embedding_projection'" in m for m in messages)
    assert all("RANDOM" in m for m in messages)


def test_media_lints_name_the_modules(cards):
    hint = next(lint for lint in cards["ct-nvfp4a16-media"].lints if lint.code == "vllm-gemma4-unified-unquantized")
    assert set(hint.modules) == {"model.embed_audio.embedding_projection",
                                 "model.embed_vision.multimodal_embedder.embedding_projection"}
    media = next(lint for lint in cards["ct-nvfp4a16-media"].lints if lint.code == "media-module-quantized")
    assert "model.embed_vision.patch_dense" in media.modules
    uncal = next(lint for lint in cards["mo-nvfp4"].lints if lint.code == "uncalibrated-input-scale")
    assert uncal.modules == ("model.embed_audio.embedding_projection",)


def test_lints_without_runtime_check(panel):
    from omnicheck.formats import inspect_checkpoint

    card = inspect_checkpoint(panel / "ct-nvfp4a16-ignore-mismatch", runtime_check=False)
    assert card.errors() == []  # the mismatch needs run-time names: the static card cannot see it
    assert card.runtime_names is None


def test_activation_lint_on_a_media_module(cards):
    """A card whose vision projector has quantized activations gets the media-module activation warning."""
    import copy

    from omnicheck.formats.card import ActQuant
    from omnicheck.formats.lints import activation_lints

    card = copy.deepcopy(cards["ct-nvfp4a16-media"])
    for module in card.modules:
        if module.weight.quantized:
            module.activation = ActQuant("nvfp4", 4, "tensor_group", 16, "local", "input_global_scale")
    codes = {(lint.severity, lint.code) for lint in activation_lints(card)}
    assert codes == {("warning", "act-quant-media-module"), MEDIA_TOKENS}


def test_ignore_entry_matching_nothing(cards):
    import copy

    from omnicheck.formats.lints import ignore_lints
    from omnicheck.formats.runtime import runtime_modules

    card = copy.deepcopy(cards["ct-nvfp4a16"])
    card.ignore = ["model.does_not_exist", "re:.*nothing_here.*", "lm_head"]
    runtime = runtime_modules(card.path)
    got = sorted((lint.severity, lint.code, lint.modules[0]) for lint in ignore_lints(card, runtime))
    assert got == [("info", "ignore-matches-nothing", "re:.*nothing_here.*"),
                   ("warning", "ignore-matches-nothing", "model.does_not_exist")]


@pytest.mark.parametrize("name,status", [("ct-nvfp4a16-ignore-mismatch", 1), ("mo-nvfp4", 0), ("base-bf16", 0)])
def test_inspect_command_exit_status(panel, capsys, name, status):
    from omnicheck.cli import main

    assert main(["inspect", str(panel / name)]) == status
    out = capsys.readouterr().out
    assert "scheme" in out and "runs here as" in out
    if status:
        assert "ERROR   ignore-name-mismatch" in out


def test_inspect_json(panel, capsys):
    from omnicheck.cli import main

    assert main(["inspect", "--json", str(panel / "ct-nvfp4-textcal")]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["scheme"] == "NVFP4" and card["activation_quantized"] is True
    assert {"format", "scheme", "activation_quantized", "weight_bits", "producer", "groups", "kv_cache",
            "calibration", "ignore", "lints", "execution_path"} <= set(card)


def test_inspect_bad_path(tmp_path, capsys):
    from omnicheck.cli import main

    assert main(["inspect", str(tmp_path / "nope")]) == 2
    assert "not a checkpoint folder" in capsys.readouterr().err
