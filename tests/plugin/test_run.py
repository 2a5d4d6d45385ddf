"""pytest --model ... end to end on real tiny models: verdicts, one-line failures, reports, the reference cache."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET

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


def test_no_counterfactual_skips_the_blank_media_rerun(run_omnicheck, tiny_gemma, tmp_path):
    args = ("--model", f"bf16={tiny_gemma}", "--omnicheck-probe", "image_caption", "--omnicheck-limit", "2", *FAST)
    assert run_omnicheck(*args).ret == 0
    (with_blank,) = _document(tmp_path)["results"]
    assert len(with_blank["counterfactual"]) == 2
    assert run_omnicheck(*args, "--omnicheck-no-counterfactual").ret == 0
    document = _document(tmp_path)
    (without,) = document["results"]
    assert without["counterfactual"] == [] and len(without["samples"]) == 2
    assert document["run"]["settings"]["image_caption"]["counterfactual"] is False
    assert document["run"]["thresholds"]["counterfactual"] is False
    # a cached reference with blanks must not stand in for a run without them, nor the other way round
    assert document["run"]["reference_cache"]["reference_generations"] == 1


def test_second_run_takes_the_reference_from_the_cache(run_omnicheck, tiny_gemma, tiny_gemma_copy, tmp_path):
    args = ("--model", f"bf16={tiny_gemma}", "--model", f"copy={tiny_gemma_copy}", "--omnicheck-probe", "speech_wer", *FAST)
    first = run_omnicheck(*args)
    assert first.ret == 0
    assert _document(tmp_path)["run"]["reference_cache"]["reference_generations"] == 1
    second = run_omnicheck(*args)
    assert second.ret == 0
    cache = _document(tmp_path)["run"]["reference_cache"]
    assert cache["reference_generations"] == 0 and cache["hits"] == 1
    refreshed = run_omnicheck(*args, "--omnicheck-refresh-reference")
    assert refreshed.ret == 0
    assert _document(tmp_path)["run"]["reference_cache"]["reference_generations"] == 1


def test_changed_reference_weights_are_not_served_from_the_cache(run_omnicheck, tiny_gemma, tmp_path):
    from omnicheck.demo import randomize_modules

    args = ("--omnicheck-probe", "speech_wer", *FAST)
    assert run_omnicheck("--model", f"bf16={tiny_gemma}", *args).ret == 0
    changed = randomize_modules(tiny_gemma, tmp_path / "bf16-changed", prefix="model.embed_audio", seed=3)
    assert run_omnicheck("--model", f"bf16={changed}", *args).ret == 0
    assert _document(tmp_path)["run"]["reference_cache"]["reference_generations"] == 1


def test_a_broken_variant_fails_alone_in_one_line(run_omnicheck, tiny_gemma, tmp_path):
    missing = tmp_path / "nope"
    result = run_omnicheck(
        "--model", f"bf16={tiny_gemma}", "--model", f"gone={missing}", "--omnicheck-probe", "image_caption,speech_wer", *FAST
    )
    assert result.ret == 1
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([f"*ERROR*model path '{missing}' does not exist*fix: check the --model path*"])
    assert "Traceback" not in result.stdout.str()
    document = _document(tmp_path)
    gone = next(v for v in document["variants"] if v["name"] == "gone")
    assert "does not exist" in gone["error"]
    assert {r["variant"] for r in document["results"] if r["status"] == "ok"} == {"bf16"}


def test_a_model_without_a_modality_is_skipped_with_the_reason(run_omnicheck, tiny_text_lm, tmp_path):
    result = run_omnicheck("--model", f"text={tiny_text_lm}", "--omnicheck-probe", "image_caption,video_describe", *FAST, "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*takes no image input*"])


def test_non_model_folder_and_corrupt_weights(run_omnicheck, tiny_gemma, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_gemma, corrupt)
    weights = corrupt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    result = run_omnicheck(
        "--model", f"bf16={tiny_gemma}", "--model", f"photos={folder}", "--model", f"corrupt={corrupt}",
        "--omnicheck-probe", "speech_wer", *FAST,
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*not a model folder (no config.json)*", "*truncated*"])


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
    assert (tmp_path / "reports" / "report.html").exists()
    assert not list((tmp_path / "reports" / ".parts").glob("*.json"))
    result.stdout.fnmatch_lines(["variant*text*image*audio*video*", "copy*"])


def test_a_second_omni_family_runs_every_media_probe(run_omnicheck, tiny_qwen_omni, tmp_path):
    """Qwen2.5-Omni (thinker + talker) through the same options: each probe completes with outputs, none errors."""
    probes = ["image_caption", "speech_wer", "video_describe", "ifeval"]
    result = run_omnicheck(
        "--model", f"qwen={tiny_qwen_omni}", "--omnicheck-limit", "2", "--omnicheck-probe", ",".join(probes), *FAST,
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=4)
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


def test_in_process_runs_leave_the_process_as_they_found_it(run_omnicheck, tiny_gemma, tmp_path):
    """Two lm-eval runs in one process (as pytester or a notebook makes them) both work, and --omnicheck-cache
    does not stay in the environment after its run."""
    before = os.environ.get("OMNICHECK_CACHE")
    for probe in ("ifeval", "gsm8k"):
        result = run_omnicheck("--model", f"a={tiny_gemma}", "--omnicheck-probe", probe, "--omnicheck-limit", "2", *FAST)
        assert result.ret == 0, result.stdout.str()
        assert os.environ.get("OMNICHECK_CACHE") == before


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
