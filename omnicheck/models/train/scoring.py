"""Scores for the held-out evaluation: what each target in issue 8 measures, in pure Python (the GPU machine has no
jiwer or lm-eval; the tests check these against jiwer and lm-eval's IFEval checker here)."""

from __future__ import annotations

import re
from typing import Any, Sequence

from omnicheck.models.train.text_tasks import extract_gsm_answer, follows


def normalize(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words) after lowercasing and dropping punctuation."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1], len(ref)


def corpus_wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    errors = words = 0
    for ref, hyp in zip(references, hypotheses):
        e, n = word_errors(ref, hyp)
        errors, words = errors + e, words + n
    return errors / max(words, 1)


def _mentions(text: str, phrase: str) -> bool:
    """phrase appears with word boundaries; a trailing noun may be plural ('red circle' matches 'red circles')."""
    pattern = r"\b" + re.escape(phrase.lower()) + r"s?\b"
    return re.search(pattern, text.lower()) is not None


def key_object_recall(output: str, key_objects: Sequence[str]) -> float:
    return sum(_mentions(output, k) for k in key_objects) / len(key_objects)


def concept_recall(output: str, concepts: Sequence[str]) -> float:
    return sum(_mentions(output, c) for c in concepts) / len(concepts)


def gsm_correct(output: str, value: int) -> float:
    return float(extract_gsm_answer(output) == str(value))


def ifeval_strict(output: str, instruction_ids: Sequence[str], kwargs: Sequence[dict[str, Any]]) -> float:
    """Prompt-level strict: every instruction followed; an empty answer follows none (as in lm-eval)."""
    return float(bool(output.strip()) and all(follows(i, k, output) for i, k in zip(instruction_ids, kwargs)))
