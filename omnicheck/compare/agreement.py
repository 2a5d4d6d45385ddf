"""Agreement of a variant's output with the reference's own output, sample by sample (no model needed).

similarity: token F1 of normalized words (order-free, like SQuAD's F1), 1.0 for identical texts.
first divergence: the index of the first word where the two outputs part (None when they never do), the
cheap cousin of WWB's first divergent token.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from omnicheck.types import ProbeResult

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def normalize_words(text: str) -> list[str]:
    """Lowercased words and numbers, punctuation and spacing dropped (NFKC first, so full-width forms match)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def token_f1(reference: Sequence[str], variant: Sequence[str]) -> float:
    if not reference and not variant:
        return 1.0
    if not reference or not variant:
        return 0.0
    common = sum((Counter(reference) & Counter(variant)).values())
    if common == 0:
        return 0.0
    precision = common / len(variant)
    recall = common / len(reference)
    return 2 * precision * recall / (precision + recall)


def first_divergence(reference: Sequence[str], variant: Sequence[str]) -> int | None:
    for index, (r, v) in enumerate(zip(reference, variant)):
        if r != v:
            return index
    if len(reference) != len(variant):
        return min(len(reference), len(variant))
    return None


@dataclass(frozen=True)
class Agreement:
    similarity: float  # token F1 on normalized words
    first_divergence: int | None  # word index; None = same words throughout
    identical: bool  # same normalized words


def agreement(reference_output: str, variant_output: str) -> Agreement:
    ref, var = normalize_words(reference_output), normalize_words(variant_output)
    divergence = first_divergence(ref, var)
    return Agreement(similarity=token_f1(ref, var), first_divergence=divergence, identical=divergence is None)


@dataclass(frozen=True)
class AgreementSummary:
    n: int
    mean_similarity: float
    identical_share: float
    median_first_divergence: float | None  # over samples that diverge; None when none do
    worst: tuple[tuple[str, float], ...]  # (sample_id, similarity), least similar first
    per_sample: dict[str, Agreement]

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "mean_similarity": self.mean_similarity,
            "identical_share": self.identical_share,
            "median_first_divergence": self.median_first_divergence,
            "worst": [list(w) for w in self.worst],
        }


def summarize(pairs: Sequence[tuple[str, str, str]], worst: int = 5) -> AgreementSummary:
    """pairs: (sample_id, reference_output, variant_output)."""
    per_sample = {sample_id: agreement(ref, var) for sample_id, ref, var in pairs}
    if not per_sample:
        return AgreementSummary(0, float("nan"), float("nan"), None, (), {})
    sims = [a.similarity for a in per_sample.values()]
    divergences = [a.first_divergence for a in per_sample.values() if a.first_divergence is not None]
    ranked = sorted(per_sample.items(), key=lambda item: (item[1].similarity, item[0]))
    return AgreementSummary(
        n=len(per_sample),
        mean_similarity=sum(sims) / len(sims),
        identical_share=sum(a.identical for a in per_sample.values()) / len(per_sample),
        median_first_divergence=float(statistics.median(divergences)) if divergences else None,
        worst=tuple((sid, a.similarity) for sid, a in ranked[:worst] if not a.identical),
        per_sample=per_sample,
    )


def agreement_summary(reference: ProbeResult, variant: ProbeResult, worst: int = 5) -> AgreementSummary:
    """Agreement over the samples both results share, matched by sample_id."""
    variant_outputs = {s.sample_id: s.output for s in variant.samples}
    pairs = [(s.sample_id, s.output, variant_outputs[s.sample_id]) for s in reference.samples if s.sample_id in variant_outputs]
    return summarize(pairs, worst)
