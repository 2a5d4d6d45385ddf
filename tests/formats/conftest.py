"""The committed quantized panel (fixtures/checkpoints, see its PROVENANCE.md) and helpers for the formats tests."""

from __future__ import annotations

from pathlib import Path

import pytest

PANEL = Path(__file__).resolve().parents[2] / "fixtures" / "checkpoints"
CT_VARIANTS = ["ct-nvfp4a16", "ct-nvfp4-textcal", "ct-fp8-dynamic", "ct-nvfp4-mlp", "ct-nvfp4a16-media",
               "ct-nvfp4a16-ignore-mismatch"]
MO_VARIANTS = ["mo-nvfp4", "mo-nvfp4-mlp", "mo-w4a16-nvfp4", "mo-fp8"]
ALL_VARIANTS = ["base-bf16", *CT_VARIANTS, *MO_VARIANTS]


@pytest.fixture(scope="session")
def panel() -> Path:
    missing = [name for name in ALL_VARIANTS if not (PANEL / name / "config.json").exists()]
    assert not missing, f"panel checkpoints missing: {missing} (rebuild with scripts/build_quant_panel.py all)"
    return PANEL


@pytest.fixture(scope="session")
def cards(panel):
    """Every panel checkpoint's card, run-time names checked (one meta build, cached)."""
    from omnicheck.formats import inspect_checkpoint

    return {name: inspect_checkpoint(panel / name) for name in ALL_VARIANTS}
