"""--model [NAME=]PATH|URL: one test per (variant, probe) of the registry; a variant that cannot load fails alone, in
one line; and without test paths, `pytest --model` runs the model checks only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from option_runs import FAST

from omnicheck.probes import PROBES

REPOSITORY = Path(__file__).resolve().parents[2]


def _collected(result_lines) -> list[str]:
    return [line.split("::")[-1] for line in result_lines if "test_probe[" in line]


def test_one_test_per_variant_and_probe(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"bf16={tmp_path}/a", "--model", f"w4a4={tmp_path}/b", "--collect-only", "-q")
    assert _collected(result.stdout.lines) == [f"test_probe[{v}-{p}]" for v in ("bf16", "w4a4") for p in PROBES]


def test_without_model_the_plugin_adds_nothing(pytester):
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "test_probe[" not in result.stdout.str()
    assert "= omnicheck =" not in result.stdout.str()


def test_without_test_paths_only_the_model_checks_run(run_omnicheck, pytester, tmp_path):
    """As `pytest` runs a project's testpaths, `pytest --model X` runs the model checks; naming test paths runs both."""
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    (pytester.mkdir("tests") / "test_project.py").write_text("def test_project():\n    assert True\n")
    probe = next(iter(PROBES))
    args = ("--model", f"a={tmp_path}/a", "--omnicheck-probe", probe, "--collect-only", "-q")
    models_only = run_omnicheck(*args)
    assert [line for line in models_only.stdout.lines if "::" in line] == [f"omnicheck::test_probe[a-{probe}]"]
    both = run_omnicheck("tests", *args)
    assert [line for line in both.stdout.lines if "::" in line] == [
        "tests/test_project.py::test_project", f"omnicheck::test_probe[a-{probe}]",
    ]
    project_only = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
    assert [line for line in project_only.stdout.lines if "::" in line] == ["tests/test_project.py::test_project"]


def test_in_this_repository_pytest_model_skips_the_project_suite(tmp_path):
    """The README's way to check models from a checkout of omnicheck: its own tests stay out of the run."""
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--model", f"a={tmp_path}/a", "--collect-only", "-q",
        "--omnicheck-report", str(tmp_path / "reports"), "--omnicheck-cache", str(tmp_path / "cache"),
    ]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(command, cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [line for line in run.stdout.splitlines() if "::" in line] == [f"omnicheck::test_probe[a-{p}]" for p in PROBES]


def test_a_broken_variant_fails_alone_in_one_line(run_omnicheck, read_document, tiny_gemma, tmp_path):
    missing = tmp_path / "nope"
    result = run_omnicheck(
        "--model", f"bf16={tiny_gemma}", "--model", f"gone={missing}", "--omnicheck-probe", "image_caption,speech_wer", *FAST
    )
    assert result.ret == 1
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([f"*ERROR*model path '{missing}' does not exist*fix: check the --model path*"])
    assert "Traceback" not in result.stdout.str()
    document = read_document()
    gone = next(v for v in document["variants"] if v["name"] == "gone")
    assert "does not exist" in gone["error"]
    assert {r["variant"] for r in document["results"] if r["status"] == "ok"} == {"bf16"}


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
