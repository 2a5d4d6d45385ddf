"""The decision: each metric's status from its paired comparison, the collapse detectors, the opt-in agreement
gate, and how they combine into one status (the primary metric decides; the others can only make it worse)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from omnicheck.compare.agreement import AgreementSummary
from omnicheck.compare.collapse import ANY_OUTPUT, OUTPUT_DETECTORS, CollapseComparison, compare_collapse, scan
from omnicheck.compare.paired import PairedComparison, bootstrap_interval, compare_metric, one_sided_flip_p
from omnicheck.config import Thresholds
from omnicheck.gate.message import metric_sentence
from omnicheck.gate.settings import GateSettings
from omnicheck.types import ProbeResult, SampleResult, Status, worst

FAILING = (Status.DEGRADED, Status.BROKEN)  # the statuses a secondary signal can add


@dataclass(frozen=True)
class MetricJudgement:
    comparison: PairedComparison
    status: Status  # PASS | DEGRADED | BROKEN | INCONCLUSIVE
    threshold_kind: str  # min_retention | max_drop | max_increase
    threshold: float
    allowed_loss: float | None  # in metric units; None when it cannot be set (reference at 0)
    broken_loss: float | None
    why: str  # the rule that decided, in words

    def to_json(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "status": self.status.value,
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

    def result(status: Status, why: str) -> MetricJudgement:
        return MetricJudgement(c, status, kind, threshold, allowed, broken, why)

    if c.n < thresholds.min_samples:
        return result(Status.INCONCLUSIVE, (
            f"n={c.n} is below min_samples={thresholds.min_samples}: too few samples to decide "
            "(for a gate, run more: --omnicheck-tier full, or a larger --omnicheck-limit)"
        ))
    if allowed is None or broken is None:
        return result(
            Status.INCONCLUSIVE, f"the reference scores {c.reference_mean:.3g} on {c.metric}, so no loss can show against it"
        )
    best_loss, worst_loss = c.loss_interval
    # a 0/1 metric says "worse" only when the exact test agrees: the score interval is optimistic at small n
    exact_worse = c.kind != "binary" or one_sided_flip_p(c.worse, c.better) < alpha
    if worst_loss <= allowed + 1e-12:
        return result(Status.PASS, "the whole interval is within the allowed loss")
    if best_loss > broken and exact_worse:
        return result(Status.BROKEN, "the whole interval is beyond the broken level")
    if best_loss > allowed and exact_worse:
        return result(Status.DEGRADED, "the whole interval is beyond the allowed loss")
    if best_loss > allowed:
        return result(Status.INCONCLUSIVE, f"the interval is beyond the allowed loss but the exact test is not sure (n={c.n})")
    return result(Status.INCONCLUSIVE, "the interval straddles the threshold")


# --- pairing ---


@dataclass(frozen=True)
class Pairing:
    """The reference's and the variant's samples by id, the ids both have (in the reference's order), the rest."""

    reference: Mapping[str, SampleResult]
    variant: Mapping[str, SampleResult]
    shared: list[str]
    unpaired: dict[str, list[str]]


def pair_samples(reference: ProbeResult, variant: ProbeResult) -> Pairing:
    ref_samples, var_samples = _by_id(reference), _by_id(variant)
    return Pairing(
        reference=ref_samples,
        variant=var_samples,
        shared=[sid for sid in ref_samples if sid in var_samples],
        unpaired={
            "reference_only": [s for s in ref_samples if s not in var_samples],
            "variant_only": [s for s in var_samples if s not in ref_samples],
        },
    )


def _by_id(result: ProbeResult) -> dict[str, SampleResult]:
    out: dict[str, SampleResult] = {}
    for sample in result.samples:
        if sample.sample_id in out:
            raise ValueError(f"{result.variant}/{result.probe} has two samples with id {sample.sample_id!r}")
        out[sample.sample_id] = sample
    return out


def judge_metrics(reference: ProbeResult, pairing: Pairing, gate: GateSettings) -> dict[str, MetricJudgement]:
    """Each metric with paired finite scores, judged; a metric no sample pair scores is left out."""
    out = {}
    for metric in reference.metrics:
        pairs = [
            (pairing.reference[s].scores.get(metric.name), pairing.variant[s].scores.get(metric.name))
            for s in pairing.shared
        ]
        pairs = [(r, v) for r, v in pairs if finite(r) and finite(v)]
        if not pairs:
            continue
        comparison = compare_metric(
            [r for r, _ in pairs], [v for _, v in pairs], metric, level=gate.level, resamples=gate.resamples,
            seed=gate.seed,
        )
        out[metric.name] = judge_metric(comparison, gate.thresholds, gate.confidence)
    return out


def finite(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, (int, float)) and math.isfinite(value)


# --- collapse detectors ---


@dataclass(frozen=True)
class CollapseDecision:
    comparisons: list[CollapseComparison]
    broken: list[CollapseComparison]  # excess at or over collapse_rate, shown at the confidence
    unsure: list[CollapseComparison]  # excess at or over collapse_rate, not shown
    flags: Any  # the variant's per-sample detector flags

    def to_json(self, threshold: float) -> dict[str, Any]:
        return {"comparisons": [c.to_json() for c in self.comparisons], "threshold": threshold, "flags": self.flags}


def judge_collapse(reference: ProbeResult, variant: ProbeResult, gate: GateSettings, language: str) -> CollapseDecision:
    var_scan = scan(variant, language=language)
    comparisons = compare_collapse(scan(reference, language=language), var_scan)
    rate = gate.thresholds.collapse_rate
    broken = [c for c in comparisons if c.excess >= rate and c.p_value < gate.alpha]
    if any(c.detector in OUTPUT_DETECTORS for c in broken):  # the union adds nothing then
        broken = [c for c in broken if c.detector != ANY_OUTPUT]
    unsure = [c for c in comparisons if c.excess >= rate and c.p_value >= gate.alpha]
    return CollapseDecision(comparisons, broken, unsure, var_scan.flags)


# --- the opt-in agreement gate ---


@dataclass(frozen=True)
class AgreementJudgement:
    status: Status
    sentence: str
    interval: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        return {"interval": list(self.interval), "status": self.status.value}


def judge_agreement(agree: AgreementSummary, shared: Sequence[str], gate: GateSettings) -> AgreementJudgement | None:
    """The agreement gate's status and sentence, or None when it is off or there are too few samples."""
    thresholds = gate.thresholds
    if not (thresholds.min_agreement or thresholds.broken_agreement) or len(shared) < thresholds.min_samples:
        return None
    similarities = [agree.per_sample[s].similarity for s in shared]
    lo, hi = bootstrap_interval(similarities, gate.level, gate.resamples, gate.seed)
    limit, name = thresholds.min_agreement, "min_agreement"
    if thresholds.broken_agreement and hi < thresholds.broken_agreement:
        status, limit, name = Status.BROKEN, thresholds.broken_agreement, "broken_agreement"
    elif thresholds.min_agreement and hi < thresholds.min_agreement:
        status = Status.DEGRADED
    elif thresholds.min_agreement and lo >= thresholds.min_agreement:
        status = Status.PASS
    else:
        status = Status.INCONCLUSIVE
    relation = "at or above" if status == Status.PASS else "below" if status in FAILING else "straddling"
    sentence = (
        f"output_agreement: {status}: the variant's outputs match the reference's with mean word F1 "
        f"{agree.mean_similarity:.3f}, {gate.level:.0%} interval [{lo:.3f}, {hi:.3f}], {relation} {name}={limit}; "
        f"n={len(shared)}"
    )
    return AgreementJudgement(status, sentence, (lo, hi))


# --- combining them ---


@dataclass
class Decision:
    status: Status
    findings: list[str] = field(default_factory=list)
    decided_by_agreement: bool = False


def decide(
    primary_name: str,
    metrics: Mapping[str, MetricJudgement],
    collapse: CollapseDecision,
    agreement: AgreementJudgement | None,
) -> Decision:
    """The primary metric decides; a failing secondary metric or agreement gate can make it worse; a shown
    collapse makes it BROKEN. An INCONCLUSIVE primary metric that cannot speak (reference at 0) lets a passing
    agreement gate decide."""
    primary = metrics.get(primary_name)
    decision = Decision(primary.status if primary else Status.INCONCLUSIVE, [c.describe() for c in collapse.broken])
    for name, judgement in metrics.items():
        if name != primary_name and judgement.status in FAILING:
            decision.findings.append(f"{name}: {judgement.status}: {metric_sentence(judgement)}")
            decision.status = worst([decision.status, judgement.status])
    if agreement:
        if agreement.status in FAILING:
            decision.findings.append(agreement.sentence)
            decision.status = worst([decision.status, agreement.status])
        elif (agreement.status == Status.PASS and decision.status == Status.INCONCLUSIVE and primary
              and primary.allowed_loss is None):
            # the reference scores 0, so its metric cannot speak; the opted-in agreement gate can
            decision.status, decision.decided_by_agreement = Status.PASS, True
    if collapse.broken:
        decision.status = Status.BROKEN
    return decision
