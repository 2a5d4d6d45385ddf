"""Thresholds -> verdicts with messages, and a diagnosis across one variant's verdicts.

A verdict is decided on paired samples, with the statistic's own uncertainty (two one-sided tests, as in
equivalence testing): at confidence c the interval is two-sided at 2c - 1, so each of its bounds holds with
confidence c.

- PASS: even the interval's worst end stays within the allowed loss.
- DEGRADED: even its best end is beyond the allowed loss (for 0/1 metrics the exact McNemar test must agree).
- BROKEN: even its best end is beyond the broken level, or the variant's outputs collapse (empty, looping,
  garbled, ignoring the media) on at least `collapse_rate` more of the samples than the reference's do, by an
  exact one-sided test.
- INCONCLUSIVE: anything between, or fewer than `min_samples` paired samples: never PASS or fail by luck.

Allowed loss, by the metric's direction and kind: higher-is-better 0/1 metrics keep `min_retention` of the
reference (variant / reference, as in llm-compressor's recovery gate); higher-is-better continuous metrics
drop at most `max_drop`; lower-is-better metrics (WER) rise at most `max_increase`, absolute, never a ratio.
The primary metric (the probe's first) decides; other metrics can only make the verdict worse, by being
DEGRADED or BROKEN themselves. So can the opt-in agreement gate (min_agreement / broken_agreement: the mean
word F1 of the variant's outputs against the reference's, judged on its interval's best end), the one signal
left when the reference's own scores mean nothing, as with a random-weight test model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from omnicheck.compare.agreement import AgreementSummary, agreement_summary
from omnicheck.compare.collapse import ANY_OUTPUT, OUTPUT_DETECTORS, compare_collapse, scan
from omnicheck.compare.paired import DEFAULT_RESAMPLES, PairedComparison, bootstrap_interval, compare_metric, one_sided_flip_p
from omnicheck.config import Settings, Thresholds
from omnicheck.divergence_verdict import judge_divergence
from omnicheck.types import ProbeResult, SampleResult, Verdict

_SEVERITY = {"PASS": 0, "INCONCLUSIVE": 1, "DEGRADED": 2, "BROKEN": 3}
MEDIA_MODALITIES = ("image", "audio", "video")


@dataclass(frozen=True)
class MetricJudgement:
    comparison: PairedComparison
    status: str  # PASS | DEGRADED | BROKEN | INCONCLUSIVE
    threshold_kind: str  # min_retention | max_drop | max_increase
    threshold: float
    allowed_loss: float | None  # in metric units; None when it cannot be set (reference at 0)
    broken_loss: float | None
    why: str  # the rule that decided, in words

    def to_json(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "status": self.status,
            "n": c.n,
            "reference": c.reference_mean,
            "variant": c.variant_mean,
            "difference": c.difference,
            "interval": list(c.interval),
            "level": c.level,
            "retention": c.retention,
            "retention_interval": list(c.retention_interval) if c.retention_interval else None,
            "worse": c.worse,
            "better": c.better,
            "p_value": c.p_value,
            "method": c.method,
            "threshold_kind": self.threshold_kind,
            "threshold": self.threshold,
            "allowed_loss": self.allowed_loss,
            "why": self.why,
        }


def judge_metric(
    comparison: PairedComparison, thresholds: Thresholds, confidence: float = 0.95
) -> MetricJudgement:
    """One metric's status from its paired comparison."""
    c = comparison
    alpha = 1.0 - confidence
    if c.higher_is_better and c.kind == "binary":
        kind, threshold = "min_retention", thresholds.min_retention
        allowed = (1.0 - thresholds.min_retention) * c.reference_mean if c.reference_mean > 0 else None
        broken = (1.0 - thresholds.broken_retention) * c.reference_mean if c.reference_mean > 0 else None
    elif c.higher_is_better:
        kind, threshold = "max_drop", thresholds.max_drop
        allowed, broken = thresholds.max_drop, thresholds.broken_drop
    else:
        kind, threshold = "max_increase", thresholds.max_increase
        allowed, broken = thresholds.max_increase, thresholds.broken_increase

    def result(status: str, why: str) -> MetricJudgement:
        return MetricJudgement(c, status, kind, threshold, allowed, broken, why)

    if c.n < thresholds.min_samples:
        return result("INCONCLUSIVE", (
            f"n={c.n} is below min_samples={thresholds.min_samples}: too few samples to decide "
            "(for a gate, run more: --omnicheck-tier full, or a larger --omnicheck-limit)"
        ))
    if allowed is None or broken is None:
        return result(
            "INCONCLUSIVE", f"the reference scores {c.reference_mean:.3g} on {c.metric}, so no loss can show against it"
        )
    best_loss, worst_loss = c.loss_interval
    # a 0/1 metric says "worse" only when the exact test agrees: the score interval is optimistic at small n
    exact_worse = c.kind != "binary" or one_sided_flip_p(c.worse, c.better) < alpha
    if worst_loss <= allowed + 1e-12:
        return result("PASS", "the whole interval is within the allowed loss")
    if best_loss > broken and exact_worse:
        return result("BROKEN", "the whole interval is beyond the broken level")
    if best_loss > allowed and exact_worse:
        return result("DEGRADED", "the whole interval is beyond the allowed loss")
    if best_loss > allowed:
        return result("INCONCLUSIVE", f"the interval is beyond the allowed loss but the exact test is not sure (n={c.n})")
    return result("INCONCLUSIVE", "the interval straddles the threshold")


