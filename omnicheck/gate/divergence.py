"""What teacher-forced divergence may decide in a verdict, the sentence that says so, and what it says across a
variant's modalities (per-modality divergence, media against text).

Rules (thresholds in [tool.omnicheck.thresholds], validated in docs/divergence.md):
- PASS, only where the task scores cannot decide (INCONCLUSIVE) and at least min_samples samples were scored: the
  upper end of the variant's mean-KL interval is within divergence_pass_multiple x the A/A noise floor (the
  reference scoring its own answers at another batch size: the variant moves the token distributions no more
  than re-running the reference does; a variant that reproduces them bit for bit passes at a floor of 0), or, where
  a user opts in, below divergence_pass_kl nats per token. That absolute level is off by default: the validation
  (docs/divergence.md) found KL levels of 0.003 to 0.03 both where task scores were kept and where they were lost.
- BROKEN, at as few as divergence_min_samples samples: the variant's outputs collapse (empty, looping, garbled,
  ignoring the media) on at least collapse_rate of the samples where the reference's do not, and on every one of
  those samples its KL is at least divergence_broken_kl nats per token and divergence_broken_multiple x the floor:
  the collapse is the variant's own, far beyond anything noise or a near-tie in the reference could make.
- Otherwise divergence decides nothing; it is reported with every verdict.
Pure: reads the per-sample records omnicheck.teacher_forcing left in each SampleResult.extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from omnicheck.compare.paired import bootstrap_interval
from omnicheck.types import DecidedBy, SampleResult, Status

FLOOR_KEY = "divergence_floor"
VARIANT_KEY = "divergence"


@dataclass(frozen=True)
class DivergenceJudgement:
    status: Status | None  # PASS | BROKEN | None (decides nothing)
    sentence: str
    details: dict[str, Any]


def judge_divergence(
    reference: Mapping[str, SampleResult],
    variant: Mapping[str, SampleResult],
    shared: Sequence[str],
    collapsed: Sequence[str],
    thresholds: Any,
    level: float,
    resamples: int,
    seed: int,
    unavailable: str = "",
) -> DivergenceJudgement:
    """collapsed: the shared samples on which the variant's output collapsed and the reference's did not."""
    scored = [s for s in shared if VARIANT_KEY in variant[s].extra]
    floors = [reference[s].extra[FLOOR_KEY]["kl_mean"] for s in shared if FLOOR_KEY in reference[s].extra]
    if not scored or not floors:
        why = unavailable or ("no sample carries token scores" if not scored else "the reference has no A/A floor")
        return DivergenceJudgement(None, f"divergence not available: {why}", {"status": "not available", "reason": why})
    kl = np.array([variant[s].extra[VARIANT_KEY]["kl_mean"] for s in scored])
    agreement = np.array([variant[s].extra[VARIANT_KEY]["agreement"] for s in scored])
    floor = float(np.mean(floors))  # the probe's noise level, over every sample the A/A pass scored
    lo, hi = bootstrap_interval(kl, level, resamples, seed)
    identical = sum(variant[s].extra[VARIANT_KEY]["first_divergence"] is None for s in scored)
    pass_limit = max(thresholds.divergence_pass_multiple * floor, thresholds.divergence_pass_kl)
    broken_limit = max(thresholds.divergence_broken_kl, thresholds.divergence_broken_multiple * floor)
    passing = thresholds.divergence_pass_multiple > 0 or thresholds.divergence_pass_kl > 0  # both 0: never PASS
    details: dict[str, Any] = {
        "status": "ok", "n": len(scored), "kl_mean": float(kl.mean()), "kl_interval": [lo, hi], "level": level,
        "floor": floor, "times_floor": _times_floor(float(kl.mean()), floor), "agreement": float(agreement.mean()),
        "identical": identical, "pass_limit": pass_limit, "broken_limit": broken_limit,
        "first_divergence": [variant[s].extra[VARIANT_KEY]["first_divergence"] for s in scored],
    }
    words = (f"divergence: KL {kl.mean():.3g} nats per token, {level:.0%} interval [{lo:.3g}, {hi:.3g}], "
             f"{_times_floor_words(float(kl.mean()), floor)} the A/A noise floor ({floor:.3g}); top-1 agreement "
             f"{agreement.mean():.1%}, {identical} of {len(scored)} answers reproduced token for token")
    status = None
    collapsed_scored = [s for s in collapsed if s in scored]
    far = [s for s in collapsed_scored if variant[s].extra[VARIANT_KEY]["kl_mean"] >= broken_limit]
    enough = thresholds.divergence_min_samples and len(scored) >= thresholds.divergence_min_samples
    if (enough and thresholds.divergence_broken_kl and collapsed_scored and len(far) == len(collapsed_scored)
            and len(far) / len(scored) >= thresholds.collapse_rate):
        status = Status.BROKEN
        words += (f"; BROKEN: outputs collapsed on {len(far)} of {len(scored)} samples, each with KL at least "
                  f"{broken_limit:.3g} (divergence_broken_kl / divergence_broken_multiple x floor)")
    elif passing and len(scored) >= thresholds.min_samples and hi <= pass_limit + 1e-15:
        status = Status.PASS
        rule = ("divergence_pass_kl" if thresholds.divergence_pass_kl and pass_limit == thresholds.divergence_pass_kl
                else f"{thresholds.divergence_pass_multiple:g}x the floor, divergence_pass_multiple")
        words += f"; the upper end {hi:.3g} is within {pass_limit:.3g} ({rule})"
    details["decides"] = status.value if status else None
    return DivergenceJudgement(status, words, details)


def decide_with_divergence(decision: Any, divergence: DivergenceJudgement, collapse: Any,
                           metrics: Mapping[str, Any]) -> DecidedBy:
    """Let divergence decide where its rules allow (module docstring); returns what decided the verdict."""
    if collapse.broken:
        decided_by = DecidedBy.COLLAPSE
    elif decision.decided_by_agreement:
        decided_by = DecidedBy.OUTPUT_AGREEMENT
    else:
        decided_by = DecidedBy.UNDECIDED if decision.status == Status.INCONCLUSIVE else DecidedBy.TASK_SCORES
    if divergence.status == Status.BROKEN and decision.status != Status.BROKEN:
        decision.status = Status.BROKEN
        decision.findings.append(divergence.sentence)
        return DecidedBy.DIVERGENCE_AND_COLLAPSE
    failing = any(j.status in (Status.DEGRADED, Status.BROKEN) for j in metrics.values())
    if (divergence.status == Status.PASS and decision.status == Status.INCONCLUSIVE and not collapse.unsure
            and not failing):
        decision.status = Status.PASS
        return DecidedBy.DIVERGENCE
    return decided_by


def collapsed_samples(reference: Any, variant: Any, shared: Sequence[str], language: str) -> list[str]:
    """The shared samples whose variant output collapsed (or ignored the media) where the reference's did not."""
    from omnicheck.compare.collapse import ANY_OUTPUT, scan

    ref_scan, var_scan = scan(reference, language=language), scan(variant, language=language)
    detectors = (ANY_OUTPUT, "media_ignored")
    return [s for s in shared if any(var_scan.fired(s, d) and not ref_scan.fired(s, d) for d in detectors)]


