"""--omnicheck-inconclusive fail|skip: what a verdict made on too few samples does to its test; without the option,
it fails when $CI is set and is skipped otherwise."""

from __future__ import annotations

import pytest

ARGS = ("--omnicheck-probe", "speech_wer", "--omnicheck-limit", "2", "--omnicheck-max-new-tokens", "4")


@pytest.mark.parametrize(
    "option, ci, outcome",
    [("fail", None, "failed"), ("skip", "1", "skipped"), (None, "1", "failed"), (None, None, "skipped")],
)
def test_inconclusive_verdict_fails_or_skips(run_omnicheck, read_document, tiny_gemma, tiny_gemma_copy, monkeypatch, option, ci, outcome):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    policy = ("--omnicheck-inconclusive", option) if option else ()
    result = run_omnicheck("--model", f"bf16={tiny_gemma}", "--model", f"copy={tiny_gemma_copy}", *ARGS, *policy, "-rfs")
    assert read_document()["matrix"]["copy"]["audio"] == "INCONCLUSIVE"  # two samples are fewer than min_samples
    result.assert_outcomes(passed=1, **{outcome: 1})
    line = "FAILED*test_probe[[]copy-speech_wer[]]*INCONCLUSIVE:*" if outcome == "failed" else "SKIPPED*INCONCLUSIVE:*"
    result.stdout.fnmatch_lines([line])
