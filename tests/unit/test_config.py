"""[tool.omnicheck] and --omnicheck-config files -> Settings, on real files written to tmp_path."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from omnicheck.config import Settings, Thresholds, in_ci, load_settings
from omnicheck.errors import UsageError

NO_CI: dict[str, str] = {}


def _pyproject(tmp_path: Path, body: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "release-checks"\nversion = "0"\n\n' + textwrap.dedent(body), encoding="utf-8"
    )
    return tmp_path


def test_defaults_without_a_pyproject(tmp_path):
    settings = load_settings(tmp_path, environ=NO_CI)
    assert settings == Settings()
    assert settings.thresholds_for("gsm8k", "text") == Thresholds()
    assert (Thresholds().min_retention, Thresholds().max_increase) == (0.95, 0.02)
    assert settings.inconclusive == "skip" and settings.source == "built-in defaults"


def test_inconclusive_defaults_to_fail_in_ci(tmp_path):
    assert load_settings(tmp_path, environ={"CI": "true"}).inconclusive == "fail"
    assert load_settings(tmp_path, environ={"CI": "1"}).inconclusive == "fail"
    assert load_settings(tmp_path, environ={"CI": "false"}).inconclusive == "skip"
    assert in_ci({"CI": ""}) is False
    # the file wins over the environment
    _pyproject(tmp_path, '[tool.omnicheck]\ninconclusive = "skip"\n')
    assert load_settings(tmp_path, environ={"CI": "true"}).inconclusive == "skip"


def test_full_pyproject_table(tmp_path):
    root = _pyproject(
        tmp_path,
        """
        [tool.omnicheck]
        confidence = 0.9
        bootstrap_resamples = 5000
        seed = 11
        inconclusive = "fail"
        probes = ["gsm8k", "speech_wer", "gsm8k"]
        tier = "full"
        max_new_tokens = { gsm8k = 256, image_caption = 48 }

        [tool.omnicheck.thresholds]
        min_retention = 0.97
        min_samples = 20

        [tool.omnicheck.thresholds.audio]
        max_increase = 0.03

        [tool.omnicheck.thresholds.speech_wer]
        max_increase = 0.015

        [tool.omnicheck.thresholds.image]
        max_drop = 0.1
        """,
    )
    settings = load_settings(root, environ=NO_CI)
    assert (settings.confidence, settings.bootstrap_resamples, settings.seed) == (0.9, 5000, 11)
    assert settings.inconclusive == "fail" and settings.tier == "full"
    assert settings.probes == ("gsm8k", "speech_wer")  # duplicates dropped, order kept
    assert settings.max_new_tokens_for("gsm8k", 64) == 256
    assert settings.max_new_tokens_for("ifeval", 64) == 64
    text = settings.thresholds_for("gsm8k", "text")
    assert text.min_retention == 0.97 and text.min_samples == 20 and isinstance(text.min_samples, int)
    assert settings.thresholds_for("speech_wer", "audio").max_increase == 0.015  # probe beats modality
    assert settings.thresholds_for("some_audio_probe", "audio").max_increase == 0.03
    image = settings.thresholds_for("image_caption", "image")
    assert image.max_drop == 0.1 and image.min_retention == 0.97  # global values still apply
    assert "pyproject.toml" in settings.source
    assert settings.to_json()["thresholds"]["per_probe"] == {"speech_wer": {"max_increase": 0.015}}


def test_a_config_file_by_option(tmp_path):
    plain = tmp_path / "omnicheck.toml"
    plain.write_text('confidence = 0.99\n[thresholds.video]\nmax_drop = 0.08\n', encoding="utf-8")
    settings = load_settings(tmp_path, plain, environ=NO_CI)
    assert settings.confidence == 0.99
    assert settings.thresholds_for("video_describe", "video").max_drop == 0.08
    styled = tmp_path / "other.toml"
    styled.write_text('[tool.omnicheck]\nseed = 3\n', encoding="utf-8")
    assert load_settings(tmp_path, styled, environ=NO_CI).seed == 3
    with pytest.raises(UsageError, match="does not exist"):
        load_settings(tmp_path, tmp_path / "missing.toml")


def test_a_pyproject_without_our_table_gives_defaults(tmp_path):
    _pyproject(tmp_path, "[tool.black]\nline-length = 100\n")
    assert load_settings(tmp_path, environ=NO_CI) == Settings()


@pytest.mark.parametrize(
    "body, expected",
    [
        ("[tool.omnicheck]\nconfidance = 0.9\n", r"unknown key 'confidance'.*did you mean 'confidence'\?.*allowed keys: thresholds, confidence"),
        ("[tool.omnicheck.thresholds]\nmin_retension = 0.9\n", r"unknown key 'min_retension'.*did you mean 'min_retention'"),
        ("[tool.omnicheck.thresholds.speech_wr]\nmax_increase = 0.1\n", r"unknown key 'speech_wr'.*did you mean 'speech_wer'"),
        ("[tool.omnicheck.thresholds.audio]\nmax_increse = 0.1\n", r"unknown key 'max_increse' in .*thresholds.audio.*did you mean 'max_increase'"),
        ("[tool.omnicheck]\nprobes = ['gsm8k', 'imagecaption']\n", r"unknown probe 'imagecaption'.*did you mean 'image_caption'"),
        ("[tool.omnicheck]\nmax_new_tokens = { gsm8K = 10 }\n", r"unknown probe 'gsm8K'"),
        ("[tool.omnicheck]\nzzz = 1\n", r"unknown key 'zzz'.*allowed keys"),
    ],
)
def test_unknown_keys_are_usage_errors_with_a_suggestion(tmp_path, body, expected):
    with pytest.raises(UsageError, match=expected) as info:
        load_settings(_pyproject(tmp_path, body), environ=NO_CI)
    assert "\n" not in str(info.value)  # one line


@pytest.mark.parametrize(
    "body, expected",
    [
        ("confidence = 1.5", "confidence = 1.5 is out of range"),
        ("confidence = '0.95'", "is not a number"),
        ("bootstrap_resamples = 10", "bootstrap_resamples = 10 is out of range"),
        ("bootstrap_resamples = 2000.5", "is not an integer"),
        ("seed = true", "is not an integer"),
        ("inconclusive = 'warn'", "is not a policy"),
        ("tier = 'medium'", "is not a tier"),
        ("probes = []", "is not a list of probe names"),
        ("max_new_tokens = 0", "must be at least 1"),
        ("counterfactual = 'no'", "counterfactual = 'no' is not true or false"),
        ("counterfactual_tokens = -1", "counterfactual_tokens = -1 is negative"),
        ("counterfactual_tokens = 'all'", "is not an integer"),
        ("thresholds = { min_retention = 1.2 }", "min_retention = 1.2 is out of range"),
        ("thresholds = { min_retention = 0.5 }", "broken_retention = 0.5 is out of range"),
        ("thresholds = { audio = { max_increase = 0.5 } }", "broken_increase"),
        ("thresholds = { min_samples = 2.5 }", "is not an integer"),
        ("thresholds = { image = 0.1 }", "image is not a table"),
        ("thresholds = { min_agreement = 1.5 }", "min_agreement = 1.5 is out of range"),
        ("thresholds = { min_agreement = 0.5, broken_agreement = 0.7 }", "broken_agreement = 0.7 is out of range"),
        ("divergence = 'yes'", "divergence = 'yes' is not true or false"),
        ("divergence_top_k = 5", "divergence_top_k = 5 is out of range"),
        ("thresholds = { divergence_pass_kl = -1 }", "divergence_pass_kl = -1.0 is out of range"),
        ("thresholds = { divergence_pass_kl = 0.01, divergence_broken_kl = 0.005 }", "divergence_broken_kl = 0.005 is out of range"),
        ("thresholds = { divergence_broken_multiple = 2 }", "divergence_broken_multiple = 2.0 is out of range"),
        ("thresholds = { divergence_min_samples = 2.5 }", "is not an integer"),
    ],
)
def test_bad_values_say_what_to_write(tmp_path, body, expected):
    with pytest.raises(UsageError, match=expected.replace("(", r"\(").replace(")", r"\)")) as info:
        load_settings(_pyproject(tmp_path, f"[tool.omnicheck]\n{body}\n"), environ=NO_CI)
    assert "fix:" in str(info.value)


def test_broken_toml_names_the_file(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.omnicheck\nconfidence = 0.9\n", encoding="utf-8")
    with pytest.raises(UsageError, match="is not valid TOML"):
        load_settings(tmp_path)


def test_command_line_overrides_are_checked_like_the_file(tmp_path):
    settings = load_settings(_pyproject(tmp_path, "[tool.omnicheck]\nseed = 4\n"), environ=NO_CI)
    changed = settings.with_overrides(inconclusive="fail", tier="full", confidence=None)
    assert (changed.inconclusive, changed.tier, changed.seed, changed.confidence) == ("fail", "full", 4, 0.95)
    with pytest.raises(UsageError, match="is not a policy"):
        settings.with_overrides(inconclusive="maybe")
    with pytest.raises(UsageError, match="unknown setting 'teir'.*did you mean 'tier'"):
        settings.with_overrides(teir="full")


def test_counterfactual_can_be_turned_off_in_the_file_and_on_the_command_line(tmp_path):
    assert Settings().counterfactual is True
    off = load_settings(_pyproject(tmp_path, "[tool.omnicheck]\ncounterfactual = false\n"), environ=NO_CI)
    assert off.counterfactual is False and off.to_json()["counterfactual"] is False
    assert Settings().with_overrides(counterfactual=False).counterfactual is False


def test_counterfactual_tokens_set_how_much_of_the_blank_media_answer_is_written(tmp_path):
    assert Settings().counterfactual_tokens == 16
    whole = load_settings(_pyproject(tmp_path, "[tool.omnicheck]\ncounterfactual_tokens = 0\n"), environ=NO_CI)
    assert whole.counterfactual_tokens == 0 and whole.to_json()["counterfactual_tokens"] == 0


def test_divergence_keys_from_the_file_per_modality_and_probe(tmp_path):
    body = """
    [tool.omnicheck]
    divergence_top_k = 50
    [tool.omnicheck.thresholds]
    divergence_pass_kl = 0.005
    [tool.omnicheck.thresholds.video]
    divergence_min_samples = 0
    [tool.omnicheck.thresholds.ifeval]
    divergence_pass_multiple = 0
    """
    settings = load_settings(_pyproject(tmp_path, body), environ=NO_CI)
    assert settings.divergence is True and settings.divergence_top_k == 50
    assert settings.thresholds_for("image_caption", "image").divergence_pass_kl == 0.005
    assert settings.thresholds_for("video_describe", "video").divergence_min_samples == 0
    assert settings.thresholds_for("ifeval", "text").divergence_pass_multiple == 0
    assert load_settings(_pyproject(tmp_path, "[tool.omnicheck]\ndivergence = false\n"), environ=NO_CI).divergence is False


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.confidence = 0.5  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.max_new_tokens["gsm8k"] = 3  # type: ignore[index]
