"""What divergence may decide in a verdict (omnicheck.gate.divergence through gate.judge), on ProbeResults whose
per-sample divergence records are set by hand: the rules, not the models, are under test here (the models are in
tests/backends/test_scoring.py and tests/e2e/test_divergence_validation.py)."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from omnicheck.config import Thresholds
from omnicheck.gate import judge
from omnicheck.gate.divergence import interaction, modality_divergence
from omnicheck.types import Metric, ProbeResult, SampleResult

PASSED = Metric("prompt_level_strict_acc", True, "binary")
RECALL = Metric("concept_recall", True, "continuous")


def reference(n: int, probe: str = "ifeval", modality: str = "text", floor: float = 1e-5) -> ProbeResult:
    metric = PASSED if modality == "text" else RECALL
    samples = [SampleResult(f"s{i}", "q", [], f"The answer number {i} is a sentence.", None, {metric.name: 1.0},
                            extra={"divergence_floor": {"kl_mean": floor, "agreement": 1.0, "first_divergence": None}})
               for i in range(n)]
    return ProbeResult("bf16", probe, modality, "ok", [metric], samples)


def variant(ref: ProbeResult, kl: float | list[float], output=None, agreement: float = 1.0) -> ProbeResult:
    result = copy.deepcopy(ref)
    result.variant = "v"
    kls = kl if isinstance(kl, list) else [kl] * len(result.samples)
    for sample, value in zip(result.samples, kls):
        sample.extra = {"divergence": {"kl_mean": value, "agreement": agreement,
                                       "first_divergence": None if agreement == 1.0 else 0}}
        if output is not None:
            sample.output = output
            sample.scores = {k: 0.0 for k in sample.scores}
    return result


def test_identical_text_answers_at_n12_stay_inconclusive_without_divergence():
    ref = reference(12)
    plain = dataclasses.replace(variant(ref, 0.0), samples=[dataclasses.replace(s, extra={}) for s in variant(ref, 0.0).samples])
    verdict = judge(ref, plain)
    assert verdict.status == "INCONCLUSIVE"
    assert verdict.details["divergence"]["status"] == "not available"


def test_divergence_at_the_floor_decides_pass_where_scores_cannot():
    ref = reference(12)
    verdict = judge(ref, variant(ref, 2e-5))  # 2x the floor: the reference re-run moves it as much
    assert verdict.status == "PASS"
    assert verdict.details["decided_by"] == "divergence"
    assert "decides, as the task scores cannot" in verdict.message


def test_small_absolute_divergence_passes_below_divergence_pass_kl_and_not_above():
    ref = reference(12)
    opted_in = Thresholds(divergence_pass_kl=0.01)
    assert judge(ref, variant(ref, 0.004), opted_in).status == "PASS"
    verdict = judge(ref, variant(ref, 0.03), opted_in)
    assert verdict.status == "INCONCLUSIVE"
    assert verdict.details["divergence"]["decides"] is None
    off = Thresholds(divergence_pass_kl=0.0, divergence_pass_multiple=0.0)
    assert judge(ref, variant(ref, 2e-5), off).status == "INCONCLUSIVE"


def test_by_default_divergence_far_above_the_floor_decides_no_pass_however_small():
    """The validation (docs/divergence.md) found no absolute KL level that keeps task scores: a variant at 0.014
    nats per token lost 11 WER points. So by default only the floor multiple may decide PASS."""
    ref = reference(12)
    verdict = judge(ref, variant(ref, 0.004))  # 400x the floor
    assert verdict.status == "INCONCLUSIVE"
    assert verdict.details["divergence"]["decides"] is None


def test_bit_for_bit_reproduction_passes_at_a_floor_of_zero():
    """float32 on a CPU can make the A/A pass exact (floor 0): a variant that reads the answers with KL exactly 0
    passes, anything above it does not."""
    ref = reference(12, floor=0.0)
    assert judge(ref, variant(ref, 0.0)).status == "PASS"
    assert judge(ref, variant(ref, 1e-9)).status == "INCONCLUSIVE"


def test_divergence_never_passes_below_min_samples():
    ref = reference(8)
    assert judge(ref, variant(ref, 0.0)).status == "INCONCLUSIVE"


def test_divergence_never_overrules_scores_that_fail():
    ref = reference(30, "video_describe", "video")
    bad = variant(ref, 1e-5)
    for sample in bad.samples:
        sample.scores = {"concept_recall": 0.5}  # a 0.5 drop on every sample: beyond broken_drop
    verdict = judge(ref, bad)
    assert verdict.status == "BROKEN" and verdict.details["decided_by"] == "task scores"


def test_three_empty_answers_with_far_divergence_are_broken():
    """Three clips, every answer empty: the exact collapse test cannot speak at n=3 (p = 0.125); divergence can."""
    ref = reference(3, "video_describe", "video")
    dead = variant(ref, [4.0, 5.5, 3.2], output="", agreement=0.0)
    verdict = judge(ref, dead)
    assert verdict.status == "BROKEN"
    assert verdict.details["decided_by"] == "divergence and collapse"
    without = dataclasses.replace(dead, samples=[dataclasses.replace(s, extra={}) for s in dead.samples])
    assert judge(ref, without).status == "INCONCLUSIVE"


def test_collapse_close_to_the_reference_is_not_broken():
    """Empty answers the reference itself nearly gave (KL below divergence_broken_kl) prove nothing at n=3."""
    ref = reference(3, "video_describe", "video")
    assert judge(ref, variant(ref, [0.2, 0.1, 0.3], output="", agreement=0.0)).status == "INCONCLUSIVE"


def test_far_divergence_without_collapse_decides_nothing_at_small_n():
    ref = reference(3, "video_describe", "video")
    assert judge(ref, variant(ref, 4.0, agreement=0.0)).status == "INCONCLUSIVE"


def test_every_verdict_says_its_divergence_and_the_multiple_of_the_floor():
    ref = reference(12)
    verdict = judge(ref, variant(ref, 0.001))
    details = verdict.details["divergence"]
    assert details["kl_mean"] == pytest.approx(0.001)
    assert details["times_floor"] == pytest.approx(100)
    assert "100x the A/A noise floor" in verdict.message


def test_media_divergence_far_above_text_names_the_suspect():
    text_ref, image_ref = reference(12), reference(12, "image_caption", "image")
    results = [variant(text_ref, 0.001), variant(image_ref, 0.5)]
    per = modality_divergence(results, {"ifeval": text_ref, "image_caption": image_ref}, 0.9, 1000, 0)
    contrasts, sentences = interaction(per, {"activation_quantized": True}, 0.9, 1000, 0)
    assert contrasts[0]["decided"] == "larger" and contrasts[0]["ratio"] == pytest.approx(500)
    assert sentences[0].startswith("image tokens diverge 500x more than text")
    assert "activation quantization calibrated without image" in sentences[0]
    _, alike = interaction(modality_divergence([variant(text_ref, 0.001), variant(image_ref, 0.001)],
                                               {"ifeval": text_ref, "image_caption": image_ref}, 0.9, 1000, 0),
                           None, 0.9, 1000, 0)
    assert "nothing specific to image" in alike[0]
