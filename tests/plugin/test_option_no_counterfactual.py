"""--omnicheck-no-counterfactual: media probes skip their rerun on blanked media; every media probe of the registry."""

from __future__ import annotations

import pytest
from option_runs import MEDIA_PROBES


@pytest.mark.parametrize("probe", MEDIA_PROBES)
def test_no_counterfactual_skips_the_blank_media_rerun(run_omnicheck, read_document, tiny_gemma, probe):
    args = ("--model", f"bf16={tiny_gemma}", "--omnicheck-probe", probe, "--omnicheck-limit", "1", "--omnicheck-max-new-tokens", "4")
    assert run_omnicheck(*args).ret == 0
    (with_blank,) = read_document()["results"]
    assert len(with_blank["counterfactual"]) == 1
    assert run_omnicheck(*args, "--omnicheck-no-counterfactual").ret == 0
    document = read_document()
    (without,) = document["results"]
    assert without["counterfactual"] == [] and len(without["samples"]) == 1
    assert document["run"]["settings"][probe]["counterfactual"] is False
    assert document["run"]["thresholds"]["counterfactual"] is False
    # a cached reference with blanks must not stand in for a run without them, nor the other way round
    assert document["run"]["reference_cache"]["reference_generations"] == 1
