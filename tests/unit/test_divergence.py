"""Teacher-forced divergence math (omnicheck.compare.divergence), checked against KL computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from omnicheck.compare.divergence import contrast, position_kl, sample_divergence, summarize
from omnicheck.tokens import TokenScores


def _full_kl(p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    return float(np.sum(p * np.log(p / q)))


def test_kl_over_the_whole_support_is_the_textbook_kl():
    p = np.array([0.6, 0.3, 0.1])
    q = np.array([0.5, 0.25, 0.25])
    got = position_kl(np.log(p)[None], np.log(q)[None])
    assert got[0] == pytest.approx(_full_kl(p, q), rel=1e-9)


def test_the_tail_is_one_bucket_and_the_result_bounds_the_full_kl_from_below():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.dirichlet(np.ones(40) * 0.3)
        q = rng.dirichlet(np.ones(40) * 0.3)
        top = np.argsort(-p)[:5]
        bucketed = position_kl(np.log(p[top])[None], np.log(q[top])[None])[0]
        p_tail, q_tail = 1 - p[top].sum(), 1 - q[top].sum()
        by_hand = _full_kl(p[top], q[top]) + p_tail * math.log(p_tail / q_tail)
        assert bucketed == pytest.approx(by_hand, rel=1e-9)
        assert bucketed <= _full_kl(p, q) + 1e-12


def test_unknown_variant_probabilities_join_the_tail_on_both_sides():
    p = np.array([0.5, 0.3, 0.1])  # tail 0.1
    with_unknown = position_kl(np.log(p)[None], np.array([[math.log(0.4), math.nan, math.log(0.3)]]))[0]
    merged_p, merged_q = [0.5, 0.1, 0.4], [0.4, 0.3, 0.3]  # the 2nd token joins the tail
    assert with_unknown == pytest.approx(_full_kl(merged_p, merged_q), rel=1e-9)


def test_identical_distributions_give_zero_and_never_a_negative():
    p = np.log(np.array([[0.7, 0.2], [0.99, 0.001]]))
    assert np.all(position_kl(p, p) == 0.0)


def test_a_variant_that_gives_a_token_no_mass_stays_finite():
    ref = np.log(np.array([[0.9, 0.05]]))
    var = np.array([[-np.inf, math.log(0.5)]])
    value = position_kl(ref, var)[0]
    assert math.isfinite(value) and value > 10


def _scores(top_ids, top_probs, answer, token_probs, gathered=None):
    return TokenScores(token_ids=answer, tokens=[str(t) for t in answer], top_ids=top_ids,
                       top_logprobs=np.log(top_probs).tolist(), token_logprobs=np.log(token_probs).tolist(),
                       gathered=None if gathered is None else np.log(gathered).tolist())


def test_per_sample_agreement_first_divergence_and_loglik():
    reference = _scores([[5, 6], [7, 8], [1, 2]], [[0.8, 0.1], [0.6, 0.3], [0.9, 0.05]], [5, 7], [0.8, 0.6])
    # the variant agrees at position 0, prefers token 8 at position 1, agrees at the end
    variant = _scores([[5, 6], [8, 7], [1, 2]], [[0.7, 0.2], [0.5, 0.4], [0.9, 0.05]], [5, 7], [0.7, 0.4],
                      gathered=[[0.7, 0.2], [0.4, 0.5], [0.9, 0.05]])
    d = sample_divergence("s", reference, variant)
    assert d.agree == [True, False, True]
    assert d.first_divergence == 1
    assert d.agreement == pytest.approx(2 / 3)
    assert d.variant_loglik == pytest.approx(math.log(0.7) + math.log(0.4))
    assert d.loglik_per_token == pytest.approx((math.log(0.7 * 0.4) - math.log(0.8 * 0.6)) / 2)
    assert d.kl[2] == pytest.approx(0.0, abs=1e-12)
    assert d.kl[1] > d.kl[0] > 0


def test_a_variant_scored_on_other_tokens_is_refused():
    reference = _scores([[5], [7]], [[0.8], [0.6]], [5], [0.8])
    variant = _scores([[5], [7]], [[0.8], [0.6]], [6], [0.8], gathered=[[0.8], [0.6]])
    with pytest.raises(ValueError, match="other tokens"):
        sample_divergence("s", reference, variant)


def test_summary_interval_covers_the_mean_and_counts_identical_samples():
    reference = _scores([[5], [7]], [[0.8], [0.6]], [5], [0.8])
    same = sample_divergence("a", reference, _scores([[5], [7]], [[0.8], [0.6]], [5], [0.8], gathered=[[0.8], [0.6]]))
    moved = sample_divergence("b", reference, _scores([[6], [7]], [[0.5], [0.6]], [5], [0.3], gathered=[[0.3], [0.6]]))
    summary = summarize([same, moved, same, moved], level=0.9, resamples=500)
    assert summary.identical == 2
    assert summary.kl_interval[0] <= summary.kl_mean <= summary.kl_interval[1]
    assert summary.agreement == pytest.approx(0.75)
    assert summary.loglik_delta < 0


def test_contrast_says_larger_only_when_the_interval_excludes_no_difference():
    rng = np.random.default_rng(1)
    text = rng.uniform(0.001, 0.002, 12)
    media = rng.uniform(0.05, 0.08, 12)
    big = contrast("image", media, text, level=0.9, resamples=1000)
    assert big.decided == "larger"
    assert 20 < big.ratio < 80 and big.ratio_interval[0] > 10
    assert big.sentence().startswith("image tokens diverge")
    alike = contrast("audio", rng.uniform(0.001, 0.002, 12), text, level=0.9, resamples=1000)
    assert alike.decided == "alike" and "nothing specific to audio" in alike.sentence()


def test_contrast_against_text_at_zero_uses_the_floor():
    got = contrast("video", [0.1, 0.12, 0.11], [0.0, 0.0, 0.0], floor=1e-4, resamples=200)
    assert got.denominator == pytest.approx(1e-4)
    assert got.ratio == pytest.approx(1100, rel=0.01)
    assert "noise floor" in got.sentence()
