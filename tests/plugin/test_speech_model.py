"""A speech-only model through the plugin: `pytest --model whisper=PATH` runs speech_wer on real Whisper base and
skips, with the reason, every probe the model cannot take."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

NOT_AUDIO = {"gsm8k": "text", "ifeval": "text", "image_caption": "image", "video_describe": "video"}


def test_whisper_runs_speech_wer_and_skips_text_image_and_video(run_omnicheck, whisper_base, tmp_path):
    result = run_omnicheck("--model", f"whisper={whisper_base}", "--omnicheck-limit", "2", "-v", "-rs")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1, skipped=4)
    result.stdout.fnmatch_lines(["*test_probe[[]whisper-speech_wer[]] PASSED*"])
    for probe, modality in NOT_AUDIO.items():
        result.stdout.fnmatch_lines([f"SKIPPED*{probe} on the reference whisper*: whisper takes no {modality} input*"])
    document = json.loads((tmp_path / "reports" / "omnicheck.json").read_text())
    assert {r["probe"]: r["status"] for r in document["results"]} == {
        "speech_wer": "ok", **{probe: "skipped" for probe in NOT_AUDIO}}
    assert document["matrix"]["whisper"] == {"text": "SKIPPED", "image": "SKIPPED", "audio": "REFERENCE",
                                             "video": "SKIPPED"}
    speech = next(r for r in document["results"] if r["probe"] == "speech_wer")
    assert speech["aggregates"]["n"] == 2
    assert speech["aggregates"]["corpus_wer"] < 0.2  # measured 0.078 on these two utterances
    assert document["variants"][0]["modalities"] == ["audio"]
