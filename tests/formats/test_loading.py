"""Every panel variant loads (compressed-tensors through the hf backend, ModelOpt through omnicheck's loader) or is
refused with its reason; the emulation is checked against the original weights and against compressed-tensors."""

from __future__ import annotations

import pytest
import torch

from tests.formats.conftest import CT_VARIANTS, MO_VARIANTS

PROMPT = "A photo of a cat sitting on a wooden table next to a cup of coffee."


def _logits(model, tokenizer) -> torch.Tensor:
    ids = tokenizer([PROMPT], return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits.float()


@pytest.fixture(scope="module")
def base(panel):
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    model = AutoModelForImageTextToText.from_pretrained(panel / "base-bf16").eval()
    return model, AutoTokenizer.from_pretrained(panel / "base-bf16")


@pytest.fixture(scope="module")
def base_tensors(panel):
    from safetensors.torch import load_file

    return load_file(panel / "base-bf16" / "model.safetensors")


# --- compressed-tensors: through the lead's transformers backend ---


@pytest.mark.parametrize("name", [n for n in CT_VARIANTS if n != "ct-nvfp4a16-ignore-mismatch"])
def test_compressed_tensors_variants_load_and_generate(panel, name):
    from omnicheck.backends.hf import HFBackend
    from omnicheck.types import GenerationSettings, Message, Sample

    backend = HFBackend(panel / name, device="cpu")
    try:
        out = backend.generate([Sample("s", (Message.user("Describe a cat."),))], GenerationSettings(max_new_tokens=3))
        assert len(out) == 1 and out[0].tokens <= 3
        assert {"text", "image", "audio"} <= backend.modalities
    finally:
        backend.close()


def test_ignore_mismatch_variant_is_refused_with_the_keys(panel):
    from omnicheck.backends.hf import HFBackend
    from omnicheck.errors import ModelLoadError

    with pytest.raises(ModelLoadError) as err:
        HFBackend(panel / "ct-nvfp4a16-ignore-mismatch", device="cpu")
    text = str(err.value)
    assert "missing" in text and "unexpected" in text
    assert "model.embed_vision.multimodal_embedder.embedding_projection.weight_global_scale" in text
    assert "model.embed_vision.patch_dense.weight" in text


def test_transformers_refuses_modelopt_which_is_why_omnicheck_loads_it(panel):
    from transformers import AutoModelForImageTextToText

    from omnicheck.backends.hf import HFBackend

    with pytest.raises((ValueError, RuntimeError, OSError)):
        AutoModelForImageTextToText.from_pretrained(panel / "mo-nvfp4", local_files_only=True)
    backend = HFBackend(panel / "mo-nvfp4", device="cpu")
    try:
        assert backend.describe()["execution_path"]["weights"].startswith("emulated by omnicheck")
    finally:
        backend.close()


def test_compressed_tensors_w4a4_really_fake_quantizes_activations(panel):
    """NVFP4 W4A4 through transformers differs from the same packed weights with activations unquantized; with
    them disabled it equals the A16 variant exactly; omnicheck's NVFP4 activation math equals compressed-tensors'."""
    from safetensors.torch import load_file

    from omnicheck.backends.hf import HFBackend
    from omnicheck.formats import fp4

    a16_tensors = load_file(panel / "ct-nvfp4a16" / "model.safetensors")
    w4a4_tensors = load_file(panel / "ct-nvfp4-textcal" / "model.safetensors")
    assert all(torch.equal(a16_tensors[k], w4a4_tensors[k]) for k in a16_tensors)  # same packed weights

    a16 = HFBackend(panel / "ct-nvfp4a16", device="cpu")
    w4a4 = HFBackend(panel / "ct-nvfp4-textcal", device="cpu")
    try:
        ref = _logits(a16.model, a16.tokenizer)
        quantized = _logits(w4a4.model, w4a4.tokenizer)
        assert (quantized - ref).abs().max() > 1e-2

        schemes = {n: m for n, m in w4a4.model.named_modules() if getattr(m, "quantization_scheme", None)}
        assert len(schemes) == 14
        saved = {n: m.quantization_scheme.input_activations for n, m in schemes.items()}
        for module in schemes.values():
            module.quantization_scheme.input_activations = None
        assert torch.equal(_logits(w4a4.model, w4a4.tokenizer), ref)

        for name, module in schemes.items():
            module.quantization_scheme.input_activations = saved[name]

        # omnicheck's NVFP4 activation math equals compressed-tensors' own on the real inputs of every layer
        # (in float32: in bf16, compressed-tensors rounds amax/6 to bf16 before picking the FP8 block scale).
        from compressed_tensors.quantization.lifecycle.forward import forward_quantize

        inputs = {}

        def capture(name):
            def hook(_module, args):
                inputs[name] = args[0].detach().float()

            return hook

        handles = [m.register_forward_pre_hook(capture(n)) for n, m in schemes.items()]
        assert torch.equal(_logits(w4a4.model, w4a4.tokenizer), quantized)
        for handle in handles:
            handle.remove()
        assert set(inputs) == set(schemes)
        for name, module in schemes.items():
            theirs = forward_quantize(module, inputs[name], "input", module.quantization_scheme.input_activations)
            ours = fp4.fake_quantize_nvfp4(inputs[name], 1.0 / module.input_global_scale.float())
            assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-7), name
            assert not torch.equal(ours, inputs[name])
    finally:
        a16.close()
        w4a4.close()


