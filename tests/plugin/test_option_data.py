"""--omnicheck-data PROBE=PATH: a probe reads the user's data instead of its bundled set. Every probe of the
registry, each on the demo's data for it (omni-small's held-out sets, written in the probes' own layouts)."""

from __future__ import annotations

import json

import pytest
from option_runs import FAST

from omnicheck.demo import panel_data
from omnicheck.probes import PROBES, load_probe


def _key(sample_id: str, prompt: str, target) -> tuple[str, str, str]:
    return sample_id, prompt, json.dumps(target, sort_keys=True, default=str)


def _questions(samples) -> list[tuple[str, str, str]]:
    return [_key(s.id, s.messages[-1].text, s.target) for s in samples]


def test_the_demo_has_data_for_every_probe():
    assert set(panel_data()) == set(PROBES), "add the new probe's data to fixtures/checkpoints/demo-panel.json"


@pytest.mark.parametrize("probe", PROBES)
def test_the_run_reads_the_given_data(run_omnicheck, read_document, tiny_gemma, probe):
    data = panel_data()[probe]
    given = _questions(load_probe(probe, data).load_samples("smoke"))
    bundled = _questions(load_probe(probe).load_samples("full"))
    result = run_omnicheck(
        "--model", f"a={tiny_gemma}", "--omnicheck-probe", probe, "--omnicheck-data", f"{probe}={data}",
        "--omnicheck-limit", "1", *FAST,
    )
    assert result.ret == 0, result.stdout.str()
    (run,) = read_document()["results"]
    assert run["status"] == "ok", run["reason"]
    ran = [_key(s["id"], s["prompt"], s["target"]) for s in run["samples"]]
    assert len(ran) == 1 and set(ran) <= set(given) and not set(ran) & set(bundled)


def test_a_missing_path_is_a_usage_error(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-data", f"ifeval={tmp_path}/none.jsonl")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--omnicheck-data ifeval*does not exist*"])


def test_a_spec_without_a_probe_is_a_usage_error(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-data", str(tmp_path))
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*is not PROBE=PATH*fix: write e.g. --omnicheck-data ifeval=input.jsonl*"])
