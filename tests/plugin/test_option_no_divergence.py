"""--omnicheck-no-divergence: no teacher-forced pass; every probe of the registry (the text ones through lm-eval)."""

from __future__ import annotations

import pytest

from omnicheck.probes import PROBES


@pytest.mark.parametrize("probe", list(PROBES))
def test_no_divergence_skips_the_teacher_forced_pass(run_omnicheck, read_document, tiny_gemma, tiny_gemma_copy, probe):
    args = ("--model", f"bf16={tiny_gemma}", "--model", f"copy={tiny_gemma_copy}", "--omnicheck-probe", probe,
            "--omnicheck-limit", "1", "--omnicheck-max-new-tokens", "4",
            "--omnicheck-inconclusive", "skip")  # one sample is INCONCLUSIVE, which fails under CI=true
    assert run_omnicheck(*args).ret == 0
    with_pass = read_document()
    copy = next(r for r in with_pass["results"] if r["variant"] == "copy")
    assert copy["info"]["divergence"]["status"] == "ok", copy["info"]["divergence"]
    assert all(s["extra"]["divergence"]["kl_mean"] == 0.0 for s in copy["samples"])  # a byte copy
    assert run_omnicheck(*args, "--omnicheck-no-divergence").ret == 0
    document = read_document()
    assert document["run"]["thresholds"]["divergence"] is False
    for result in document["results"]:
        assert "divergence" not in result["info"]
        assert not any("divergence" in s["extra"] or "divergence_floor" in s["extra"] for s in result["samples"])
    (verdict,) = [v for v in document["verdicts"] if v["variant"] == "copy"]
    assert verdict["details"]["divergence"]["status"] == "not available"
