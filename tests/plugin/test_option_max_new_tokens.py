"""--omnicheck-max-new-tokens N: every probe of the registry generates at most N tokens per sample, whatever its
own default or the config file says."""

from __future__ import annotations

import pytest

from omnicheck.probes import PROBES, load_probe

TOKENS = 3


@pytest.mark.parametrize("probe", PROBES)
def test_generation_stops_at_n_tokens(run_omnicheck, read_document, tiny_gemma, tmp_path, probe):
    assert load_probe(probe).settings.max_new_tokens > TOKENS, "the probe's own default must be longer"
    config = tmp_path / "omnicheck.toml"
    config.write_text(f"max_new_tokens = {{ {probe} = {TOKENS + 5} }}\n")  # the option wins over the file
    result = run_omnicheck(
        "--model", f"a={tiny_gemma}", "--omnicheck-probe", probe, "--omnicheck-limit", "1",
        "--omnicheck-config", str(config), "--omnicheck-max-new-tokens", str(TOKENS),
    )
    assert result.ret == 0, result.stdout.str()
    document = read_document()
    (run,) = document["results"]
    assert run["status"] == "ok", run["reason"]
    assert document["run"]["settings"][probe]["max_new_tokens"] == TOKENS
    if "lm_eval" in run["info"]:  # lm-eval gets the limit; its token count re-encodes the text, so it may exceed it
        assert run["info"]["max_new_tokens"] == TOKENS
    else:
        assert 0 < run["generated_tokens"] <= TOKENS * len(run["samples"])


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_count_below_one_is_a_usage_error(run_omnicheck, tmp_path, value):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-max-new-tokens", value)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*--omnicheck-max-new-tokens {value} is not a count*fix: pass a whole number of at least 1*"])
