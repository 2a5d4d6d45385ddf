"""What limits what a verdict can say, in words: a reference that cannot do the probe itself, and samples left
out because their media could not be read. Pure functions of the probe results; the gate adds the sentences."""

from __future__ import annotations

import math
from typing import Sequence

from omnicheck.compare.paired import one_sided_flip_p
from omnicheck.types import Metric, ProbeResult


def reference_near_chance(reference: ProbeResult, broken_loss: float, alpha: float) -> str | None:
    """A sentence when the reference's own score on the probe's primary metric is so close to chance that a
    variant at chance could not be shown BROKEN by that metric; None when it is not, or chance is unknown.

    Chance is what the reference scores with the media blanked (its counterfactual run) where there is one, else
    what an answer carrying no information scores (`Metric.chance`, e.g. WER 1 for an empty transcript). For a
    continuous metric "too close" means less headroom than `broken_loss` (the gate's broken_drop or
    broken_increase); for a 0/1 metric, so few passes above chance that losing every one of them would not
    reach one-sided significance at `alpha` (McNemar's exact test, which a verdict needs).
    """
    metric = reference.primary
    scores = reference.column(metric.name)
    values = [v for v in scores.values() if _finite(v)]
    if reference.status != "ok" or not values:
        return None
    mean = sum(values) / len(values)
    chance, source = _chance(reference, metric, scores)
    if chance is None:
        return None
    headroom = (mean - chance) if metric.higher_is_better else (chance - mean)
    if metric.kind == "binary":
        passes = round(headroom * len(values))
        if passes > 0 and one_sided_flip_p(passes, 0) < alpha:
            return None
        why = f"even a variant that lost all {max(passes, 0)} of them could not be shown worse"
    else:
        if headroom >= broken_loss:
            return None
        why = f"less than the {broken_loss:g} a loss must exceed to be BROKEN"
    return (
        f"the reference itself scores near chance on {reference.probe}: {metric.name} {mean:.3f} against "
        f"{chance:.3f} {source} ({why}), so this verdict measures agreement with the reference only, not whether "
        "the variant can do the task"
    )


def _chance(reference: ProbeResult, metric: Metric, scores: dict[str, float]) -> tuple[float | None, str]:
    blanked = {s.sample_id: s.scores.get(metric.name) for s in reference.counterfactual}
    paired = [v for sid, v in blanked.items() if sid in scores and _finite(v)]
    if paired:
        return sum(paired) / len(paired), "with the media blanked"
    if metric.chance is not None:
        return float(metric.chance), "for an empty answer"
    return None, ""


def skipped_samples(results: Sequence[ProbeResult]) -> list[dict[str, str]]:
    """Samples the probe left out (unreadable media), once each, from the results given."""
    seen: dict[str, dict[str, str]] = {}
    for result in results:
        for entry in result.info.get("skipped_samples", []):
            seen.setdefault(str(entry.get("id")), entry)
    return list(seen.values())


def skipped_sentence(skipped: Sequence[dict[str, str]]) -> str | None:
    if not skipped:
        return None
    first = skipped[0]
    return (f"{len(skipped)} sample{'s' if len(skipped) != 1 else ''} skipped because the media could not be read "
            f"(first: {first.get('id')}: {first.get('reason')})")


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