def judge(
    reference: ProbeResult,
    variant: ProbeResult,
    thresholds: Thresholds | Settings | None = None,
    *,
    confidence: float | None = None,
    resamples: int | None = None,
    seed: int | None = None,
    language: str = "en",
    card: Mapping[str, Any] | None = None,
) -> Verdict:
    """The verdict for one variant on one probe, against the reference's result on the same probe.

    thresholds: a Thresholds, or the run's Settings (its thresholds for this probe and modality, confidence,
    bootstrap resamples and seed are used unless given here), or None for the defaults. card: the variant's
    quant card (see diagnose); a W4A4 card whose activations did not run quantized adds that as a finding.
    """
    if hasattr(thresholds, "thresholds_for"):  # the run's Settings (duck-typed: survives module reloads)
        settings = thresholds
        thresholds = settings.thresholds_for(variant.probe, variant.modality)
        confidence = settings.confidence if confidence is None else confidence
        resamples = settings.bootstrap_resamples if resamples is None else resamples
        seed = settings.seed if seed is None else seed
    thresholds = thresholds or Thresholds()
    confidence = 0.95 if confidence is None else confidence
    resamples = DEFAULT_RESAMPLES if resamples is None else resamples
    seed = 0 if seed is None else seed
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    if variant.probe != reference.probe:
        raise ValueError(f"cannot judge probe {variant.probe!r} against the reference's {reference.probe!r}")
    if variant is reference or variant.variant == reference.variant:
        return _reference_verdict(reference, language)
    base = dict(variant=variant.variant, probe=variant.probe, modality=variant.modality)
    if variant.status != "ok":
        status = "ERROR" if variant.status == "error" else "SKIPPED"
        return Verdict(**base, status=status, message=f"{variant.probe} on {variant.variant}: {variant.reason}")
    if reference.status != "ok":
        status = "ERROR" if reference.status == "error" else "SKIPPED"
        what = "failed" if status == "ERROR" else "was skipped"
        return Verdict(
            **base,
            status=status,
            message=f"the reference {reference.variant} {what} on {reference.probe}, so there is nothing to compare against: {reference.reason}",
        )

    level = 2.0 * confidence - 1.0
    ref_samples, var_samples = _by_id(reference), _by_id(variant)
    shared = [sid for sid in ref_samples if sid in var_samples]
    unpaired = {
        "reference_only": [s for s in ref_samples if s not in var_samples],
        "variant_only": [s for s in var_samples if s not in ref_samples],
    }
    details: dict[str, Any] = {"confidence": confidence, "level": level, "unpaired": unpaired}
    if not shared:
        return Verdict(
            **base,
            status="INCONCLUSIVE",
            message=f"{variant.probe} on {variant.variant}: the variant and the reference share no samples (ids differ)",
            details=details,
        )

    judgements = _judge_metrics(reference, ref_samples, var_samples, shared, thresholds, confidence, level, resamples, seed)
    ref_scan, var_scan = scan(reference, language=language), scan(variant, language=language)
    collapse = compare_collapse(ref_scan, var_scan)
    alpha = 1.0 - confidence
    broken_by_collapse = [c for c in collapse if c.excess >= thresholds.collapse_rate and c.p_value < alpha]
    if any(c.detector in OUTPUT_DETECTORS for c in broken_by_collapse):  # the union adds nothing then
        broken_by_collapse = [c for c in broken_by_collapse if c.detector != ANY_OUTPUT]
    unsure_collapse = [c for c in collapse if c.excess >= thresholds.collapse_rate and c.p_value >= alpha]
    agree = agreement_summary(reference, variant)
    details["collapse"] = {
        "comparisons": [c.to_json() for c in collapse],
        "threshold": thresholds.collapse_rate,
        "flags": var_scan.flags,
    }
    details["agreement"] = agree.to_json()
    details["metrics"] = {name: j.to_json() for name, j in judgements.items()}
    details["thresholds"] = dict(vars(thresholds))

    primary_name = reference.primary.name
    primary = judgements.get(primary_name)
    findings = [c.describe() for c in broken_by_collapse]
    status = primary.status if primary else "INCONCLUSIVE"
    for name, judgement in judgements.items():
        if name != primary_name and judgement.status in ("DEGRADED", "BROKEN"):
            findings.append(f"{name}: {judgement.status}: {_metric_sentence(judgement)}")
            if _SEVERITY[judgement.status] > _SEVERITY[status]:
                status = judgement.status
    agreement_judgement = _judge_agreement(agree, shared, thresholds, level, resamples, seed)
    decided_by_agreement = False
    if agreement_judgement:
        details["agreement"].update(agreement_judgement[2])
        if agreement_judgement[0] in ("DEGRADED", "BROKEN"):
            findings.append(agreement_judgement[1])
            if _SEVERITY[agreement_judgement[0]] > _SEVERITY[status]:
                status = agreement_judgement[0]
        elif agreement_judgement[0] == "PASS" and status == "INCONCLUSIVE" and primary and primary.allowed_loss is None:
            # the reference scores 0, so its metric cannot speak; the opted-in agreement gate can
            status, decided_by_agreement = "PASS", True
    if broken_by_collapse:
        status = "BROKEN"
    collapsed = [s for s in shared if any(var_scan.fired(s, d) and not ref_scan.fired(s, d) for d in (ANY_OUTPUT, "media_ignored"))]
    divergence = judge_divergence(ref_samples, var_samples, shared, collapsed, thresholds, level, resamples, seed,
                                  unavailable=str((variant.info.get("divergence") or {}).get("reason", "")))
    details["divergence"] = divergence.details
    decided_by = "collapse" if broken_by_collapse else "task scores" if status != "INCONCLUSIVE" else "undecided"
    if decided_by_agreement:
        decided_by = "output agreement"
    if divergence.status == "BROKEN" and status != "BROKEN":
        status, decided_by = "BROKEN", "divergence and collapse"
        findings.append(divergence.sentence)
    elif (divergence.status == "PASS" and status == "INCONCLUSIVE" and not unsure_collapse
          and not any(j.status in ("DEGRADED", "BROKEN") for j in judgements.values())):
        status, decided_by = "PASS", "divergence"
    details["decided_by"] = decided_by
    if card and card.get("activation_quantized") is True and card.get("activations_ran_quantized") is False:
        findings.append(
            "this activation-quantized checkpoint ran with its activations unquantized, so this verdict does not "
            "describe deployment where activations are quantized (e.g. on FP4 hardware)"
        )

    parts = []
    if broken_by_collapse:
        worst = max(broken_by_collapse, key=lambda c: (c.detector != ANY_OUTPUT, c.excess))
        parts.append(f"outputs collapsed: {worst.describe()}")
    if primary:
        parts.append(_metric_sentence(primary))
    else:
        parts.append(f"no paired scores for the primary metric {primary_name!r}")
    if unsure_collapse and not broken_by_collapse:
        c = max(unsure_collapse, key=lambda c: c.excess)
        parts.append(f"collapse suspected but not shown at {confidence:.0%} confidence: {c.describe()}")
    if agreement_judgement and (decided_by_agreement or agreement_judgement[0] in ("DEGRADED", "BROKEN")):
        parts.append(agreement_judgement[1] + (" (decides, as the metric cannot)" if decided_by_agreement else ""))
    else:
        parts.append(_agreement_sentence(agree.mean_similarity, agree.identical_share))
    parts.append(divergence.sentence + (" (decides, as the task scores cannot)" if decided_by == "divergence" else ""))
    if unpaired["reference_only"] or unpaired["variant_only"]:
        parts.append(
            f"{len(unpaired['reference_only'])} reference-only and {len(unpaired['variant_only'])} variant-only samples left out"
        )
    message = f"{variant.probe} on {variant.variant}: " + "; ".join(parts)

    c = primary.comparison if primary else None
    if primary:
        details.update(
            threshold_kind=primary.threshold_kind,
            retention_interval=list(c.retention_interval) if c.retention_interval else None,
            p_value=c.p_value,
            method=c.method,
            worse=c.worse,
            better=c.better,
        )
    return Verdict(
        **base,
        status=status,
        message=message,
        metric=primary_name,
        reference_value=c.reference_mean if c else None,
        variant_value=c.variant_mean if c else None,
        difference=c.difference if c else None,
        interval=c.interval if c else None,
        threshold=primary.threshold if primary else None,
        retention=c.retention if c else None,
        n=c.n if c else len(shared),
        findings=findings,
        details=details,
    )


