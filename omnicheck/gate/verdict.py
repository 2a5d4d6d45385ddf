"""judge(): the verdict for one variant on one probe, as a short sequence of named steps."""

from __future__ import annotations

from typing import Any, Mapping

from omnicheck.compare.agreement import agreement_summary
from omnicheck.compare.caveats import reference_near_chance, skipped_samples, skipped_sentence
from omnicheck.compare.collapse import ANY_OUTPUT, scan
from omnicheck.config import Settings, Thresholds
from omnicheck.gate.decision import (
    Decision,
    MetricJudgement,
    Pairing,
    decide,
    finite,
    judge_agreement,
    judge_collapse,
    judge_metrics,
    pair_samples,
)
from omnicheck.gate.divergence import collapsed_samples, decide_with_divergence, judge_divergence
from omnicheck.gate.message import num, own_outputs_sentence, verdict_message
from omnicheck.gate.settings import GateSettings, gate_settings
from omnicheck.types import DecidedBy, ProbeResult, Status, Verdict

UNQUANTIZED_ACTIVATIONS = (
    "this activation-quantized checkpoint ran with its activations unquantized, so this verdict does not "
    "describe deployment where activations are quantized (e.g. on FP4 hardware)"
)


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
    gate = gate_settings(thresholds, variant.probe, variant.modality, confidence=confidence, resamples=resamples,
                         seed=seed)
    if variant.probe != reference.probe:
        raise ValueError(f"cannot judge probe {variant.probe!r} against the reference's {reference.probe!r}")
    if variant is reference or variant.variant == reference.variant:
        return reference_verdict(reference, language, gate)
    if variant.status != "ok" or reference.status != "ok":
        return _not_run_verdict(reference, variant)
    pairing = pair_samples(reference, variant)
    if not pairing.shared:
        return _unpaired_verdict(variant, pairing, gate)

    metrics = judge_metrics(reference, pairing, gate)
    collapse = judge_collapse(reference, variant, gate, language)
    agree = agreement_summary(reference, variant)
    agreement = judge_agreement(agree, pairing.shared, gate)
    primary_name = reference.primary.name
    decision = decide(primary_name, metrics, collapse, agreement)
    divergence = judge_divergence(
        pairing.reference, pairing.variant, pairing.shared,
        collapsed_samples(reference, variant, pairing.shared, language), gate.thresholds, gate.level, gate.resamples,
        gate.seed, unavailable=str((variant.info.get("divergence") or {}).get("reason", "")))
    decided_by = decide_with_divergence(decision, divergence, collapse, metrics)
    decision.findings += card_findings(card)
    message = verdict_message(variant.probe, variant.variant, primary_name, metrics.get(primary_name), collapse,
                              agreement, agree, decision, pairing.unpaired, gate)
    message += "; " + divergence.sentence + (" (decides, as the task scores cannot)" if decided_by == DecidedBy.DIVERGENCE else "")
    details = {
        **_base_details(pairing, gate),
        "divergence": divergence.details,
        "decided_by": decided_by.value,
        "collapse": collapse.to_json(gate.thresholds.collapse_rate),
        "agreement": {**agree.to_json(), **(agreement.to_json() if agreement else {})},
        "metrics": {name: j.to_json() for name, j in metrics.items()},
        "thresholds": dict(vars(gate.thresholds)),
    }
    caveats = verdict_caveats(reference, [reference, variant], gate, details)
    decision.findings += caveats
    message = "; ".join([message, *caveats])
    return _judged_verdict(variant, primary_name, metrics.get(primary_name), decision, message, details, pairing)


def card_findings(card: Mapping[str, Any] | None) -> list[str]:
    """What the quant card adds to every verdict of its variant."""
    if card and card.get("activation_quantized") is True and card.get("activations_ran_quantized") is False:
        return [UNQUANTIZED_ACTIVATIONS]
    return []


def verdict_caveats(reference: ProbeResult, results: list[ProbeResult], gate: GateSettings,
                    details: dict[str, Any]) -> list[str]:
    """What limits the verdict, kept apart from deciding it: the reference near chance (the probe then measured
    agreement only), samples skipped for unreadable media. Recorded in details too; the status is unchanged."""
    metric = reference.primary if reference.metrics else None
    t = gate.thresholds
    broken = t.broken_drop if metric is None or metric.higher_is_better else t.broken_increase
    near_chance = reference_near_chance(reference, broken, gate.alpha) if metric else None
    skipped = skipped_samples(results)
    details["reference_near_chance"] = near_chance is not None
    details["skipped_samples"] = skipped
    return [line for line in (near_chance, skipped_sentence(skipped)) if line]