def _times_floor(kl: float, floor: float) -> float | None:
    return kl / floor if floor > 0 else None


def _times_floor_words(kl: float, floor: float) -> str:
    if floor <= 0:
        return "at" if kl <= 0 else "above"
    ratio = kl / floor
    return f"{ratio:.2g}x" if ratio < 100 else f"{ratio:,.0f}x"


# --- per variant x modality, and the modality interaction, in words ---


def modality_divergence(results: Sequence[Any], references: Mapping[str, Any], level: float, resamples: int,
                        seed: int) -> dict[str, dict[str, Any]]:
    """modality -> mean KL over every scored sample of that modality's probes (interval over samples), its A/A
    floor, and the per-sample values the interaction needs. results: one variant's ProbeResults; references:
    probe -> the reference's ProbeResult."""
    per: dict[str, dict[str, list[float]]] = {}
    for result in results:
        reference = references.get(result.probe)
        if reference is None or result.status != "ok":
            continue
        floors = [s.extra[FLOOR_KEY]["kl_mean"] for s in reference.samples if FLOOR_KEY in s.extra]
        bucket = per.setdefault(result.modality, {"kl": [], "floor": [], "agreement": []})
        records = [s.extra[VARIANT_KEY] for s in result.samples if VARIANT_KEY in s.extra]
        if not records or not floors:
            continue
        bucket["kl"] += [r["kl_mean"] for r in records]
        bucket["agreement"] += [r["agreement"] for r in records]
        bucket["floor"] += floors
    out = {}
    for modality, bucket in per.items():
        if not bucket["kl"]:
            continue
        kl = np.array(bucket["kl"])
        floor = float(np.mean(bucket["floor"]))
        lo, hi = bootstrap_interval(kl, level, resamples, seed)
        out[modality] = {"n": int(kl.size), "kl_mean": float(kl.mean()), "kl_interval": [lo, hi], "floor": floor,
                         "times_floor": _times_floor(float(kl.mean()), floor),
                         "agreement": float(np.mean(bucket["agreement"])), "level": level, "kl_samples": bucket["kl"]}
    return out


