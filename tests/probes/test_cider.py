"""CIDEr-D against the COCO caption evaluation's own scorer (pycocoevalcap 1.2's cider_scorer, run here: it
needs no Java once sentences are tokenized), on the same tokens, per sample and on average."""

from __future__ import annotations

import random

import pytest

from omnicheck.probes.cider import CiderD
from omnicheck.probes.common import words

VOCAB = ("a man woman dog cat sits on the red blue car street grass near two people riding bike table with "
         "plate of food holding umbrella in rain standing next to building").split()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(1, 14)))


def _corpus(seed: int, sets: int = 25):
    rng = random.Random(seed)
    references = [[_sentence(rng) for _ in range(rng.randint(1, 5))] for _ in range(sets)]
    candidates = [_sentence(rng) if i % 7 else "" for i in range(sets)]  # some empty answers too
    candidates[1] = references[1][0]  # an exact copy of a reference
    return references, candidates


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_pycocoevalcap(seed):
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    references, candidates = _corpus(seed)
    oracle = CiderScorer(n=4, sigma=6.0)
    for candidate, refs in zip(candidates, references):
        oracle += (" ".join(words(candidate)), [" ".join(words(r)) for r in refs])
    mean, per_sample = oracle.compute_score()
    ours = CiderD(references)
    scores = [ours.score(c, refs) for c, refs in zip(candidates, references)]
    assert scores == pytest.approx(list(per_sample), rel=1e-9, abs=1e-12)
    assert sum(scores) / len(scores) == pytest.approx(float(mean), rel=1e-9)
    assert scores[1] > 0.0 and all(s == 0.0 for s, c in zip(scores, candidates) if not c)


def test_punctuation_and_case_do_not_change_a_score():
    cider = CiderD([["A man rides a red bike.", "a person on a bicycle"], ["Two dogs play in grass."]])
    refs = ["A man rides a red bike.", "a person on a bicycle"]
    assert cider.score("a man rides a red bike", refs) == cider.score("A MAN, rides a red bike!", refs) > 1.0
    assert cider.score("two dogs play", refs) < cider.score("a man rides a bike", refs)
