"""--omnicheck-batch-size N: samples per generate() call. Batching changes the speed, never the answers: greedy
outputs with three samples per call equal those made one at a time, for every probe of the registry."""

from __future__ import annotations

import pytest
from option_runs import FAST

from omnicheck.probes import PROBES, load_probe


@pytest.mark.parametrize("probe", PROBES)
def test_outputs_do_not_depend_on_the_batch_size(run_omnicheck, read_document, tiny_gemma, probe):
    outputs = {}
    for batch_size in ("1", "3"):
        result = run_omnicheck(
            "--model", f"a={tiny_gemma}", "--omnicheck-probe", probe, "--omnicheck-limit", "3",
            "--omnicheck-batch-size", batch_size, "--omnicheck-refresh-reference", *FAST,
        )
        assert result.ret == 0, result.stdout.str()
        (run,) = read_document()["results"]
        assert run["status"] == "ok" and not run["cached"], run["reason"]
        outputs[batch_size] = [(s["id"], s["output"]) for s in run["samples"]]
    assert len(outputs["1"]) == min(3, len(load_probe(probe).load_samples("smoke"))) > 1
    assert any(text for _, text in outputs["1"])
    assert outputs["3"] == outputs["1"]


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_count_below_one_is_a_usage_error(run_omnicheck, tmp_path, value):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-batch-size", value)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*--omnicheck-batch-size {value} is not a count*fix: pass a whole number of at least 1*"])