# --- ModelOpt: omnicheck's loader ---


@pytest.mark.parametrize("name", MO_VARIANTS)
def test_modelopt_variants_load_with_emulation(panel, base, name):
    from omnicheck.formats import inspect_checkpoint
    from omnicheck.formats.modelopt import emulated_linear_class, load_modelopt_model

    card = inspect_checkpoint(panel / name)
    model, info = load_modelopt_model(panel / name, device="cpu")
    emulated = {n: m for n, m in model.named_modules() if isinstance(m, emulated_linear_class())}
    assert set(emulated) == {m.runtime_name for m in card.quantized_modules}
    acts = {m.runtime_name: (m.activation.format if m.activation else None) for m in card.quantized_modules}
    assert {n: m.activation_format for n, m in emulated.items()} == acts
    logits = _logits(model, base[1])
    assert torch.isfinite(logits).all()
    cosine = torch.nn.functional.cosine_similarity(logits.flatten(), _logits(base[0], base[1]).flatten(), dim=0)
    assert cosine > 0.6  # random tiny model: quantization noise is large but the model is the same model
    assert info["dtype"] == "bfloat16"


@pytest.mark.parametrize("name", ["mo-nvfp4", "mo-w4a16-nvfp4", "mo-nvfp4-mlp"])
def test_modelopt_nvfp4_weights_against_the_original(panel, base_tensors, name):
    """The stored codes and block scales are what NVFP4 makes of the original weights under the stored
    weight_scale_2 (block scales may differ only where the ideal scale sits on an FP8 rounding midpoint), and the
    dequantized weights are within NVFP4's error of the originals."""
    from safetensors.torch import load_file

    from omnicheck.formats import fp4

    stored = load_file(panel / name / "model.safetensors")
    modules = [k[: -len(".weight_scale_2")] for k in stored if k.endswith(".weight_scale_2")]
    assert modules
    for module in modules:
        original = base_tensors[module + ".weight"].float()
        s2 = stored[module + ".weight_scale_2"].float()
        scales = stored[module + ".weight_scale"].float()
        ours = fp4.nvfp4_block_scales(original, s2)
        ideal = original.unflatten(-1, (-1, 16)).abs().amax(-1) / 6 / s2
        differ = ours != scales
        assert differ.float().mean() < 0.02, module
        midpoint = (ours[differ] + scales[differ]) / 2
        assert torch.allclose(ideal[differ], midpoint, rtol=1e-5), module
        step = scales.repeat_interleave(16, -1) * s2
        codes = fp4.unpack_e2m1(stored[module + ".weight"])
        assert torch.equal(codes, fp4.round_to_e2m1(original / step)), module
        dequantized = fp4.dequantize_nvfp4(stored[module + ".weight"], stored[module + ".weight_scale"], s2)
        relative = (dequantized - original).norm() / original.norm()
        assert 0.02 < relative < 0.12, module


