"""Does divergence decide right, and sooner? Verdicts on random sample subsets of a large run, with and without
the teacher-forced divergence, against the truth the whole run's task scores give.

Truth per (variant, probe), from every sample's task scores (the primary metric's point estimate):
  kept      the loss is within the allowed loss        -> PASS or INCONCLUSIVE are right; DEGRADED/BROKEN are false
  lost      the loss is beyond the allowed loss         -> PASS is false (a false PASS)
  broken    the loss is beyond the broken level         -> PASS is false
A BROKEN where the truth is kept or only lost (not broken) is a false BROKEN.
Used by scripts/divergence_validation.py (docs/divergence.md) and tests/e2e/test_divergence_validation.py.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from omnicheck.types import ProbeResult

DIVERGENCE_KEYS = ("divergence", "divergence_floor")


def without_divergence(result: ProbeResult) -> ProbeResult:
    """The same result as if no divergence pass had run: what the gate saw before."""
    samples = [dataclasses.replace(s, extra={k: v for k, v in s.extra.items() if k not in DIVERGENCE_KEYS})
               for s in result.samples]
    info = {k: v for k, v in result.info.items() if k != "divergence"}
    return dataclasses.replace(result, samples=samples, info=info)


def subset(result: ProbeResult, ids: frozenset[str]) -> ProbeResult:
    return dataclasses.replace(result, samples=[s for s in result.samples if s.sample_id in ids],
                               counterfactual=[s for s in result.counterfactual if s.sample_id in ids])


@dataclass(frozen=True)
class Truth:
    kind: str  # kept | lost | broken
    loss: float  # primary metric, positive = worse, over all samples
    allowed: float
    broken: float
    n: int


def truth(reference: ProbeResult, variant: ProbeResult, settings: Any) -> Truth:
    from omnicheck import gate

    verdict = gate.judge(without_divergence(reference), without_divergence(variant), settings)
    metric = verdict.details["metrics"][verdict.metric]
    allowed = metric["allowed_loss"]
    thresholds = settings.thresholds_for(variant.probe, variant.modality)
    loss = -metric["difference"] if _higher_is_better(reference, verdict.metric) else metric["difference"]
    if metric["threshold_kind"] == "min_retention":
        broken = (1.0 - thresholds.broken_retention) * metric["reference"]
    elif metric["threshold_kind"] == "max_drop":
        broken = thresholds.broken_drop
    else:
        broken = thresholds.broken_increase
    kind = "broken" if loss > broken else "lost" if loss > allowed + 1e-12 else "kept"
    return Truth(kind, loss, allowed, broken, verdict.n)


def _higher_is_better(result: ProbeResult, metric: str) -> bool:
    return next(m.higher_is_better for m in result.metrics if m.name == metric)


def is_false(verdict: str, truth_kind: str) -> str | None:
    """'false PASS' / 'false BROKEN' / 'false DEGRADED' where the verdict contradicts the truth, else None."""
    if verdict == "PASS" and truth_kind != "kept":
        return "false PASS"
    if verdict == "BROKEN" and truth_kind != "broken":
        return "false BROKEN"
    if verdict == "DEGRADED" and truth_kind == "kept":
        return "false DEGRADED"
    return None


def is_right(verdict: str, truth_kind: str) -> bool:
    """A decided verdict that matches the truth (INCONCLUSIVE is never right, only honest)."""
    return {"kept": ("PASS",), "lost": ("DEGRADED", "BROKEN"), "broken": ("BROKEN",)}[truth_kind].count(verdict) > 0 \
        and is_false(verdict, truth_kind) is None


@dataclass
class SubsetRun:
    variant: str
    probe: str
    modality: str
    truth: Truth
    verdicts: dict[int, dict[str, Counter]] = field(default_factory=dict)  # n -> {"with"|"without": status counts}
    false: list[str] = field(default_factory=list)  # one line per false verdict

    def needed(self, which: str, share: float) -> int | None:
        """The smallest n at which at least `share` of the subsets reach the right decided verdict."""
        for n in sorted(self.verdicts):
            counts = self.verdicts[n][which]
            total = sum(counts.values())
            right = sum(c for status, c in counts.items() if is_right(status, self.truth.kind))
            if total and right / total >= share:
                return n
        return None


def subset_verdicts(reference: ProbeResult, variant: ProbeResult, settings: Any, sizes: Sequence[int],
                    subsets: int, seed: int = 0) -> SubsetRun:
    """Judge `subsets` random subsets of each size, with and without divergence."""
    from omnicheck import gate

    ids = [s.sample_id for s in variant.samples if s.sample_id in {r.sample_id for r in reference.samples}]
    run = SubsetRun(variant.variant, variant.probe, variant.modality, truth(reference, variant, settings))
    plain_reference, plain_variant = without_divergence(reference), without_divergence(variant)
    rng = random.Random(seed)
    for n in sizes:
        if n > len(ids):
            continue
        run.verdicts[n] = {"with": Counter(), "without": Counter()}
        for _ in range(subsets):
            chosen = frozenset(rng.sample(ids, n))
            for which, (ref, var) in (("with", (reference, variant)), ("without", (plain_reference, plain_variant))):
                verdict = gate.judge(subset(ref, chosen), subset(var, chosen), settings)
                run.verdicts[n][which][verdict.status] += 1
                wrong = is_false(verdict.status, run.truth.kind)
                if wrong:
                    decided = verdict.details.get("decided_by")
                    run.false.append(f"{variant.variant} {variant.probe} n={n} {which} divergence: {wrong} "
                                     f"(truth {run.truth.kind}, loss {run.truth.loss:+.3f}; decided by {decided})")
    return run
