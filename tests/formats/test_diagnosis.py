"""Activation range diagnosis: exact counts on a constructed layer, then the real panel models with real media."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from omnicheck.formats import fp4
from omnicheck.formats.diagnosis import diagnose_activation_ranges, layer_span, summarize
from omnicheck.formats.modelopt import make_emulated_linear

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


class TwoLayer(torch.nn.Module):
    """A stand-in 'language model': token embeddings then two emulated NVFP4 W4A4 Linears."""

    def __init__(self, s2: float):
        super().__init__()
        torch.manual_seed(0)
        self.config = type("Config", (), {"image_token_id": 5, "audio_token_id": 6})()
        self.embed = torch.nn.Embedding(8, 32)
        with torch.no_grad():
            self.embed.weight[:5] = torch.randn(5, 32)  # text tokens: |x| ~ 1
            self.embed.weight[5] = torch.randn(32) * 40  # image soft token: far outside the text range
            self.embed.weight[6] = torch.randn(32) * 1e-9  # audio soft token: underflows the block scales
        self.layers = torch.nn.ModuleList(
            make_emulated_linear(torch.randn(32, 32) * 0.1, None, "nvfp4", torch.tensor(s2)) for _ in range(2)
        )

    def forward(self, input_ids, attention_mask=None):
        x = self.embed(input_ids)
        for layer in self.layers:
            x = layer(x) * 10  # keep the second layer's input on the text scale
        return x


def test_counts_on_a_constructed_model():
    s2 = 6.0 / (6 * 448)  # "calibrated" on text: amax 6
    model = TwoLayer(s2)
    text = {"input_ids": torch.tensor([[0, 1, 2, 3, 4, 1]]), "attention_mask": torch.ones(1, 6, dtype=torch.long)}
    image = {"input_ids": torch.tensor([[0, 5, 5, 5, 1, 2]]), "attention_mask": torch.ones(1, 6, dtype=torch.long)}
    audio = {"input_ids": torch.tensor([[6, 6, 6, 6, 0, 1]]), "attention_mask": torch.ones(1, 6, dtype=torch.long)}
    result = diagnose_activation_ranges(model, {"text": [text], "image": [image], "audio": [audio]})

    first = {r.modality: r for r in result.rows if r.layer == "layers.0"}
    assert set(first) == {"text", "image", "audio"}
    assert first["image"].values == 3 * 32 and first["audio"].values == 4 * 32
    assert first["text"].values == (6 + 3 + 2) * 32  # text rows of all three inputs

    image_rows = model.embed.weight[5].detach().expand(3, 32)
    limit = 6 * 448 * s2
    assert first["image"].clipped_fraction == pytest.approx(float((image_rows.abs() > limit).float().mean()))
    assert first["image"].clipped_fraction > 0.5
    assert first["image"].saturated_block_fraction == 1.0
    assert first["audio"].underflow_fraction == 1.0 and first["audio"].relative_error == pytest.approx(1.0)
    assert first["text"].clipped_fraction == 0.0 and first["text"].underflow_fraction == 0.0
    expected = (fp4.fake_quantize_nvfp4(image_rows, s2) - image_rows).norm() / image_rows.norm()
    assert first["image"].relative_error == pytest.approx(float(expected), rel=1e-5)

    assert "layers.0" in result.flagged["image"] and "layers.0" in result.flagged["audio"]
    assert "text" not in result.flagged
    assert any(line.startswith("image: ") and "clip" in line for line in result.summary)
    data = result.to_json()
    assert {"rows", "flagged", "summary"} == set(data) and data["rows"][0]["layer"].startswith("layers.")


def test_summary_and_spans():
    assert layer_span(["model.language_model.layers.0.mlp.up_proj", "model.language_model.layers.1.mlp.up_proj",
                       "model.language_model.layers.3.self_attn.q_proj", "model.embed_audio.proj"]) == \
        "layers 0-1, 3; model.embed_audio.proj"
    flagged, summary = summarize([])
    assert flagged == {} and summary == []


def _panel_inputs(backend):
    from omnicheck.types import AudioPart, ImagePart, Message, Sample

    speech = sorted((FIXTURES / "speech").rglob("*.flac")) + sorted((FIXTURES / "speech").rglob("*.wav"))
    samples = {
        "text": Sample("t", (Message.user("Write a short poem about the sea without using any commas."),)),
        "image": Sample("i", (Message.user(ImagePart(FIXTURES / "images" / "astronaut.jpg"), "Describe this image."),)),
        "audio": Sample("a", (Message.user(AudioPart(speech[0]), "Transcribe this audio."),)),
    }
    return {m: [backend._inputs([s])] for m, s in samples.items()}


@pytest.mark.parametrize("name,layers", [("ct-nvfp4-textcal", 14), ("ct-nvfp4-mlp", 6), ("ct-fp8-dynamic", 14)])
def test_real_compressed_tensors_variants(panel, name, layers):
    from omnicheck.backends.hf import HFBackend

    backend = HFBackend(panel / name, device="cpu")
    try:
        result = diagnose_activation_ranges(backend.model, _panel_inputs(backend))
    finally:
        backend.close()
    seen = {r.layer for r in result.rows}
    assert len(seen) == layers
    for modality in ("text", "image", "audio"):
        rows = [r for r in result.rows if r.modality == modality]
        assert len(rows) == layers, modality
        for row in rows:
            assert 0 <= row.clipped_fraction <= 1 and 0 <= row.underflow_fraction <= 1
            assert 0.0 < row.relative_error < 0.5
    if name == "ct-fp8-dynamic":
        assert all(r.clipped_fraction == 0 and r.saturated_block_fraction is None for r in result.rows)
    assert result.summary


def test_real_modelopt_variant_matches_its_own_forward(panel):
    """On the emulated ModelOpt model, the diagnosis' text error equals the error the layer's forward applies."""
    from omnicheck.formats.modelopt import load_modelopt

    model, processor, tokenizer = load_modelopt(panel / "mo-nvfp4")
    batch = tokenizer(["The quick brown fox jumps over the lazy dog."], return_tensors="pt")
    result = diagnose_activation_ranges(model, {"text": [dict(batch)]})
    layer = "model.language_model.layers.0.mlp.gate_proj"
    row = next(r for r in result.rows if r.layer == layer and r.modality == "text")
    captured = {}
    module = dict(model.named_modules())[layer]

    def capture(_module, args):
        captured["x"] = args[0].detach().float()

    handle = module.register_forward_pre_hook(capture)
    with torch.no_grad():
        model(**batch)
    handle.remove()
    x = captured["x"].reshape(-1, captured["x"].shape[-1])
    expected = (fp4.fake_quantize_nvfp4(x, module.input_s2) - x).norm() / x.norm()
    assert row.relative_error == pytest.approx(float(expected), rel=1e-5)
    assert row.format == "nvfp4" and row.values == x.numel()
    assert len({r.layer for r in result.rows}) == 14  # the audio projection has no input_scale: weight-only


def test_no_activation_quantized_layers(panel):
    from omnicheck.formats.modelopt import load_modelopt_model

    model, _ = load_modelopt_model(panel / "mo-w4a16-nvfp4")
    result = diagnose_activation_ranges(model, {"text": []})
    assert result.rows == [] and "nothing to diagnose" in result.summary[0]