def test_modelopt_fp8_weights_against_the_original(panel, base_tensors):
    from safetensors.torch import load_file

    from omnicheck.formats import fp4

    stored = load_file(panel / "mo-fp8" / "model.safetensors")
    modules = [k[: -len(".weight_scale")] for k in stored if k.endswith(".weight_scale")]
    for module in modules:
        original = base_tensors[module + ".weight"].float()
        dequantized = fp4.dequantize_fp8(stored[module + ".weight"], stored[module + ".weight_scale"])
        assert (dequantized - original).norm() / original.norm() < 0.05


def test_modelopt_activation_emulation_is_active(panel, base):
    """W4A4 logits move when activation fake-quant is switched off, and then equal the W4A16 export's."""
    from omnicheck.formats.modelopt import emulated_linear_class, load_modelopt_model

    w4a4, _ = load_modelopt_model(panel / "mo-nvfp4")
    w4a16, _ = load_modelopt_model(panel / "mo-w4a16-nvfp4")
    quantized = _logits(w4a4, base[1])
    for module in w4a4.modules():
        if isinstance(module, emulated_linear_class()):
            module.activation_format = None
    weight_only = _logits(w4a4, base[1])
    assert (quantized - weight_only).abs().max() > 1e-2
    assert torch.equal(weight_only, _logits(w4a16, base[1]))


def test_load_modelopt_returns_processor_and_tokenizer(panel):
    from omnicheck.formats.modelopt import load_modelopt

    model, processor, tokenizer = load_modelopt(panel / "mo-nvfp4-mlp", device="cpu")
    assert processor.image_processor is not None and processor.feature_extractor is not None
    assert tokenizer.padding_side == "left"
    assert next(model.parameters()).device.type == "cpu"


def test_modelopt_loader_refuses_a_missing_tensor(panel, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from omnicheck.errors import ModelLoadError
    from omnicheck.formats.modelopt import load_modelopt_model

    copy = tmp_path / "broken"
    shutil.copytree(panel / "mo-nvfp4", copy)
    tensors = load_file(copy / "model.safetensors")
    del tensors["model.language_model.layers.1.post_attention_layernorm.weight"]
    save_file(tensors, copy / "model.safetensors")
    with pytest.raises(ModelLoadError, match="1 missing .*post_attention_layernorm"):
        load_modelopt_model(copy)


def test_modelopt_loader_refuses_other_formats(panel):
    from omnicheck.errors import ModelLoadError
    from omnicheck.formats.modelopt import load_modelopt_model

    with pytest.raises(ModelLoadError, match="not ModelOpt"):
        load_modelopt_model(panel / "ct-nvfp4a16")


def test_modelopt_model_generates_through_the_hf_backend_machinery(panel):
    """HFBackend loads ModelOpt exports through omnicheck's loader: text, image and audio generation and lm-eval."""
    from pathlib import Path

    from omnicheck.backends.hf import HFBackend
    from omnicheck.types import AudioPart, GenerationSettings, ImagePart, Message, Sample

    fixtures = Path(__file__).resolve().parents[2] / "fixtures"
    speech = sorted((fixtures / "speech").rglob("*.flac")) + sorted((fixtures / "speech").rglob("*.wav"))
    backend = HFBackend(panel / "mo-nvfp4")
    assert backend.describe()["execution_path"]["weights"].startswith("emulated by omnicheck")
    samples = [
        Sample("t", (Message.user("Describe a cat."),)),
        Sample("i", (Message.user(ImagePart(fixtures / "images" / "astronaut.jpg"), "Describe this image."),)),
        Sample("a", (Message.user(AudioPart(speech[0]), "Transcribe this audio."),)),
    ]
    out = backend.generate(samples, GenerationSettings(max_new_tokens=3, batch_size=1))
    assert len(out) == 3 and all(o.tokens <= 3 for o in out)
    assert backend.describe()["dtype"] == "bfloat16"
    from lm_eval.models.huggingface import HFLM

    assert isinstance(backend.lm_eval_model(), HFLM)
