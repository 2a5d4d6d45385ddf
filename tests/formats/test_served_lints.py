"""The served-path lint: what the vLLM version in use reads from config.json and the checkpoint lacks, with the fix.

That vLLM 0.32 really refuses omni-small without the field and serves the fixed copy is shown against the real
server in tests/served/test_gemma4_unified.py; here the lint itself, on the real checkpoints.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omnicheck.formats import inspect_checkpoint
from omnicheck.formats.serving import CODE, missing_for_vllm, version_tuple, vllm_in_use, vllm_ready_config

REPO = Path(__file__).resolve().parents[2]
OMNI_SMALL = REPO / "fixtures" / "omni-small"
SYMPTOM = "AttributeError: 'Gemma4UnifiedVisionConfig' object has no attribute 'num_soft_tokens'"


def served_lints(card):
    return [lint for lint in card.lints if lint.code == CODE]


def copy_checkpoint(tmp_path: Path, config: dict | None = None, processor: bool = True) -> Path:
    out = tmp_path / "ckpt"
    shutil.copytree(OMNI_SMALL, out, ignore=shutil.ignore_patterns("heldout", "probe-data", "*.safetensors"))
    shutil.copy(OMNI_SMALL / "model.safetensors", out / "model.safetensors")
    if config is not None:
        (out / "config.json").write_text(json.dumps(config))
    if not processor:
        (out / "processor_config.json").unlink()
    return out


def test_no_vllm_beside_omnicheck_here():
    """The severities below assume the runtime venv, where vLLM is not installed (it lives in its own venv)."""
    assert vllm_in_use() is None


def test_omni_small_lacks_what_vllm_032_reads_and_the_lint_says_the_fix():
    [lint] = served_lints(inspect_checkpoint(OMNI_SMALL, runtime_check=False, vllm_version="0.32.0"))
    assert lint.severity == "warning"
    assert lint.modules == ("vision_config.num_soft_tokens",)
    assert lint.message.startswith("vLLM 0.32.0 reads vision_config.num_soft_tokens to serve gemma4_unified")
    assert "processor_config.json's image_processor.max_soft_tokens = 70" in lint.message
    assert SYMPTOM in lint.message
    assert lint.message.endswith('-- fix: add "num_soft_tokens": 70 to "vision_config" in config.json')


def test_without_a_vllm_version_it_is_information_about_the_version_checked():
    [lint] = served_lints(inspect_checkpoint(OMNI_SMALL, runtime_check=False))
    assert lint.severity == "info"
    assert lint.message.startswith("vLLM 0.32.0 (checked; none installed here: `omnicheck inspect --vllm VERSION`")


@pytest.mark.parametrize("version, fires", [("0.31.2", False), ("0.32.0", True), ("0.32.0+cpu", True),
                                            ("0.33.1.dev4", True), ("1.0", True)])
def test_the_requirement_holds_from_the_version_it_was_seen_in(version, fires):
    assert bool(missing_for_vllm(OMNI_SMALL, version)) is fires


def test_version_numbers_compare_as_numbers():
    assert version_tuple("0.32.0+cpu") == (0, 32, 0)
    assert version_tuple("0.100") > version_tuple("0.32.0")
    assert version_tuple("dev") == ()


def test_the_fixed_config_silences_the_lint_and_changes_nothing_else(tmp_path):
    fixed = vllm_ready_config(OMNI_SMALL)
    original = json.loads((OMNI_SMALL / "config.json").read_text())
    assert fixed["vision_config"].pop("num_soft_tokens") == 70
    assert fixed == original
    folder = copy_checkpoint(tmp_path, vllm_ready_config(OMNI_SMALL))
    assert served_lints(inspect_checkpoint(folder, runtime_check=False, vllm_version="0.32.0")) == []


def test_without_the_processor_the_lint_says_where_the_value_comes_from(tmp_path):
    folder = copy_checkpoint(tmp_path, processor=False)
    [lint] = served_lints(inspect_checkpoint(folder, runtime_check=False, vllm_version="0.32.0"))
    assert "has no processor_config.json's image_processor.max_soft_tokens either" in lint.message
    assert lint.message.endswith("-- fix: add vision_config.num_soft_tokens to config.json: the value the model's "
                                 "processor uses (processor_config.json's image_processor.max_soft_tokens)")
    assert "num_soft_tokens" not in vllm_ready_config(folder)["vision_config"]  # nothing to fill it from


def test_other_architectures_are_not_linted(tmp_path):
    config = json.loads((OMNI_SMALL / "config.json").read_text())
    folder = copy_checkpoint(tmp_path, {**config, "model_type": "gemma4"})
    assert missing_for_vllm(folder, "0.32.0") == []


def test_inspect_command_takes_the_vllm_version_and_a_warning_does_not_fail_it():
    result = subprocess.run([sys.executable, "-m", "omnicheck.cli", "inspect", str(OMNI_SMALL), "--static",
                             "--vllm", "0.32.0"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if CODE in line]
    assert line.strip().startswith(f"WARNING {CODE}: vLLM 0.32.0 reads vision_config.num_soft_tokens")
    as_json = subprocess.run([sys.executable, "-m", "omnicheck.cli", "inspect", str(OMNI_SMALL), "--static",
                              "--json", "--vllm", "0.31.0"], capture_output=True, text=True, cwd=REPO)
    assert CODE not in as_json.stdout and json.loads(as_json.stdout)["model_type"] == "gemma4_unified"