def _judge_agreement(
    agree: AgreementSummary, shared: Sequence[str], thresholds: Thresholds, level: float, resamples: int, seed: int
) -> tuple[str, str, dict[str, Any]] | None:
    """The opt-in agreement gate: (status, sentence, details) or None when off or too few samples."""
    if not (thresholds.min_agreement or thresholds.broken_agreement) or len(shared) < thresholds.min_samples:
        return None
    similarities = [agree.per_sample[s].similarity for s in shared]
    lo, hi = bootstrap_interval(similarities, level, resamples, seed)
    limit, name = thresholds.min_agreement, "min_agreement"
    if thresholds.broken_agreement and hi < thresholds.broken_agreement:
        status, limit, name = "BROKEN", thresholds.broken_agreement, "broken_agreement"
    elif thresholds.min_agreement and hi < thresholds.min_agreement:
        status = "DEGRADED"
    elif thresholds.min_agreement and lo >= thresholds.min_agreement:
        status = "PASS"
    else:
        status = "INCONCLUSIVE"
    relation = "at or above" if status == "PASS" else "below" if status in ("DEGRADED", "BROKEN") else "straddling"
    sentence = (
        f"output_agreement: {status}: the variant's outputs match the reference's with mean word F1 "
        f"{agree.mean_similarity:.3f}, {level:.0%} interval [{lo:.3f}, {hi:.3f}], {relation} {name}={limit}; n={len(shared)}"
    )
    return status, sentence, {"interval": [lo, hi], "status": status}


