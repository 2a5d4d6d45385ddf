"""--omnicheck-probe NAME[,NAME]: which probes run, for every probe of the registry; checked at collection time."""

from __future__ import annotations

import pytest

from omnicheck.probes import PROBES, modality_of


def _collected(result) -> list[str]:
    return [line.split("::")[-1] for line in result.stdout.lines if "test_probe[" in line]


@pytest.mark.parametrize("probe", PROBES)
def test_one_probe_is_one_test_marked_with_its_modality(run_omnicheck, tmp_path, probe):
    args = ("--model", f"a={tmp_path}/a", "--omnicheck-probe", probe, "--collect-only", "-q")
    assert _collected(run_omnicheck(*args)) == [f"test_probe[a-{probe}]"]
    assert _collected(run_omnicheck(*args, "-m", modality_of(probe))) == [f"test_probe[a-{probe}]"]
    assert _collected(run_omnicheck(*args, "-m", f"not {modality_of(probe)}")) == []


def test_lists_and_repeats_keep_the_given_order_once(run_omnicheck, tmp_path):
    names = list(reversed(PROBES))
    result = run_omnicheck(
        "--model", f"a={tmp_path}/a", "--omnicheck-probe", ",".join(names[:2]), "--omnicheck-probe", names[0],
        "--omnicheck-probe", names[2], "--collect-only", "-q",
    )
    assert _collected(result) == [f"test_probe[a-{name}]" for name in names[:3]]


def test_unknown_probe_is_a_usage_error_with_a_suggestion(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-probe", "speech_wr")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown probe 'speech_wr'*did you mean 'speech_wer'*"])
