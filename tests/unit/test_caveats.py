"""What a verdict says about its own limits: a reference near chance on the probe (the probe then measured
agreement with the reference only) and samples skipped for unreadable media. The results are shaped like real
runs; the gate only reads the scores, so no model runs here."""

from __future__ import annotations

import copy

from omnicheck.compare.caveats import reference_near_chance
from omnicheck.gate import judge
from omnicheck.types import Metric, ProbeResult, SampleResult

WER = Metric("wer", False, "continuous", chance=1.0)
RECALL = Metric("object_recall", True, "continuous", chance=0.0)
EXACT = Metric("exact_match", True, "binary", chance=0.0)
WORDS = "he hoped there would be stew for dinner turnips and carrots and bruised potatoes".split()


def speech(name: str, wers: list[float]) -> ProbeResult:
    samples = [SampleResult(f"1089-134686-{i:04d}", "Transcribe this audio.", [], " ".join(WORDS[: 1 + i % 9]),
                            " ".join(WORDS), {"wer": w}) for i, w in enumerate(wers)]
    return ProbeResult(name, "speech_wer", "audio", "ok", [WER], samples)


def captions(name: str, real: list[float], blank: list[float]) -> ProbeResult:
    def make(values, text):
        return [SampleResult(f"img{i}", "Describe this image in one sentence.", [], f"{text} {i}", ["A cat."], {"object_recall": v})
                for i, v in enumerate(values)]
    result = ProbeResult(name, "image_caption", "image", "ok", [RECALL], make(real, "A photo of a cat"))
    result.counterfactual = make(blank, "A grey square")
    return result


def gsm8k(name: str, right: int, n: int = 60) -> ProbeResult:
    samples = [SampleResult(f"q{i}", f"Question {i}", [], f"#### {i}", str(i), {"exact_match": float(i < right)})
               for i in range(n)]
    return ProbeResult(name, "gsm8k", "text", "ok", [EXACT], samples)


def test_a_reference_that_cannot_transcribe_is_near_chance_and_the_verdict_says_so():
    reference = speech("bf16", [0.92, 0.97, 1.0, 0.88, 0.95] * 4)  # a synthetic-speech model on LibriVox
    sentence = reference_near_chance(reference, broken_loss=0.3, alpha=0.05)
    assert sentence and "wer 0.944 against 1.000 for an empty answer" in sentence
    variant = copy.deepcopy(reference)
    variant.variant = "w4a16"
    verdict = judge(reference, variant)
    assert verdict.status == "PASS"  # equally bad: the gate's decision is unchanged...
    assert "measures agreement with the reference only" in verdict.message  # ...but it says what PASS means here
    assert verdict.details["reference_near_chance"] is True
    assert any("near chance" in f for f in judge(reference, reference).findings)  # the REFERENCE row too


def test_a_competent_reference_gets_no_such_note():
    assert reference_near_chance(speech("bf16", [0.05, 0.1, 0.0, 0.08] * 5), 0.3, 0.05) is None
    assert reference_near_chance(captions("bf16", [0.9, 0.8, 1.0, 0.7] * 3, [0.0, 0.1, 0.0, 0.0] * 3), 0.3, 0.05) is None
    assert reference_near_chance(gsm8k("bf16", right=30), 0.3, 0.05) is None


def test_chance_is_what_the_reference_scores_with_the_media_blanked_when_it_has_that():
    # recall 0.45 looks like skill against an empty answer's 0, but the blanked pictures score 0.4 as well
    reference = captions("bf16", [0.5, 0.4] * 6, [0.4, 0.4] * 6)
    sentence = reference_near_chance(reference, 0.3, 0.05)
    assert sentence and "against 0.400 with the media blanked" in sentence


def test_a_binary_metric_is_near_chance_when_losing_every_pass_could_not_be_shown():
    assert "could not be shown worse" in reference_near_chance(gsm8k("bf16", right=4), 0.3, 0.05)
    assert reference_near_chance(gsm8k("bf16", right=5), 0.3, 0.05) is None  # 0.5**5 < 0.05


def test_skipped_samples_are_counted_in_the_verdict():
    reference = speech("bf16", [0.05, 0.1, 0.0, 0.08] * 5)
    skipped = [{"id": "1089-134686-0099", "reason": "audio /data/x.flac cannot be read (Format not recognised.)"}]
    reference.info["skipped_samples"] = skipped
    variant = copy.deepcopy(reference)
    variant.variant = "w4a16"
    verdict = judge(reference, variant)
    assert "1 sample skipped because the media could not be read (first: 1089-134686-0099: audio /data/x.flac" in verdict.message
    assert verdict.details["skipped_samples"] == skipped
    assert any("1 sample skipped" in f for f in judge(reference, reference).findings)