def interaction(per_modality: Mapping[str, Mapping[str, Any]], card: Mapping[str, Any] | None, level: float,
                resamples: int, seed: int) -> tuple[list[dict[str, Any]], list[str]]:
    """For each media modality against text: the contrast, and a sentence with the first suspect where one stands out."""
    from omnicheck.compare.divergence import contrast

    text = per_modality.get("text")
    if not text:
        return [], []
    contrasts, sentences = [], []
    for modality in ("image", "audio", "video"):
        media = per_modality.get(modality)
        if not media:
            continue
        floor = max(text["floor"], media["floor"])
        c = contrast(modality, media["kl_samples"], text["kl_samples"], floor=floor, level=level,
                     resamples=resamples, seed=seed)
        contrasts.append(c.to_json())
        sentence = c.sentence()
        if c.decided == "larger" and c.ratio_interval[0] >= 10:
            sentence += f"; {_suspect(modality, card)}"
        sentences.append(sentence)
    return contrasts, sentences


def _suspect(modality: str, card: Mapping[str, Any] | None) -> str:
    card = card or {}
    if card.get("activation_quantized") is True and card.get("activations_ran_quantized") is not False:
        return (f"activation quantization calibrated without {modality} (clipped {modality} activation ranges) is "
                "the first suspect")
    if card.get("activation_quantized") is False:
        return f"under weight-only quantization the {modality} path's own weights (tower, projection) are the first suspect"
    return f"the {modality} path (tower, projection, or its activation ranges) is the first suspect"


def across_modalities(results: Sequence[Any], references: Mapping[str, Any], card: Mapping[str, Any] | None,
                      settings: Any) -> tuple[dict[str, Any], list[str]]:
    """One variant's divergence per modality and each media modality against text: (JSON, sentences)."""
    level = 2.0 * settings.confidence - 1.0
    per_modality = modality_divergence(results, references, level, settings.bootstrap_resamples, settings.seed)
    contrasts, sentences = interaction(per_modality, card, level, settings.bootstrap_resamples, settings.seed)
    summary = {"per_modality": {m: {k: v for k, v in d.items() if k != "kl_samples"} for m, d in per_modality.items()},
               "contrasts": contrasts}
    return summary, sentences