def _by_id(result: ProbeResult) -> dict[str, SampleResult]:
    out: dict[str, SampleResult] = {}
    for sample in result.samples:
        if sample.sample_id in out:
            raise ValueError(f"{result.variant}/{result.probe} has two samples with id {sample.sample_id!r}")
        out[sample.sample_id] = sample
    return out


def _judge_metrics(
    reference: ProbeResult,
    ref_samples: Mapping[str, SampleResult],
    var_samples: Mapping[str, SampleResult],
    shared: Sequence[str],
    thresholds: Thresholds,
    confidence: float,
    level: float,
    resamples: int,
    seed: int,
) -> dict[str, MetricJudgement]:
    out = {}
    for metric in reference.metrics:
        pairs = [
            (ref_samples[s].scores.get(metric.name), var_samples[s].scores.get(metric.name)) for s in shared
        ]
        pairs = [(r, v) for r, v in pairs if _finite(r) and _finite(v)]
        if not pairs:
            continue
        comparison = compare_metric(
            [r for r, _ in pairs], [v for _, v in pairs], metric, level=level, resamples=resamples, seed=seed
        )
        out[metric.name] = judge_metric(comparison, thresholds, confidence)
    return out


def _finite(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, (int, float)) and math.isfinite(value)


def _num(x: float) -> str:
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"


