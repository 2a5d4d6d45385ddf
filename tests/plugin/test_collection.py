"""Options, test ids and markers: checked at collection time, no model loaded."""

from __future__ import annotations


def test_one_test_per_variant_and_probe_with_ids(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"bf16={tmp_path}/a", "--model", f"w4a4={tmp_path}/b", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_probe[[]bf16-gsm8k[]]*", "*test_probe[[]w4a4-speech_wer[]]*"])
    collected = [line for line in result.stdout.lines if "test_probe[" in line]
    assert len(collected) == 2 * 5


def test_reference_runs_first_whatever_the_option_order(run_omnicheck, tmp_path):
    result = run_omnicheck(
        "--model", f"w4={tmp_path}/q", "--model", f"bf16={tmp_path}/r", "--reference", "bf16", "--collect-only", "-q"
    )
    ids = [line for line in result.stdout.lines if "test_probe[" in line]
    assert ids[0].endswith("test_probe[bf16-gsm8k]")


def test_modality_markers_select_and_deselect(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "-m", "not video and not text", "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "test_probe[" in line]
    assert sorted(i.split("[")[1] for i in ids) == ["a-image_caption]", "a-speech_wer]"]
    audio = run_omnicheck("--model", f"a={tmp_path}/a", "-m", "audio", "--collect-only", "-q")
    assert [line.split("[")[1] for line in audio.stdout.lines if "test_probe[" in line] == ["a-speech_wer]"]


def test_k_selects_a_variant(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--model", f"b={tmp_path}/b", "-k", "b-", "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "test_probe[" in line]
    assert ids and all("[b-" in i for i in ids)


def test_probe_subset(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-probe", "gsm8k,image_caption", "--collect-only", "-q")
    ids = [line.split("[")[1] for line in result.stdout.lines if "test_probe[" in line]
    assert ids == ["a-gsm8k]", "a-image_caption]"]


def test_unknown_probe_is_a_usage_error_with_a_suggestion(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-probe", "speech_wr")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown probe 'speech_wr'*did you mean 'speech_wer'*"])


def test_bad_data_option_is_a_usage_error(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-data", f"ifeval={tmp_path}/none.jsonl")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--omnicheck-data ifeval*does not exist*"])


def test_a_hub_id_is_not_checked_as_a_path(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--omnicheck-data", "gsm8k=hf:openai/gsm8k:main:test",
                           "--collect-only", "-q")
    assert result.ret == 0 and "does not exist" not in result.stderr.str()
    assert any("test_probe[a-gsm8k]" in line for line in result.stdout.lines)


def test_without_model_the_plugin_adds_nothing(pytester):
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "test_probe[" not in result.stdout.str()
    assert "= omnicheck =" not in result.stdout.str()
