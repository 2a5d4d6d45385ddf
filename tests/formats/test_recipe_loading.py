"""Every recipe checkpoint loads (and its emulation is checked against the bf16 base it was made from) or is
refused with its real reason; per-expert ModelOpt exports are re-fused; FP8 KV caches are emulated."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.formats.conftest import PANEL

PROMPT = "A photo of a cat sitting on a wooden table next to a cup of coffee."
BASE_OF = {r["name"]: r.get("base", "base-bf16") for r in json.loads((PANEL / "provenance.json").read_text())}


def _logits(model, base: str) -> torch.Tensor:
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(PANEL / base)([PROMPT], return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits.float()


def _base_model(name: str):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(PANEL / name, dtype=torch.float32).eval()


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


# --- refused with the real reason ---


@pytest.mark.parametrize("name", ["ct-12b-nvfp4a16-writeup", "ct-12b-nvfp4-writeup-textcal"])
def test_writeup_recipes_are_refused_for_what_llmcompressor_wrote(name):
    """llmcompressor 0.14 writes the write-up's 're:.*embedding_projection.*' as the on-disk name of the vision
    embedder, which transformers renames on load: the projection is quantized on load and comes back random."""
    from omnicheck.backends.hf import HFBackend
    from omnicheck.errors import ModelLoadError

    with pytest.raises(ModelLoadError) as err:
        HFBackend(PANEL / name, device="cpu")
    assert "model.embed_vision.multimodal_embedder.embedding_projection.weight_global_scale" in str(err.value)


def test_session_refuses_an_error_lint_before_loading(tmp_path):
    from omnicheck.session import RunConfig, Session
    from omnicheck.variants import Variant

    variants = [Variant("bf16", str(PANEL / "base-bf16"), is_reference=True),
                Variant("writeup", str(PANEL / "ct-12b-nvfp4-writeup-textcal"))]
    session = Session(RunConfig(variants=variants, probes=["image_caption"], tier="smoke", report_dir=tmp_path / "r",
                                cache_dir=tmp_path / "c", limit=1, write_html=False))
    result = session.result("writeup", "image_caption")
    assert result.status == "error"
    assert result.reason.startswith("refused before loading (omnicheck inspect): ignore-name-mismatch")
    assert "activation-scale-uncalibrated" in result.reason and "model.embed_vision.patch_dense" in result.reason
    assert session.states["writeup"].description == {}  # nothing was loaded


# --- compressed-tensors through transformers, KV cache emulated by omnicheck ---


def test_compressed_tensors_fp8_kv_scales_are_dropped_by_transformers_so_omnicheck_emulates_them():
    from transformers import AutoModelForImageTextToText

    from omnicheck.backends.hf import HFBackend
    from omnicheck.formats import kvcache

    _, info = AutoModelForImageTextToText.from_pretrained(PANEL / "ct-e4b-fp8-block-fp8kv", output_loading_info=True)
    assert sorted(info["unexpected_keys"]) == sorted(f"model.language_model.layers.{i}.self_attn.{kv}_scale"
                                                     for i in range(2) for kv in "kv")
    backend = HFBackend(PANEL / "ct-e4b-fp8-block-fp8kv", device="cpu")
    try:
        assert backend.load_info["kv_static_layers"] == 2
        assert {"text", "image", "audio", "video"} == set(backend.modalities)
        emulated = _logits(backend.model, "gemma4-e4b-bf16")
        layers = [m for _, m in kvcache._attention_layers(backend.model)]
        saved = [getattr(m, kvcache._ATTR) for m in layers]
        for module in layers:
            delattr(module, kvcache._ATTR)
        plain = _logits(backend.model, "gemma4-e4b-bf16")
        assert (emulated - plain).abs().max() > 0  # the KV format moves the logits
        assert _cosine(emulated, plain) > 0.98  # and only by FP8 rounding (e4m3 keeps 3 mantissa bits; 0.9955 seen)
        assert all(pair is not None and float(pair[0]) > 0 for pair in saved)
    finally:
        backend.close()


def test_kv_emulation_is_fp8_rounding_of_k_and_v_with_the_stored_scales():
    """Every language-model attention layer runs through the wrapper with its own stored scales, and the wrapper
    hands the model's attention exactly e4m3(K / k_scale) * k_scale (V likewise; amax / 448 where none are stored)."""
    from safetensors.torch import load_file

    from omnicheck.formats import kvcache
    from omnicheck.formats.modelopt import load_modelopt_model

    model, _ = load_modelopt_model(PANEL / "mo-nvfp4-mlp-fp8kv", dtype="float32")
    assert model.config.text_config._attn_implementation == "omnicheck_kv_sdpa"
    assert model.config._attn_implementation == "sdpa"  # only the language model attention is wrapped
    stored = load_file(PANEL / "mo-nvfp4-mlp-fp8kv" / "model.safetensors")
    for name, layer in kvcache._attention_layers(model):
        k_scale, v_scale = getattr(layer, kvcache._ATTR)
        assert float(k_scale) == float(stored[f"{name}.k_proj.k_scale"])
        assert float(v_scale) == float(stored[f"{name}.v_proj.v_scale"])

    seen = {}

    def base(module, query, key, value, mask, **kwargs):
        seen.update(key=key, value=value)
        return query, None

    wrapper = kvcache._wrapper(base)
    layer = torch.nn.Module()
    key, value = torch.randn(1, 1, 5, 32) * 3, torch.randn(1, 1, 5, 32)
    setattr(layer, kvcache._ATTR, (torch.tensor(0.01), torch.tensor(0.002)))
    wrapper(layer, key, key, value, None)
    expected_k = (key / 0.01).clamp(-448, 448).to(torch.float8_e4m3fn).float() * 0.01
    expected_v = (value / 0.002).clamp(-448, 448).to(torch.float8_e4m3fn).float() * 0.002
    assert torch.allclose(seen["key"], expected_k, rtol=1e-6) and torch.allclose(seen["value"], expected_v, rtol=1e-6)
    assert not torch.equal(seen["key"], key)
    setattr(layer, kvcache._ATTR, None)  # no stored scales: per-tensor amax / 448 per call
    wrapper(layer, key, key, value, None)
    scale = key.abs().amax() / 448
    assert torch.allclose(seen["key"], (key / scale).to(torch.float8_e4m3fn).float() * scale, rtol=1e-6)
    plain = torch.nn.Module()  # a vision attention: untouched
    wrapper(plain, key, key, value, None)
    assert seen["key"] is key


