"""--omnicheck-limit N: at most N samples per probe, spread over the tier's set; every probe of the registry."""

from __future__ import annotations

import pytest
from option_runs import FAST

from omnicheck.probes import PROBES, load_probe
from omnicheck.probes.common import spread


@pytest.mark.parametrize("probe", PROBES)
def test_limit_keeps_n_samples_of_the_tier(run_omnicheck, read_document, tiny_gemma, probe):
    result = run_omnicheck("--model", f"a={tiny_gemma}", "--omnicheck-probe", probe, "--omnicheck-limit", "2", *FAST)
    assert result.ret == 0, result.stdout.str()
    (run,) = read_document()["results"]
    assert run["status"] == "ok", run["reason"]
    smoke = [s.id for s in load_probe(probe).load_samples("smoke")]
    assert [s["id"] for s in run["samples"]] == spread(smoke, 2)  # spread over the set, not its head
    assert run["aggregates"]["n"] == 2


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_count_below_one_is_a_usage_error(run_omnicheck, tmp_path, value):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-limit", value)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*--omnicheck-limit {value} is not a count*fix: pass a whole number of at least 1*"])
