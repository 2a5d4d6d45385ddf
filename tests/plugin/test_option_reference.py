"""--reference NAME|PATH: the baseline every other variant is compared to; its tests run first."""

from __future__ import annotations


def _collected(result) -> list[str]:
    return [line.split("::")[-1] for line in result.stdout.lines if "test_probe[" in line]


def test_reference_runs_first_whatever_the_option_order(run_omnicheck, tmp_path):
    for reference in ("bf16", f"{tmp_path}/r"):  # by name or by path
        result = run_omnicheck(
            "--model", f"w4={tmp_path}/q", "--model", f"bf16={tmp_path}/r", "--reference", reference, "--collect-only", "-q"
        )
        ids = _collected(result)
        assert ids[0].startswith("test_probe[bf16-") and ids[-1].startswith("test_probe[w4-"), reference


def test_a_reference_that_names_no_model_is_a_usage_error(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"w4={tmp_path}/q", "--reference", "bf16")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--reference 'bf16' names no --model*fix: use one of: w4, or add --model bf16*"])
