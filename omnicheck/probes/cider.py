"""CIDEr-D (Vedantam, Zitnick and Parikh 2015), computed as the COCO caption evaluation computes it.

The definition followed is pycocoevalcap's `cider_scorer` (the COCO server's code, whose "CIDEr" is CIDEr-D):
n-grams of 1 to 4 words; each weighted tf * idf with idf = log(number of reference sets) - log(max(1, number of
reference sets containing the n-gram)); per n, the cosine between candidate and each reference with the
candidate's weights clipped at the reference's; times a Gaussian penalty exp(-delta^2 / (2 sigma^2)) on the
difference delta in length (counted as that code counts it: bigrams); averaged over n, over the references, x10.
Document frequencies come from every reference set of the data the probe read, so a score depends on the set
as in the COCO evaluation, and reference and variant are scored against the same counts.

Tokens are omnicheck's `common.words` (lower case, letters and digits; Stanford's PTB tokenizer needs Java).
tests/probes/test_cider.py checks the scores against pycocoevalcap's own scorer on the same tokens.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Sequence

from omnicheck.probes.common import words

N = 4
SIGMA = 6.0
SCALE = 10.0


def ngram_counts(text: str, n: int = N) -> Counter[str]:
    tokens = words(text)
    return Counter(" ".join(tokens[i : i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1))


class CiderD:
    def __init__(self, reference_sets: Iterable[Sequence[str]], n: int = N, sigma: float = SIGMA):
        self.n, self.sigma = n, sigma
        self.document_frequency: Counter[str] = Counter()
        sets = 0
        for references in reference_sets:
            sets += 1
            self.document_frequency.update({g for ref in references for g in ngram_counts(ref, n)})
        if not sets:
            raise ValueError("CIDEr-D needs at least one reference set")
        self.log_sets = math.log(float(sets))

    def _vector(self, counts: Counter[str]) -> tuple[list[dict[str, float]], list[float], int]:
        vec: list[dict[str, float]] = [{} for _ in range(self.n)]
        norm = [0.0] * self.n
        for gram, tf in counts.items():
            order = gram.count(" ")
            weight = tf * (self.log_sets - math.log(max(1.0, self.document_frequency[gram])))
            vec[order][gram] = weight
            norm[order] += weight * weight
        length = sum(tf for gram, tf in counts.items() if gram.count(" ") == 1)  # bigrams, as the reference code
        return vec, [math.sqrt(x) for x in norm], length

    def score(self, candidate: str, references: Sequence[str]) -> float:
        if not references:
            raise ValueError("CIDEr-D needs at least one reference")
        cand, cand_norm, cand_len = self._vector(ngram_counts(candidate, self.n))
        total = 0.0
        for reference in references:
            ref, ref_norm, ref_len = self._vector(ngram_counts(reference, self.n))
            penalty = math.exp(-((cand_len - ref_len) ** 2) / (2 * self.sigma**2))
            for order in range(self.n):
                dot = sum(min(w, ref[order].get(g, 0.0)) * ref[order].get(g, 0.0) for g, w in cand[order].items())
                if cand_norm[order] and ref_norm[order]:
                    dot /= cand_norm[order] * ref_norm[order]
                total += dot * penalty
        return total / self.n / len(references) * SCALE
