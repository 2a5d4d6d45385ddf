"""--omnicheck-tier smoke|full: which of a probe's bundled samples run; every probe of the registry.

The full tier runs under --omnicheck-limit (gsm8k's full set is 1,319 problems): five samples spread over the full
set are not the smoke set's, which is all this test needs to tell the tiers apart.
"""

from __future__ import annotations

import pytest
from option_runs import FAST

from omnicheck.probes import PROBES, load_probe
from omnicheck.probes.common import spread


@pytest.mark.parametrize("probe", PROBES)
def test_full_tier_draws_from_every_bundled_sample(run_omnicheck, read_document, tiny_gemma, probe):
    bundled = load_probe(probe)
    full = [s.id for s in bundled.load_samples("full")]
    smoke = [s.id for s in bundled.load_samples("smoke")]
    assert set(smoke) < set(full), "the tiers of this probe must differ for the test to tell them apart"
    result = run_omnicheck(
        "--model", f"a={tiny_gemma}", "--omnicheck-probe", probe, "--omnicheck-tier", "full", "--omnicheck-limit", "5",
        *FAST,
    )
    assert result.ret == 0, result.stdout.str()
    document = read_document()
    (run,) = document["results"]
    assert run["status"] == "ok", run["reason"]
    assert [s["id"] for s in run["samples"]] == spread(full, 5) != spread(smoke, 5)
    assert document["run"]["tier"] == "full"
