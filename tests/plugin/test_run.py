"""pytest --model ... end to end on real tiny models: verdicts, reports, junit, xdist, pytest-html, a second omni family.
Each option has its own file: test_option_<name>.py."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

from option_runs import MEDIA_PROBES

FAST = ("--omnicheck-max-new-tokens", "4", "--omnicheck-inconclusive", "skip")


def _document(tmp_path):
    return json.loads((tmp_path / "reports" / "omnicheck.json").read_text())


def test_reference_and_copy_end_to_end_with_reports_and_junit(run_omnicheck, tiny_gemma, tiny_gemma_copy, tmp_path):
    junit = tmp_path / "junit.xml"
    result = run_omnicheck(
        "--model", f"bf16={tiny_gemma}", "--model", f"copy={tiny_gemma_copy}",
        "--omnicheck-probe", "image_caption", *FAST, f"--junitxml={junit}", "-v",
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*test_probe[[]bf16-image_caption[]] PASSED*", "*omnicheck*", "variant*text*image*audio*video*"])
    document = _document(tmp_path)
    assert document["schema_version"] == 1
    assert [v["name"] for v in document["variants"]] == ["bf16", "copy"]
    assert document["variants"][0]["fingerprint"] == document["variants"][1]["fingerprint"]
    by_variant = {r["variant"]: r for r in document["results"]}
    assert [s["output"] for s in by_variant["bf16"]["samples"]] == [s["output"] for s in by_variant["copy"]["samples"]]
    assert document["matrix"]["bf16"]["image"] == "REFERENCE"
    assert document["matrix"]["copy"]["image"] in ("PASS", "INCONCLUSIVE")
    assert (tmp_path / "reports" / "report.html").stat().st_size > 1000
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["test_probe[copy-image_caption]"].iter("property")}
    assert props["verdict"] == document["matrix"]["copy"]["image"]


def test_a_model_without_a_modality_is_skipped_with_the_reason(run_omnicheck, tiny_text_lm, tmp_path):
    result = run_omnicheck("--model", f"text={tiny_text_lm}", "--omnicheck-probe", ",".join(MEDIA_PROBES), *FAST, "-rs")
    result.assert_outcomes(skipped=len(MEDIA_PROBES))
    result.stdout.fnmatch_lines(["*takes no image input*"])


def test_xdist_workers_merge_into_one_report(run_omnicheck, tiny_gemma, tiny_gemma_copy, tmp_path):
    """pytest -n 2: each variant on its own worker, one omnicheck.json and one report.html at the end."""
    result = run_omnicheck(
        "-n", "2", "--model", f"bf16={tiny_gemma}", "--model", f"copy={tiny_gemma_copy}",
        "--omnicheck-probe", "speech_wer,image_caption", *FAST,
    )
    assert result.ret == 0, result.stdout.str()
    document = _document(tmp_path)
    assert document["run"]["workers"] == 2
    cores = len(os.sched_getaffinity(0))
    if "OMP_NUM_THREADS" not in os.environ:  # each worker gets its share of the cores, not all of them
        assert {v["description"]["cpu_threads"] for v in document["variants"]} == {max(1, cores // 2)}
    assert sorted((r["variant"], r["probe"]) for r in document["results"]) == [
        ("bf16", "image_caption"), ("bf16", "speech_wer"), ("copy", "image_caption"), ("copy", "speech_wer"),
    ]
    assert set(document["matrix"]) == {"bf16", "copy"}
    descriptions = {v["name"]: v["description"] for v in document["variants"]}
    assert "divergence" not in descriptions["bf16"] and "divergence" in descriptions["copy"]
    assert (tmp_path / "reports" / "report.html").exists()
    assert not list((tmp_path / "reports" / ".parts").glob("*.json"))
    result.stdout.fnmatch_lines(["variant*text*image*audio*video*", "copy*"])


def test_a_second_omni_family_runs_every_media_probe(run_omnicheck, tiny_qwen_omni, tmp_path):
    """Qwen2.5-Omni (thinker + talker) through the same options: each probe completes with outputs, none errors."""
    probes = [*MEDIA_PROBES, "ifeval"]
    result = run_omnicheck(
        "--model", f"qwen={tiny_qwen_omni}", "--omnicheck-limit", "2", "--omnicheck-probe", ",".join(probes), *FAST,
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=len(probes))
    document = _document(tmp_path)
    (variant,) = document["variants"]
    assert variant["error"] is None and variant["model_type"] == "qwen2_5_omni"
    assert set(variant["modalities"]) == {"text", "image", "audio", "video"}
    by_probe = {r["probe"]: r for r in document["results"]}
    assert sorted(by_probe) == sorted(probes)
    for probe, result_ in by_probe.items():
        assert result_["status"] == "ok", (probe, result_["reason"])
        assert len(result_["samples"]) == 2 and all(s["output"] for s in result_["samples"]), probe
    assert document["matrix"]["qwen"] == {m: "REFERENCE" for m in ("text", "image", "audio", "video")}


def test_pytest_html_rows_carry_the_verdict(run_omnicheck, tiny_gemma, tiny_gemma_copy, tmp_path):
    """With pytest-html (a test dependency, not a runtime one) each omnicheck row gets its verdict as an extra."""
    import html
    import re

    page = tmp_path / "pytest-html.html"
    result = run_omnicheck(
        "--model", f"bf16={tiny_gemma}", "--model", f"copy={tiny_gemma_copy}", "--omnicheck-probe", "speech_wer",
        "--omnicheck-limit", "2", *FAST, f"--html={page}", "--self-contained-html",
    )
    assert result.ret == 0, result.stdout.str()
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', page.read_text()).group(1)))
    extras = {test_id: [e["content"] for row in rows for e in row["extras"] if e["format_type"] == "html"]
              for test_id, rows in blob["tests"].items()}
    verdict = _document(tmp_path)["matrix"]["copy"]["audio"]
    (reference,) = extras["omnicheck::test_probe[bf16-speech_wer]"]
    (copy,) = extras["omnicheck::test_probe[copy-speech_wer]"]
    assert "omnicheck-verdict" in reference and "REFERENCE" in reference
    assert f"{verdict}</b>" in copy and "copy" in copy and "speech_wer" in copy
