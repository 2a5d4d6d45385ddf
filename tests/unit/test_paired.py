"""Paired statistics against scipy and against cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from omnicheck.compare.paired import (
    _tango_statistic,
    bootstrap_interval,
    compare_metric,
    mcnemar,
    mcnemar_p,
    one_sided_flip_p,
    paired_binary_interval,
)
from omnicheck.types import Metric

ACCURACY = Metric("exact_match", higher_is_better=True, kind="binary")
WER = Metric("wer", higher_is_better=False, kind="continuous")
SIMILARITY = Metric("similarity", higher_is_better=True, kind="continuous")


@pytest.mark.parametrize(
    "regressed, improved",
    [(0, 0), (0, 1), (1, 0), (0, 5), (3, 9), (9, 3), (7, 7), (12, 30), (45, 0), (600, 700), (1100, 1000)],
)
def test_mcnemar_p_matches_scipy_binomtest(regressed, improved):
    expected = 1.0 if regressed + improved == 0 else stats.binomtest(regressed, regressed + improved, 0.5).pvalue
    assert mcnemar_p(regressed, improved) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_p_hand_computed():
    assert mcnemar_p(0, 5) == pytest.approx(2 / 32, rel=1e-12)  # both tails of Bin(5, 1/2) at 0 and 5
    assert mcnemar_p(1, 9) == pytest.approx(2 * (1 + 10) / 1024, rel=1e-12)
    assert mcnemar_p(4, 4) == 1.0
    with pytest.raises(ValueError):
        mcnemar_p(-1, 2)


@pytest.mark.parametrize("more, fewer", [(5, 0), (6, 0), (10, 3), (3, 10), (0, 0), (250, 200)])
def test_one_sided_p_matches_scipy(more, fewer):
    expected = 1.0 if more + fewer == 0 else stats.binomtest(more, more + fewer, 0.5, alternative="greater").pvalue
    assert one_sided_flip_p(more, fewer) == pytest.approx(expected, rel=1e-9)


def test_mcnemar_counts_flips_both_ways():
    reference = [1, 1, 1, 0, 0, 1, 0, 1]
    variant = [1, 0, 0, 1, 0, 1, 0, 0]
    result = mcnemar(reference, variant)
    assert (result.regressed, result.improved, result.n) == (3, 1, 8)
    assert result.p_value == pytest.approx(stats.binomtest(1, 4, 0.5).pvalue)


def test_binary_scores_must_be_zero_or_one():
    with pytest.raises(ValueError, match="0 or 1"):
        mcnemar([1, 0.5], [1, 1])
    assert mcnemar([True, False], [1.0, 0.0]).discordant == 0


def test_tango_statistic_at_zero_is_mcnemars():
    # at delta = 0 Tango's score statistic reduces to McNemar's (c - b) / sqrt(b + c)
    for regressed, improved, n in [(5, 3, 50), (9, 2, 40), (30, 12, 200)]:
        assert _tango_statistic(0.0, improved, regressed, n) == pytest.approx((improved - regressed) / math.sqrt(improved + regressed))


@pytest.mark.parametrize("n", [3, 10, 50, 300, 1319])
@pytest.mark.parametrize("level", [0.90, 0.95])
def test_interval_with_no_flips_has_its_closed_form_width(n, level):
    # with no discordant pairs the score equation n*d/(1-d) = z^2 gives d = z^2 / (n + z^2)
    z = stats.norm.ppf(0.5 + level / 2)
    half = z * z / (n + z * z)
    lo, hi = paired_binary_interval(0, 0, n, level)
    assert lo == pytest.approx(-half, abs=1e-9)
    assert hi == pytest.approx(half, abs=1e-9)


@pytest.mark.parametrize("n", [5, 10, 40])
def test_interval_when_every_sample_regressed(n):
    # all n pairs regressed: the upper bound solves n(1+d)/(1-d) = z^2, i.e. d = -(n - z^2)/(n + z^2)
    z = stats.norm.ppf(0.95)
    lo, hi = paired_binary_interval(n, 0, n, 0.90)
    assert lo == -1.0
    assert hi == pytest.approx(-(n - z * z) / (n + z * z), abs=1e-9)


def test_interval_covers_at_its_nominal_rate():
    # 2000 simulated panels of 100 paired answers, 10% regress and 5% improve: true difference -0.05
    rng = np.random.default_rng(20261123)
    n, p_regress, p_improve, level = 100, 0.10, 0.05, 0.90
    flips = rng.multinomial(n, [p_regress, p_improve, 1 - p_regress - p_improve], size=2000)
    covered = 0
    for regressed, improved, _ in flips:
        lo, hi = paired_binary_interval(int(regressed), int(improved), n, level)
        covered += lo <= p_improve - p_regress <= hi
    assert 0.87 <= covered / len(flips) <= 0.94


def test_interval_contains_the_estimate_and_widens_with_level():
    for regressed, improved, n in [(5, 3, 50), (0, 4, 20), (45, 0, 200), (26, 20, 1319)]:
        estimate = (improved - regressed) / n
        lo90, hi90 = paired_binary_interval(regressed, improved, n, 0.90)
        lo95, hi95 = paired_binary_interval(regressed, improved, n, 0.95)
        assert lo95 <= lo90 <= estimate <= hi90 <= hi95
    with pytest.raises(ValueError):
        paired_binary_interval(6, 6, 10, 0.9)


def test_bootstrap_is_seeded_and_reproducible():
    diffs = np.random.default_rng(1).normal(-0.02, 0.1, size=80)
    first = bootstrap_interval(diffs, 0.90, resamples=1000, seed=7)
    assert bootstrap_interval(diffs, 0.90, resamples=1000, seed=7) == first
    assert bootstrap_interval(diffs, 0.90, resamples=1000, seed=8) != first


def test_bootstrap_agrees_with_the_t_interval_on_normal_differences():
    diffs = np.random.default_rng(2).normal(0.03, 0.2, size=400)
    lo, hi = bootstrap_interval(diffs, 0.90, resamples=4000, seed=0)
    t_lo, t_hi = stats.t.interval(0.90, len(diffs) - 1, loc=diffs.mean(), scale=stats.sem(diffs))
    assert lo == pytest.approx(t_lo, abs=0.004)
    assert hi == pytest.approx(t_hi, abs=0.004)


def test_bootstrap_of_identical_scores_is_a_point_and_large_n_is_chunked():
    assert bootstrap_interval([0.0] * 30, 0.9, resamples=200) == (0.0, 0.0)
    big = np.random.default_rng(3).normal(size=20_000)  # 20k x 500 resamples: several chunks of indices
    lo, hi = bootstrap_interval(big, 0.9, resamples=500, seed=0)
    assert lo < big.mean() < hi and hi - lo < 0.05


def test_lower_is_better_metric_is_judged_on_the_absolute_difference():
    reference = [0.0, 0.0, 0.1, 0.05, 0.0, 0.2]
    variant = [0.1, 0.0, 0.1, 0.05, 0.05, 0.2]
    result = compare_metric(reference, variant, WER, resamples=500)
    assert result.difference == pytest.approx(0.025)
    assert result.loss == pytest.approx(0.025)  # WER went up: that is a loss
    assert result.loss_interval[0] <= result.loss <= result.loss_interval[1]
    assert result.retention is None  # never a ratio for lower-is-better metrics
    assert (result.worse, result.better) == (2, 0)


def test_retention_for_higher_is_better_metrics_and_its_guard():
    result = compare_metric([1, 1, 1, 1, 0, 1, 0, 1, 1, 1], [1, 0, 1, 1, 0, 1, 0, 1, 1, 1], ACCURACY)
    assert result.retention == pytest.approx(7 / 8)
    lo, hi = result.retention_interval
    assert 0.0 <= lo < 7 / 8 < hi
    assert result.loss == pytest.approx(0.1)
    assert result.p_value == 1.0 and result.worse == 1 and result.better == 0
    at_zero = compare_metric([0, 0, 0], [0, 1, 0], ACCURACY)
    assert at_zero.retention is None and at_zero.retention_interval is None


def test_continuous_higher_is_better_direction():
    result = compare_metric([0.6, 0.7, 0.5], [0.5, 0.7, 0.55], SIMILARITY, resamples=300)
    assert result.difference == pytest.approx(-0.05 / 3)
    assert result.loss == pytest.approx(0.05 / 3)
    assert (result.worse, result.better) == (1, 1)
    assert result.p_value is None and "bootstrap" in result.method


def test_mismatched_lengths_and_empty_input_are_refused():
    with pytest.raises(ValueError, match="length"):
        compare_metric([1, 0], [1], ACCURACY)
    with pytest.raises(ValueError, match="no paired"):
        compare_metric([], [], SIMILARITY)