def _signed(x: float) -> str:
    return ("+" if x >= 0 else "-") + _num(abs(x))


def _metric_sentence(j: MetricJudgement) -> str:
    c = j.comparison
    lo, hi = c.interval
    text = (
        f"{c.metric} {_num(c.reference_mean)} (reference) vs {_num(c.variant_mean)} (variant), "
        f"difference {_signed(c.difference)}, {c.level:.0%} interval [{_signed(lo)}, {_signed(hi)}]"
    )
    if j.threshold_kind == "min_retention":
        if c.retention_interval:
            rlo, rhi = c.retention_interval
            text += f", retention {c.retention:.3f} [{rlo:.3f}, {rhi:.3f}] against the {j.threshold:.2f} threshold"
        else:
            text += f", retention undefined against the {j.threshold:.2f} threshold"
    elif j.threshold_kind == "max_drop":
        text += f", allowed drop {_num(j.threshold)}"
    else:
        text += f", allowed increase {_num(j.threshold)}"
    if c.kind == "binary":
        text += (f"; {c.worse} samples flipped worse, {c.better} better (exact McNemar p={c.p_value:.3g}, "
                 f"one-sided {one_sided_flip_p(c.worse, c.better):.3g}, which decides)")
    else:
        text += f"; worse on {c.worse}, better on {c.better}"
    return f"{text}; n={c.n}: {j.status} ({j.why})"


def _agreement_sentence(mean_similarity: float, identical_share: float) -> str:
    return f"agreement with the reference's outputs: word F1 {mean_similarity:.2f}, {identical_share:.0%} identical"


def _reference_verdict(reference: ProbeResult, language: str) -> Verdict:
    base = dict(variant=reference.variant, probe=reference.probe, modality=reference.modality)
    if reference.status != "ok":
        status = "ERROR" if reference.status == "error" else "SKIPPED"
        return Verdict(**base, status=status, message=f"{reference.probe} on the reference {reference.variant}: {reference.reason}")
    metric = reference.primary
    values = [s.scores[metric.name] for s in reference.samples if _finite(s.scores.get(metric.name))]
    mean = sum(values) / len(values) if values else None
    counts = scan(reference, language=language).counts()
    n = len(reference.samples)
    own = ", ".join(f"{counts[d]} {label}" for d, label in (("empty", "empty"), ("loop", "looping"), ("garbled", "garbled"), ("media_ignored", "ignoring the media")))
    value = f"{metric.name} {_num(mean)}" if mean is not None else f"no {metric.name} scores"
    findings = []
    if n and counts[ANY_OUTPUT] / n >= 0.5:
        findings.append(
            f"the reference's own outputs collapse on {counts[ANY_OUTPUT]} of {n} samples: this probe cannot show a variant's collapse"
        )
    return Verdict(
        **base,
        status="REFERENCE",
        message=f"{reference.probe} on {reference.variant} (the reference): {value} over {n} samples; its own outputs: {own}",
        metric=metric.name,
        reference_value=mean,
        variant_value=mean,
        n=len(values),
        findings=findings,
        details={"collapse_counts": counts},
    )


