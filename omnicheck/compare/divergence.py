"""Teacher-forced divergence: how far a variant's next-token distributions sit from the reference's, read along the
reference's own answer. Pure numpy.

Per position (before each answer token, and after the last one): the reference's top-k probabilities p_1..p_k and
the rest of its mass as one bucket, the variant's probabilities q_1..q_k of the same k tokens and the rest of its
mass as one bucket; KL(reference || variant) over those k + 1 buckets, as llama.cpp's KLD statistics do. Merging
tokens into one bucket never raises KL, so this is a lower bound of the full KL. A token whose variant probability
is unknown (a server returns only its own top-N) joins the bucket on both sides: still a lower bound.

Per sample: the mean KL per position, the share of positions where the variant's most likely token is the
reference's, the first position where it is not (None: the variant's greedy answer is the reference's, token for
token), and the log-likelihood both models give the answer. Aggregates are over samples (the independent unit),
with percentile bootstrap intervals of the paired per-sample values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from omnicheck.compare.paired import DEFAULT_RESAMPLES, bootstrap_interval
from omnicheck.tokens import TokenScores

_MIN_LOGPROB = -60.0  # a probability that underflowed counts as e^-60, so one token cannot make KL infinite


def position_kl(reference_logprobs: Any, variant_logprobs: Any) -> np.ndarray:
    """KL per position over the reference's top-k plus one tail bucket; NaN variant entries join the tail.

    Both arguments are [positions, k] natural-log probabilities of the same tokens (the reference's top-k).
    """
    ref = np.asarray(reference_logprobs, dtype=float)
    var = np.asarray(variant_logprobs, dtype=float)
    if ref.shape != var.shape or ref.ndim != 2:
        raise ValueError(f"need two [positions, k] arrays of one shape, got {ref.shape} and {var.shape}")
    known = np.isfinite(var) | (var == -np.inf)
    var = np.where(known, np.maximum(var, _MIN_LOGPROB), 0.0)
    p = np.where(known, np.exp(ref), 0.0)
    q = np.where(known, np.exp(var), 0.0)
    head = np.sum(p * np.where(known, ref - var, 0.0), axis=1)
    p_tail = np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)
    q_tail = np.clip(1.0 - q.sum(axis=1), math.exp(_MIN_LOGPROB), 1.0)
    tail = np.where(p_tail > 0.0, p_tail * (np.log(np.maximum(p_tail, 1e-300)) - np.log(q_tail)), 0.0)
    return np.maximum(head + tail, 0.0)  # rounding can leave -1e-9 where the distributions are equal


@dataclass(frozen=True)
class SampleDivergence:
    sample_id: str
    kl: list[float]  # per position
    agree: list[bool]  # per position: the variant's top-1 is the reference's
    tokens: list[str]  # the reference's answer tokens, for the report
    variant_top1: list[int]
    reference_top1: list[int]
    variant_loglik: float  # sum over the answer's tokens of the variant's log-probability
    reference_loglik: float

    @property
    def positions(self) -> int:
        return len(self.kl)

    @property
    def kl_mean(self) -> float:
        return float(np.mean(self.kl)) if self.kl else 0.0

    @property
    def agreement(self) -> float:
        return float(np.mean(self.agree)) if self.agree else 1.0

    @property
    def first_divergence(self) -> int | None:
        return next((i for i, same in enumerate(self.agree) if not same), None)

    @property
    def loglik_per_token(self) -> float:
        """The variant's log-likelihood of the answer minus the reference's, per answer token (0 when equal)."""
        answer = max(1, self.positions - 1)
        return (self.variant_loglik - self.reference_loglik) / answer

    def to_json(self) -> dict[str, Any]:
        return {
            "kl_mean": self.kl_mean, "agreement": self.agreement, "first_divergence": self.first_divergence,
            "variant_loglik": self.variant_loglik, "reference_loglik": self.reference_loglik,
            "positions": self.positions, "kl": [round(x, 6) for x in self.kl], "agree": self.agree,
            "tokens": self.tokens,
        }


def sample_divergence(sample_id: str, reference: TokenScores, variant: TokenScores) -> SampleDivergence:
    """The variant's divergence on one sample; `variant` must have gathered the reference's top-k ids."""
    if variant.token_ids != reference.token_ids:
        raise ValueError(f"sample {sample_id}: the variant scored other tokens than the reference's answer")
    if variant.gathered is None or len(variant.gathered) != reference.positions:
        raise ValueError(f"sample {sample_id}: the variant's scores lack the reference's top-k at every position")
    kl = position_kl(reference.top_logprobs, variant.gathered)
    ref_top1 = [row[0] for row in reference.top_ids]
    var_top1 = [row[0] for row in variant.top_ids]
    return SampleDivergence(
        sample_id=sample_id,
        kl=[float(x) for x in kl],
        agree=[a == b for a, b in zip(ref_top1, var_top1)],
        tokens=list(reference.tokens),
        variant_top1=var_top1,
        reference_top1=ref_top1,
        variant_loglik=float(np.sum(variant.token_logprobs)),
        reference_loglik=float(np.sum(reference.token_logprobs)),
    )


# --- over samples ---


@dataclass(frozen=True)
class DivergenceSummary:
    n: int  # samples
    positions: int  # token positions over all samples
    kl_mean: float  # mean over samples of each sample's mean KL per position (nats)
    kl_interval: tuple[float, float]
    agreement: float  # mean over samples of the top-1 agreement share
    agreement_interval: tuple[float, float]
    identical: int  # samples on which the variant's top-1 never leaves the reference's answer
    loglik_delta: float  # mean over samples of (variant - reference) log-likelihood per answer token
    loglik_interval: tuple[float, float]
    level: float
    method: str

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "positions": self.positions, "kl_mean": self.kl_mean, "kl_interval": list(self.kl_interval),
                "agreement": self.agreement, "agreement_interval": list(self.agreement_interval),
                "identical": self.identical, "loglik_delta": self.loglik_delta,
                "loglik_interval": list(self.loglik_interval), "level": self.level, "method": self.method}


def summarize(samples: Sequence[SampleDivergence], level: float = 0.90, resamples: int = DEFAULT_RESAMPLES,
              seed: int = 0) -> DivergenceSummary:
    if not samples:
        raise ValueError("no samples to summarize")
    kl = [s.kl_mean for s in samples]
    agreement = [s.agreement for s in samples]
    loglik = [s.loglik_per_token for s in samples]
    return DivergenceSummary(
        n=len(samples),
        positions=sum(s.positions for s in samples),
        kl_mean=float(np.mean(kl)),
        kl_interval=bootstrap_interval(kl, level, resamples, seed),
        agreement=float(np.mean(agreement)),
        agreement_interval=bootstrap_interval(agreement, level, resamples, seed),
        identical=sum(s.first_divergence is None for s in samples),
        loglik_delta=float(np.mean(loglik)),
        loglik_interval=bootstrap_interval(loglik, level, resamples, seed),
        level=level,
        method=f"paired per-sample values, percentile bootstrap over samples, {resamples} resamples, seed {seed}",
    )


# --- one modality against another ---


@dataclass(frozen=True)
class Contrast:
    """How much more one modality's answers diverge than text's, for one variant (two independent sample sets)."""

    modality: str
    modality_kl: float
    text_kl: float
    denominator: float  # text_kl, or the noise floor where text sits below it (a ratio to zero means nothing)
    ratio: float
    ratio_interval: tuple[float, float]
    difference: float  # modality_kl - text_kl, nats per token
    difference_interval: tuple[float, float]
    level: float

    @property
    def decided(self) -> str:
        """"larger" / "smaller" when the interval excludes no difference, else "alike"."""
        lo, hi = self.difference_interval
        return "larger" if lo > 0 else "smaller" if hi < 0 else "alike"

    def sentence(self) -> str:
        if self.modality_kl <= self.denominator and self.text_kl <= self.denominator and self.denominator > self.text_kl:
            return f"{self.modality} and text tokens both sit within the noise floor ({self.denominator:.3g} nats): unchanged"
        lo, hi = self.ratio_interval
        where = f"{self.level:.0%} interval {_times(lo)} to {_times(hi)}"
        at_floor = " (text sits at the noise floor, so the ratio is to the floor)" if self.denominator > self.text_kl else ""
        if self.decided == "larger":
            return (f"{self.modality} tokens diverge {_times(self.ratio)} more than text ({where}; KL "
                    f"{self.modality_kl:.3g} vs {self.text_kl:.3g} nats per token){at_floor}")
        if self.decided == "smaller":
            return f"{self.modality} tokens diverge less than text ({_times(self.ratio)}, {where}){at_floor}"
        return (f"{self.modality} and text tokens diverge alike ({_times(self.ratio)}, {where}): nothing specific "
                f"to {self.modality}{at_floor}")

    def to_json(self) -> dict[str, Any]:
        return {"modality": self.modality, "modality_kl": self.modality_kl, "text_kl": self.text_kl,
                "denominator": self.denominator, "ratio": self.ratio, "ratio_interval": list(self.ratio_interval),
                "difference": self.difference, "difference_interval": list(self.difference_interval),
                "decided": self.decided, "level": self.level, "sentence": self.sentence()}


def contrast(modality: str, modality_kl: Sequence[float], text_kl: Sequence[float], floor: float = 0.0,
             level: float = 0.90, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Contrast:
    """Ratio and difference of mean per-sample KL, media over text, each set resampled on its own."""
    media, text = np.asarray(modality_kl, dtype=float), np.asarray(text_kl, dtype=float)
    if media.size == 0 or text.size == 0:
        raise ValueError("a contrast needs samples on both sides")
    rng = np.random.default_rng(seed)
    media_means = media[rng.integers(0, media.size, size=(resamples, media.size))].mean(axis=1)
    text_means = text[rng.integers(0, text.size, size=(resamples, text.size))].mean(axis=1)
    smallest = max(floor, 1e-9)
    ratios = media_means / np.maximum(text_means, smallest)
    differences = media_means - text_means
    tail = (1.0 - level) / 2.0
    denominator = max(float(text.mean()), smallest)
    return Contrast(
        modality=modality,
        modality_kl=float(media.mean()),
        text_kl=float(text.mean()),
        denominator=denominator,
        ratio=float(media.mean()) / denominator,
        ratio_interval=tuple(float(x) for x in np.quantile(ratios, [tail, 1.0 - tail])),  # type: ignore[arg-type]
        difference=float(media.mean() - text.mean()),
        difference_interval=tuple(float(x) for x in np.quantile(differences, [tail, 1.0 - tail])),  # type: ignore[arg-type]
        level=level,
    )


def _times(x: float) -> str:
    if not math.isfinite(x):
        return "inf x"
    return f"{x:,.0f}x" if x >= 10 else f"{x:.1f}x" if x >= 1 else f"{x:.2f}x"
