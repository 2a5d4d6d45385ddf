"""--omnicheck-config FILE: settings from a TOML file instead of [tool.omnicheck] in the rootdir's pyproject.toml;
a bad file is one usage-error line. Checked at collection: the probes each file selects, no model loaded."""

from __future__ import annotations

import pytest

from omnicheck.probes import PROBES

FIRST, LAST = list(PROBES)[0], list(PROBES)[-1]


def _collected(result) -> list[str]:
    return [line.split("::")[-1] for line in result.stdout.lines if "test_probe[" in line]


def test_the_file_replaces_the_pyproject_table(run_omnicheck, pytester, tmp_path):
    pytester.makepyprojecttoml(f"[tool.omnicheck]\nprobes = [{FIRST!r}]\n")
    from_pyproject = run_omnicheck("--model", f"a={tmp_path}/a", "--collect-only", "-q")
    assert _collected(from_pyproject) == [f"test_probe[a-{FIRST}]"]
    config = tmp_path / "omnicheck.toml"
    config.write_text(f"probes = [{LAST!r}]\n")
    from_file = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-config", str(config), "--collect-only", "-q")
    assert _collected(from_file) == [f"test_probe[a-{LAST}]"]
    config.write_text(f"[tool.omnicheck]\nprobes = [{LAST!r}, {FIRST!r}]\n")  # or the same table as in pyproject
    nested = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-config", str(config), "--collect-only", "-q")
    assert _collected(nested) == [f"test_probe[a-{LAST}]", f"test_probe[a-{FIRST}]"]


@pytest.mark.parametrize(
    "body, expected",
    [
        (None, "*omnicheck config file*does not exist*fix: pass an existing TOML file*"),
        ("confidance = 0.9\n", "*unknown key 'confidance'*confidence*"),
        ("probes = ['speech_wr']\n", "*unknown probe 'speech_wr'*speech_wer*"),
        ("tier = \n", "*is not valid TOML*"),
    ],
)
def test_a_bad_file_is_one_usage_error_line(run_omnicheck, tmp_path, body, expected):
    config = tmp_path / "omnicheck.toml"
    if body is not None:
        config.write_text(body)
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-config", str(config))
    assert result.ret == 4
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str()
