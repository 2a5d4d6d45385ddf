"""The committed quantized panel (fixtures/checkpoints, see its PROVENANCE.md) and helpers for the formats tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnicheck.formats.serving import vllm_in_use

PANEL = Path(__file__).resolve().parents[2] / "fixtures" / "checkpoints"

# (severity, code) of the lints the panel tests expect
MODELOPT = ("info", "modelopt-emulated")
MEDIA_TOKENS = ("warning", "act-quant-media-tokens")
MEDIA_WEIGHTS = ("warning", "media-module-quantized")
# every gemma4_unified panel config was saved by transformers without vision_config.num_soft_tokens, which vLLM 0.32
# reads: a warning when a vLLM is installed beside omnicheck, else information about the version checked
SERVED = ("warning" if vllm_in_use() else "info", "vllm-config-missing-field")
CT_VARIANTS = ["ct-nvfp4a16", "ct-nvfp4-textcal", "ct-fp8-dynamic", "ct-nvfp4-mlp", "ct-nvfp4a16-media",
               "ct-nvfp4a16-ignore-mismatch"]
MO_VARIANTS = ["mo-nvfp4", "mo-nvfp4-mlp", "mo-w4a16-nvfp4", "mo-fp8"]
ALL_VARIANTS = ["base-bf16", *CT_VARIANTS, *MO_VARIANTS]
# issue 14's recipes (`scripts/build_quant_panel.py recipes`): their gemma4 bases and one checkpoint per recipe
RECIPE_BASES = ["gemma4-e4b-bf16", "gemma4-moe-bf16"]
RECIPE_VARIANTS = ["ct-12b-nvfp4a16-writeup", "ct-12b-nvfp4-writeup-textcal", "ct-e4b-nvfp4a16", "ct-e4b-fp8-block-fp8kv",
                   "mo-nvfp4-mlp-fp8kv", "mo-e4b-fp8-pb-wo", "mo-moe-nvfp4"]


@pytest.fixture(scope="session")
def panel() -> Path:
    missing = [name for name in ALL_VARIANTS + RECIPE_BASES + RECIPE_VARIANTS if not (PANEL / name / "config.json").exists()]
    assert not missing, f"panel checkpoints missing: {missing} (rebuild with scripts/build_quant_panel.py all)"
    return PANEL


@pytest.fixture(scope="session")
def cards(panel):
    """Every panel checkpoint's card, run-time names checked (one meta build per architecture, cached)."""
    from omnicheck.formats import inspect_checkpoint

    return {name: inspect_checkpoint(panel / name) for name in ALL_VARIANTS + RECIPE_BASES + RECIPE_VARIANTS}
