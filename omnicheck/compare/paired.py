"""Paired statistics: one variant against its reference on the same samples.

Binary metrics (0/1 per sample): flips both ways, exact McNemar test, and Tango's score interval for the
paired difference of proportions (it stays honest with few samples and with no flips at all, where a bootstrap
would collapse to a zero-width interval). Continuous metrics: a seeded paired bootstrap of the mean difference.

Differences are always variant - reference in the metric's own units. Whether that is good or bad depends on
the metric's direction; `PairedComparison.loss` turns it into "how much worse" (positive = worse) so callers
never gate a lower-is-better metric (WER) through a ratio. Pure Python + numpy; no scipy at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

import numpy as np

from omnicheck.types import Metric

DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class McNemar:
    regressed: int  # reference right, variant wrong
    improved: int  # reference wrong, variant right
    n: int
    p_value: float  # exact, two-sided, binomial on the discordant pairs

    @property
    def discordant(self) -> int:
        return self.regressed + self.improved


@dataclass(frozen=True)
class PairedComparison:
    metric: str
    kind: str  # "binary" | "continuous"
    higher_is_better: bool
    n: int
    reference_mean: float
    variant_mean: float
    difference: float  # variant - reference
    interval: tuple[float, float]  # of `difference`, two-sided at `level`
    level: float
    worse: int  # samples where the variant scored worse than the reference (direction-aware)
    better: int
    p_value: float | None  # exact McNemar for binary metrics; None for continuous ones
    method: str  # how the interval was made, in words

    @property
    def loss(self) -> float:
        """How much worse the variant is, in metric units: positive = worse, whatever the direction."""
        return -self.difference if self.higher_is_better else self.difference

    @property
    def loss_interval(self) -> tuple[float, float]:
        lo, hi = self.interval
        return (-hi, -lo) if self.higher_is_better else (lo, hi)

    @property
    def retention(self) -> float | None:
        """variant / reference for higher-is-better metrics; None where undefined (reference 0, or lower-is-better)."""
        if not self.higher_is_better or self.reference_mean <= 0:
            return None
        return self.variant_mean / self.reference_mean

    @property
    def retention_interval(self) -> tuple[float, float] | None:
        """1 + interval / reference: the reference mean is the fixed yardstick the retention threshold is set on."""
        if self.retention is None:
            return None
        lo, hi = self.interval
        low = 1.0 + lo / self.reference_mean
        if self.kind == "binary":
            low = max(0.0, low)  # a share of right answers cannot fall below none
        return (low, 1.0 + hi / self.reference_mean)


# --- exact binomial tails on discordant pairs ---


def _binomial_half_cdf(k: int, m: int) -> float:
    """P(X <= k) for X ~ Binomial(m, 1/2), summed in log space so any m works without overflow."""
    if k < 0:
        return 0.0
    if k >= m:
        return 1.0
    log_terms = [math.lgamma(m + 1) - math.lgamma(i + 1) - math.lgamma(m - i + 1) - m * math.log(2.0) for i in range(k + 1)]
    top = max(log_terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in log_terms))


def mcnemar_p(regressed: int, improved: int) -> float:
    """Exact two-sided McNemar p-value: binomial test of regressed vs improved flips at p = 1/2."""
    if regressed < 0 or improved < 0:
        raise ValueError(f"flip counts must be >= 0, got {regressed}, {improved}")
    m = regressed + improved
    if m == 0:
        return 1.0
    return min(1.0, 2.0 * _binomial_half_cdf(min(regressed, improved), m))


def one_sided_flip_p(more: int, fewer: int) -> float:
    """Exact one-sided p-value that flips toward `more` are not just luck: P(X >= more), X ~ Bin(more+fewer, 1/2)."""
    m = more + fewer
    if m == 0:
        return 1.0
    return 1.0 - _binomial_half_cdf(more - 1, m)


def mcnemar(reference: Sequence[float], variant: Sequence[float]) -> McNemar:
    ref, var = _binary(reference, "reference"), _binary(variant, "variant")
    _same_length(ref, var)
    regressed = sum(1 for r, v in zip(ref, var) if r == 1 and v == 0)
    improved = sum(1 for r, v in zip(ref, var) if r == 0 and v == 1)
    return McNemar(regressed, improved, len(ref), mcnemar_p(regressed, improved))


# --- intervals ---


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _tango_statistic(delta: float, gained: int, lost: int, n: int) -> float:
    """Tango (1998) score statistic for the paired difference delta = p(variant) - p(reference).

    gained: pairs (variant 1, reference 0); lost: pairs (variant 0, reference 1). The nuisance parameter
    P(variant 0, reference 1) is replaced by its maximum-likelihood value under the hypothesised delta.
    """
    a = 2.0 * n
    b = -gained - lost + (2.0 * n - gained + lost) * delta
    c = -lost * delta * (1.0 - delta)
    p_lost = (math.sqrt(max(b * b - 4.0 * a * c, 0.0)) - b) / (2.0 * a)
    variance = n * (2.0 * p_lost + delta * (1.0 - delta))
    numerator = gained - lost - n * delta
    if variance <= 1e-15:
        return 0.0 if abs(numerator) < 1e-12 else math.copysign(math.inf, numerator)
    return numerator / math.sqrt(variance)


def paired_binary_interval(regressed: int, improved: int, n: int, level: float) -> tuple[float, float]:
    """Tango's score interval for p(variant) - p(reference) from flip counts on n paired 0/1 samples.

    With no flips it is still as wide as n demands (n=3: about +-0.5 at 90%), which is what keeps a handful
    of identical answers from passing.
    """
    if n <= 0:
        raise ValueError("no paired samples")
    if regressed + improved > n:
        raise ValueError(f"{regressed}+{improved} flips among only {n} samples")
    z = _z(level)
    estimate = (improved - regressed) / n

    def crossing(target: float, inside: float, outside: float) -> float:
        # the statistic decreases in delta: bisect between a point inside the interval and the edge
        if abs(_tango_statistic(outside, improved, regressed, n)) <= z:
            return outside
        for _ in range(200):
            mid = (inside + outside) / 2.0
            value = _tango_statistic(mid, improved, regressed, n)
            if (value > target) == (target > 0):
                outside = mid
            else:
                inside = mid
            if abs(outside - inside) < 1e-12:
                break
        return (inside + outside) / 2.0

    lower = crossing(z, estimate, -1.0)
    upper = crossing(-z, estimate, 1.0)
    return (max(-1.0, lower), min(1.0, upper))


def bootstrap_interval(
    differences: Sequence[float], level: float, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of paired differences, reproducible for a given seed."""
    diffs = np.asarray(differences, dtype=float)
    if diffs.size == 0:
        raise ValueError("no paired samples")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    _z(level)
    rng = np.random.default_rng(seed)
    n = diffs.size
    chunk = max(1, 4_000_000 // n)  # bound memory: chunk x n indices at a time
    means = np.empty(resamples)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        means[start:stop] = diffs[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    alpha = 1.0 - level
    lo, hi = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return (float(lo), float(hi))


# --- one metric, both kinds ---


def compare_metric(
    reference: Sequence[float],
    variant: Sequence[float],
    metric: Metric,
    *,
    level: float = 0.90,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """Compare paired per-sample scores (same order, same samples) of one metric."""
    _same_length(reference, variant)
    n = len(reference)
    if n == 0:
        raise ValueError(f"no paired samples for metric {metric.name!r}")
    ref = np.asarray(reference, dtype=float)
    var = np.asarray(variant, dtype=float)
    diffs = var - ref
    worse = int(np.sum(diffs < 0) if metric.higher_is_better else np.sum(diffs > 0))
    better = int(np.sum(diffs > 0) if metric.higher_is_better else np.sum(diffs < 0))
    if metric.kind == "binary":
        test = mcnemar(reference, variant)
        interval = paired_binary_interval(test.regressed, test.improved, n, level)
        p_value: float | None = test.p_value
        method = "Tango score interval, exact McNemar test"
    elif metric.kind == "continuous":
        interval = bootstrap_interval(diffs, level, resamples, seed)
        p_value = None
        method = f"paired bootstrap, {resamples} resamples, seed {seed}"
    else:
        raise ValueError(f"metric {metric.name!r} has unknown kind {metric.kind!r}")
    return PairedComparison(
        metric=metric.name,
        kind=metric.kind,
        higher_is_better=metric.higher_is_better,
        n=n,
        reference_mean=float(ref.mean()),
        variant_mean=float(var.mean()),
        difference=float(diffs.mean()),
        interval=interval,
        level=level,
        worse=worse,
        better=better,
        p_value=p_value,
        method=method,
    )


def _binary(values: Sequence[float], which: str) -> list[int]:
    out = []
    for value in values:
        if value not in (0, 1):  # True/False and 0.0/1.0 compare equal to 0/1
            raise ValueError(f"binary metric has a {which} score {value!r}; binary scores must be 0 or 1")
        out.append(int(value))
    return out


def _same_length(a: Sequence[float], b: Sequence[float]) -> None:
    if len(a) != len(b):
        raise ValueError(f"paired scores differ in length: {len(a)} reference vs {len(b)} variant")