def _base_details(pairing: Pairing, gate: GateSettings) -> dict[str, Any]:
    return {"confidence": gate.confidence, "level": gate.level, "unpaired": pairing.unpaired}


def _unpaired_verdict(variant: ProbeResult, pairing: Pairing, gate: GateSettings) -> Verdict:
    return Verdict(
        variant=variant.variant, probe=variant.probe, modality=variant.modality,
        status=Status.INCONCLUSIVE,
        message=f"{variant.probe} on {variant.variant}: the variant and the reference share no samples (ids differ)",
        details=_base_details(pairing, gate),
    )


def _judged_verdict(variant: ProbeResult, primary_name: str, primary: MetricJudgement | None, decision: Decision,
                    message: str, details: dict[str, Any], pairing: Pairing) -> Verdict:
    """The verdict with the primary metric's figures in its fields (and its test's details), when it has any."""
    c = primary.comparison if primary else None
    if primary and c:
        details.update(
            threshold_kind=primary.threshold_kind,
            retention_interval=list(c.retention_interval) if c.retention_interval else None,
            p_value=c.p_value,
            method=c.method,
            worse=c.worse,
            better=c.better,
        )
    return Verdict(
        variant=variant.variant,
        probe=variant.probe,
        modality=variant.modality,
        status=decision.status,
        message=message,
        metric=primary_name,
        reference_value=c.reference_mean if c else None,
        variant_value=c.variant_mean if c else None,
        difference=c.difference if c else None,
        interval=c.interval if c else None,
        threshold=primary.threshold if primary else None,
        retention=c.retention if c else None,
        n=c.n if c else len(pairing.shared),
        findings=decision.findings,
        details=details,
    )


def _not_run_status(result: ProbeResult) -> Status:
    return Status.ERROR if result.status == "error" else Status.SKIPPED


def _not_run_verdict(reference: ProbeResult, variant: ProbeResult) -> Verdict:
    """The variant, or else the reference, did not run this probe: ERROR or SKIPPED, with the reason."""
    base = dict(variant=variant.variant, probe=variant.probe, modality=variant.modality)
    if variant.status != "ok":
        return Verdict(**base, status=_not_run_status(variant), message=f"{variant.probe} on {variant.variant}: {variant.reason}")
    status = _not_run_status(reference)
    what = "failed" if status == Status.ERROR else "was skipped"
    return Verdict(
        **base,
        status=status,
        message=f"the reference {reference.variant} {what} on {reference.probe}, so there is nothing to compare against: {reference.reason}",
    )


def reference_verdict(reference: ProbeResult, language: str, gate: GateSettings | None = None) -> Verdict:
    """REFERENCE: the reference's own score and how many of its own outputs collapse."""
    base = dict(variant=reference.variant, probe=reference.probe, modality=reference.modality)
    if reference.status != "ok":
        return Verdict(**base, status=_not_run_status(reference),
                       message=f"{reference.probe} on the reference {reference.variant}: {reference.reason}")
    metric = reference.primary
    values = [s.scores[metric.name] for s in reference.samples if finite(s.scores.get(metric.name))]
    mean = sum(values) / len(values) if values else None
    counts = scan(reference, language=language).counts()
    n = len(reference.samples)
    value = f"{metric.name} {num(mean)}" if mean is not None else f"no {metric.name} scores"
    details: dict[str, Any] = {"collapse_counts": counts}
    findings = verdict_caveats(reference, [reference], gate or gate_settings(None, reference.probe, reference.modality),
                               details)
    if n and counts[ANY_OUTPUT] / n >= 0.5:
        findings.append(
            f"the reference's own outputs collapse on {counts[ANY_OUTPUT]} of {n} samples: this probe cannot show a variant's collapse"
        )
    return Verdict(
        **base,
        status=Status.REFERENCE,
        message=(f"{reference.probe} on {reference.variant} (the reference): {value} over {n} samples; "
                 f"its own outputs: {own_outputs_sentence(counts)}"),
        metric=metric.name,
        reference_value=mean,
        variant_value=mean,
        n=len(values),
        findings=findings,
        details=details,
    )
