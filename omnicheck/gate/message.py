"""The verdict's sentences: the whole story in words (metric, reference, variant, difference, interval,
threshold, flips, collapse, agreement), so a reader never needs the numbers table to know why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

from omnicheck.compare.collapse import ANY_OUTPUT
from omnicheck.compare.paired import one_sided_flip_p

if TYPE_CHECKING:
    from omnicheck.compare.agreement import AgreementSummary
    from omnicheck.gate.decision import AgreementJudgement, CollapseDecision, Decision, MetricJudgement
    from omnicheck.gate.settings import GateSettings

# what one verdict's own-output counts are called in the reference's message
_OWN_OUTPUT_WORDS = (("empty", "empty"), ("loop", "looping"), ("garbled", "garbled"), ("media_ignored", "ignoring the media"))


def num(x: float) -> str:
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"


def signed(x: float) -> str:
    return ("+" if x >= 0 else "-") + num(abs(x))


def metric_sentence(j: "MetricJudgement") -> str:
    c = j.comparison
    lo, hi = c.interval
    text = (
        f"{c.metric} {num(c.reference_mean)} (reference) vs {num(c.variant_mean)} (variant), "
        f"difference {signed(c.difference)}, {c.level:.0%} interval [{signed(lo)}, {signed(hi)}]"
    )
    if j.threshold_kind == "min_retention":
        if c.retention_interval:
            rlo, rhi = c.retention_interval
            text += f", retention {c.retention:.3f} [{rlo:.3f}, {rhi:.3f}] against the {j.threshold:.2f} threshold"
        else:
            text += f", retention undefined against the {j.threshold:.2f} threshold"
    elif j.threshold_kind == "max_drop":
        text += f", allowed drop {num(j.threshold)}"
    else:
        text += f", allowed increase {num(j.threshold)}"
    if c.kind == "binary":
        text += (f"; {c.worse} samples flipped worse, {c.better} better (exact McNemar p={c.p_value:.3g}, "
                 f"one-sided {one_sided_flip_p(c.worse, c.better):.3g}, which decides)")
    else:
        text += f"; worse on {c.worse}, better on {c.better}"
    return f"{text}; n={c.n}: {j.status} ({j.why})"


def agreement_sentence(mean_similarity: float, identical_share: float) -> str:
    return f"agreement with the reference's outputs: word F1 {mean_similarity:.2f}, {identical_share:.0%} identical"


def verdict_message(
    probe: str,
    variant: str,
    primary_name: str,
    primary: "MetricJudgement | None",
    collapse: "CollapseDecision",
    agreement: "AgreementJudgement | None",
    agree: "AgreementSummary",
    decision: "Decision",
    unpaired: Mapping[str, Sequence[str]],
    gate: "GateSettings",
) -> str:
    """'<probe> on <variant>: ' then, joined by '; ': the collapse shown, the primary metric, a collapse suspected,
    the agreement, the samples left out."""
    parts = []
    if collapse.broken:
        shown = max(collapse.broken, key=lambda c: (c.detector != ANY_OUTPUT, c.excess))
        parts.append(f"outputs collapsed: {shown.describe()}")
    if primary:
        parts.append(metric_sentence(primary))
    else:
        parts.append(f"no paired scores for the primary metric {primary_name!r}")
    if collapse.unsure and not collapse.broken:
        suspected = max(collapse.unsure, key=lambda c: c.excess)
        parts.append(f"collapse suspected but not shown at {gate.confidence:.0%} confidence: {suspected.describe()}")
    if agreement and (decision.decided_by_agreement or agreement.status in ("DEGRADED", "BROKEN")):
        parts.append(agreement.sentence + (" (decides, as the metric cannot)" if decision.decided_by_agreement else ""))
    else:
        parts.append(agreement_sentence(agree.mean_similarity, agree.identical_share))
    if unpaired["reference_only"] or unpaired["variant_only"]:
        parts.append(
            f"{len(unpaired['reference_only'])} reference-only and {len(unpaired['variant_only'])} variant-only samples left out"
        )
    return f"{probe} on {variant}: " + "; ".join(parts)


def own_outputs_sentence(counts: Mapping[str, int]) -> str:
    """The reference's own collapsed outputs, e.g. '0 empty, 1 looping, 0 garbled, 0 ignoring the media'."""
    return ", ".join(f"{counts[d]} {label}" for d, label in _OWN_OUTPUT_WORDS)