# --- ModelOpt: per-expert MoE, FP8 per-block, NVFP4 MLP-only with FP8 KV ---


def test_moe_per_expert_export_is_refused_into_the_models_experts():
    from omnicheck.formats.experts import emulated_experts_class
    from omnicheck.formats.modelopt import load_modelopt_model

    model, info = load_modelopt_model(PANEL / "mo-moe-nvfp4", dtype="float32")
    experts = {n: m for n, m in model.named_modules() if isinstance(m, emulated_experts_class())}
    assert sorted(experts) == ["model.language_model.layers.0.experts", "model.language_model.layers.1.experts"]
    assert info["emulated_modules"]["model.language_model.layers.0.experts"] == (
        "4 experts re-fused from per-expert nvfp4 exports, nvfp4 activations")
    base = _base_model("gemma4-moe-bf16")
    for name, module in experts.items():
        original = base.get_submodule(name)
        assert module.gate_up_proj.shape == original.gate_up_proj.shape == (4, 64, 64)
        relative = (module.gate_up_proj - original.gate_up_proj).norm() / original.gate_up_proj.norm()
        assert 0.02 < relative < 0.12  # NVFP4's error on the original experts, gate and up in their own halves
        relative = (module.down_proj - original.down_proj).norm() / original.down_proj.norm()
        assert 0.02 < relative < 0.12
        assert module.gate_up_input_s2.shape == (4,) and module.activation_format == "nvfp4"

    # the experts loop is transformers' own: same weights, activation quantization off -> same output
    mine = experts["model.language_model.layers.0.experts"]
    theirs = base.get_submodule("model.language_model.layers.0.experts")
    with torch.no_grad():
        theirs.gate_up_proj.copy_(mine.gate_up_proj)
        theirs.down_proj.copy_(mine.down_proj)
    x, index, weights = torch.randn(9, 64), torch.randint(0, 4, (9, 2)), torch.rand(9, 2)
    mine.activation_format = None
    assert torch.allclose(mine(x, index, weights), theirs(x, index, weights), atol=1e-6)
    mine.activation_format = "nvfp4"
    assert not torch.allclose(mine(x, index, weights), theirs(x, index, weights), atol=1e-4)


