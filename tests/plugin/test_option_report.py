"""--omnicheck-report DIR: where omnicheck.json and report.html go; a relative folder is taken from where pytest
was started."""

from __future__ import annotations

import json

from option_runs import FAST


def test_reports_are_written_to_the_named_folder(run_omnicheck, pytester, tiny_gemma):
    result = run_omnicheck(
        "--model", f"a={tiny_gemma}", "--omnicheck-probe", "speech_wer", "--omnicheck-limit", "1", *FAST,
        "--omnicheck-report", "out/review",
    )
    assert result.ret == 0, result.stdout.str()
    folder = pytester.path / "out" / "review"
    document = json.loads((folder / "omnicheck.json").read_text())
    assert [(r["variant"], r["probe"], r["status"]) for r in document["results"]] == [("a", "speech_wer", "ok")]
    assert "omnicheck review" in (folder / "report.html").read_text()
    result.stdout.fnmatch_lines([f"report: {folder / 'omnicheck.json'}", f"report: {folder / 'report.html'}"])