# --- diagnosis across one variant's verdicts ---


def diagnose(verdicts: Sequence[Verdict], quant_card: Mapping[str, Any] | None) -> list[str]:
    """Findings in words about why a variant's modalities fail, from its verdicts and its quant card.

    Reads these keys of quant_card (all optional; a missing card or key says less, never errs):
      activation_quantized: bool -- some layers quantize their input activations (W4A4 / NVFP4 / W8A8 / FP8 dynamic).
      scheme: str -- the scheme's name as the card writes it (e.g. "NVFP4", "NVFP4A16", "FP8_DYNAMIC"), quoted.
      activations_ran_quantized: bool -- from the execution path: False when this run did not quantize
        activations (e.g. a weight-only kernel ran a W4A4 checkpoint), so activation clipping cannot be the cause.
      calibration_datasets: list[str] -- recipe calibration sets, named when present.
    """
    judged = [v for v in verdicts if v.status in _SEVERITY]
    by_modality: dict[str, list[Verdict]] = {}
    for v in judged:
        by_modality.setdefault(v.modality, []).append(v)
    text = by_modality.get("text", [])
    text_ok = bool(text) and all(v.status == "PASS" for v in text)
    broken = [m for m in MEDIA_MODALITIES if any(v.status == "BROKEN" for v in by_modality.get(m, []))]
    degraded = [m for m in MEDIA_MODALITIES if m not in broken and any(v.status == "DEGRADED" for v in by_modality.get(m, []))]
    card = quant_card or {}
    scheme = card.get("scheme")
    scheme_words = f" (scheme {scheme})" if scheme else ""
    findings: list[str] = []

    all_modalities = [m for m in ("text", *MEDIA_MODALITIES) if m in by_modality]
    if len(all_modalities) > 1 and all(any(v.status == "BROKEN" for v in by_modality[m]) for m in all_modalities):
        findings.append(
            "every modality is BROKEN, text included: the model as a whole is damaged (weights, load, tokenizer or "
            "chat template), not one modality's path"
        )
        return findings
    if not text_ok or not (broken or degraded):
        return findings
    failing = broken or degraded
    names = _join(failing)
    state = "BROKEN" if broken else "DEGRADED"
    if card.get("activation_quantized") is True:
        if card.get("activations_ran_quantized") is False:
            findings.append(
                f"text passes while {names} {'is' if len(failing) == 1 else 'are'} {state}, but this run did not quantize "
                f"activations{scheme_words}, so clipped activation scales are not the cause here: look at the "
                f"{names} towers and projectors (their weights, and MISSING keys in the load report)"
            )
            return findings
        calibration = card.get("calibration_datasets")
        calibrated_on = f" (calibration data: {', '.join(map(str, calibration))})" if calibration else ""
        likely = "likely" if broken else "possible"
        findings.append(
            f"text passes while {names} {'is' if len(failing) == 1 else 'are'} {state} and this variant quantizes "
            f"activations{scheme_words}: the {likely} cause is activation scales calibrated on text{calibrated_on}, "
            f"which clip the {names} activations whose ranges text never showed. Fixes: use a weight-only scheme "
            f"(e.g. W4A16 / NVFP4A16) for these layers or the whole model; calibrate with {names} samples in the "
            f"calibration data; or keep the layers that consume {names} embeddings (towers, projectors, embedding "
            f"projections) unquantized."
        )
    elif card.get("activation_quantized") is False:
        findings.append(
            f"text passes while {names} {'is' if len(failing) == 1 else 'are'} {state} under weight-only quantization"
            f"{scheme_words}: the damage is in the {names} path itself: check whether the {names} towers or "
            f"projectors were quantized or loaded wrong (MISSING/UNEXPECTED keys, an ignore list that names no module)"
        )
    else:
        findings.append(
            f"text passes while {names} {'is' if len(failing) == 1 else 'are'} {state}: the damage is in the {names} "
            f"path (towers, projectors, or activation ranges); a quant card would say which"
        )
    return findings


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