def test_moe_export_against_its_bf16_reference_gives_verdicts(tmp_path):
    from omnicheck.session import RunConfig, Session
    from omnicheck.variants import Variant

    variants = [Variant("bf16", str(PANEL / "gemma4-moe-bf16"), is_reference=True),
                Variant("w4a4", str(PANEL / "mo-moe-nvfp4"))]
    session = Session(RunConfig(variants=variants, probes=["image_caption", "speech_wer"], tier="smoke",
                                report_dir=tmp_path / "r", cache_dir=tmp_path / "c", limit=2, max_new_tokens=3,
                                write_html=False))
    for probe in ("image_caption", "speech_wer"):
        result = session.result("w4a4", probe)
        assert result.status == "ok", result.reason
        assert session.verdict("w4a4", probe).status in ("PASS", "DEGRADED", "BROKEN", "INCONCLUSIVE")


def test_fp8_per_block_weights_against_the_original():
    """ModelOpt FP8_PB_WO scales come as [row blocks, 1, column blocks, 1] (or a scalar for one block); dequantized
    with them the weights are within FP8's error of the base's."""
    from safetensors.torch import load_file

    from omnicheck.formats import fp4

    stored = load_file(PANEL / "mo-e4b-fp8-pb-wo" / "model.safetensors")
    base = load_file(PANEL / "gemma4-e4b-bf16" / "model.safetensors")
    shapes = {}
    for key in [k for k in stored if k.endswith(".weight_scale")]:
        module = key[: -len(".weight_scale")]
        weight, scale = stored[module + ".weight"], stored[key]
        shapes[tuple(weight.shape)] = tuple(scale.shape)
        dequantized = fp4.dequantize_fp8(weight, scale)
        original = base[module + ".weight"].float()
        assert (dequantized - original).norm() / original.norm() < 0.05, module
    assert shapes[(256, 64)] == (2, 1, 1, 1) and shapes[(64, 256)] == (1, 1, 2, 1) and shapes[(64, 64)] == ()


@pytest.mark.parametrize("name,low", [("mo-e4b-fp8-pb-wo", 0.98), ("mo-nvfp4-mlp-fp8kv", 0.8), ("mo-moe-nvfp4", 0.6)])
def test_modelopt_recipes_load_and_stay_the_same_model(name, low):
    from omnicheck.formats import inspect_checkpoint
    from omnicheck.formats.experts import emulated_experts_class
    from omnicheck.formats.modelopt import emulated_linear_class, load_modelopt_model

    card = inspect_checkpoint(PANEL / name)
    model, info = load_modelopt_model(PANEL / name, dtype="float32")
    linear = {n for n, m in model.named_modules() if isinstance(m, emulated_linear_class())}
    fused = {n for n, m in model.named_modules() if isinstance(m, emulated_experts_class())}
    expected = {m.runtime_name for m in card.quantized_modules}
    assert linear | {f"{n}.{i}.{p}" for n in fused for i in range(4) for p in ("gate_proj", "up_proj", "down_proj")} \
        == expected
    cosine = _cosine(_logits(model, BASE_OF[name]), _logits(_base_model(BASE_OF[name]), BASE_OF[name]))
    assert low < cosine < 1.0


def test_modelopt_moe_refusals_name_the_real_cause(tmp_path):
    from safetensors.torch import load_file, save_file

    from omnicheck.errors import ModelLoadError
    from omnicheck.formats.modelopt import load_modelopt_model

    one_short = tmp_path / "one-expert-short"
    shutil.copytree(PANEL / "mo-moe-nvfp4", one_short)
    tensors = load_file(one_short / "model.safetensors")
    for key in [k for k in tensors if ".layers.1.experts.3.up_proj." in k]:
        del tensors[key]
    save_file(tensors, one_short / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match=r"does not cover the model's 4 experts \(missing 3.up_proj\)"):
        load_modelopt_model(one_short)

    no_moe = tmp_path / "config-without-moe"
    shutil.copytree(PANEL / "mo-moe-nvfp4", no_moe)
    config = json.loads((no_moe / "config.json").read_text())
    config["text_config"]["enable_moe_block"] = False
    (no_moe / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="one expert of an unfused MoE export, but Gemma4ForConditionalGeneration "
                                             "has no fused experts module"):
        load_modelopt_model(no_moe)
