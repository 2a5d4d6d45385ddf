"""Dead-modality detectors: per-sample checks that fire with a reason, counted per probe and paired with the
reference so a detector that also fires on the reference (a tiny random model babbles too) never blames the variant.

- empty: nothing visible (whitespace or special tokens only); the probes' "empty" score is wider (no word at
  all: punctuation alone counts, see probes.common.is_wordless);
- loop: the output repeats itself (repeated 3-word sequences, very few distinct words, or a character loop);
- garbled: not words of the expected language (share of tokens found in an English word list);
- media_ignored: the answer does not change when the media is blanked (blank image, silent audio, frozen frames).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from omnicheck.compare.agreement import agreement, normalize_words
from omnicheck.compare.paired import one_sided_flip_p
from omnicheck.types import ProbeResult

DETECTORS = ("empty", "loop", "garbled", "media_ignored")
OUTPUT_DETECTORS = ("empty", "loop", "garbled")  # judged on the output alone
ANY_OUTPUT = "collapsed"  # the union of OUTPUT_DETECTORS, judged as one more detector

_WORD_LISTS = {"en": Path(__file__).parent / "data" / "english_words.txt"}
_SPECIAL_TOKEN = re.compile(r"<\|?[A-Za-z0-9_./:-]+\|?>|\[(?:PAD|UNK|CLS|SEP|MASK)\]|<unk>|<pad>|</s>|<s>")
_LETTERS = re.compile(r"[^\W\d_]+")
_SUFFIXES = ("s", "es", "ed", "d", "ing", "ly", "er", "est", "ies")
_BLANKED = {"image": "a blank image", "audio": "silent audio", "video": "frozen frames"}


def _snippet(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def visible_text(output: str) -> str:
    """The output without special tokens and surrounding whitespace."""
    return _SPECIAL_TOKEN.sub("", output).strip()


# --- empty ---


def detect_empty(output: str) -> str | None:
    if visible_text(output):
        return None
    if output.strip():
        return f"empty output (special tokens only: {_snippet(output)!r})"
    return "empty output"


# --- loop ---


def repeated_ngram_share(words: Sequence[str], n: int = 3) -> float:
    """Share of n-grams that repeat an earlier one: ~0 for prose, 1 - 1/r for a passage said r times."""
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def detect_loop(
    output: str,
    *,
    min_words: int = 12,
    max_repeated_share: float = 0.5,
    diversity_min_words: int = 40,
    min_distinct_share: float = 0.25,
) -> str | None:
    text = visible_text(output)
    words = normalize_words(text)
    if len(words) >= min_words:
        share = repeated_ngram_share(words)
        if share >= max_repeated_share:
            gram, count = Counter(tuple(words[i : i + 3]) for i in range(len(words) - 2)).most_common(1)[0]
            return f"repetition loop: {share:.0%} of 3-word sequences repeat ({' '.join(gram)!r} x{count})"
    if len(words) >= diversity_min_words:
        distinct = len(set(words))
        if distinct / len(words) < min_distinct_share:
            top = ", ".join(repr(w) for w, _ in Counter(words).most_common(3))
            return f"repetition loop: only {distinct} distinct words in {len(words)} (mostly {top})"
    compact = "".join(text.split())
    if len(words) < min_words and len(compact) >= 40:
        share = repeated_ngram_share(compact, n=4)
        if share >= 0.7:
            return f"repetition loop: a character pattern repeats ({share:.0%} of 4-character sequences): {_snippet(text, 40)!r}"
    return None


# --- garbled ---


@functools.lru_cache(maxsize=None)
def word_list(language: str = "en") -> frozenset[str]:
    if language not in _WORD_LISTS:
        raise ValueError(f"no word list for language {language!r}; have: {', '.join(sorted(_WORD_LISTS))}")
    return frozenset(_WORD_LISTS[language].read_text(encoding="utf-8").split())


def is_known_word(token: str, words: frozenset[str]) -> bool:
    if len(token) == 1 or token in words:
        return True
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 2:
            stem = token[: -len(suffix)]
            if stem in words or (suffix == "ies" and stem + "y" in words) or (suffix in ("ed", "ing", "er", "est") and stem + "e" in words):
                return True
    return False


# Closed-class English words: prose is ~40% these, token soup and random-word salad almost none.
FUNCTION_WORDS = frozenset(
    """
    a an the this that these those some any no every each all both either neither
    i me my we us our you your he him his she her it its they them their
    of in on at to for from by with about into onto over under after before between through during
    without within along across against among around behind beside beyond near off out up down upon
    and or but nor so yet if then than because while although though unless until since as
    is am are was were be been being do does did have has had will would shall should can could may might must
    not what which who whom whose when where why how there here also only very just more most such other
    """.split()
)


@dataclass(frozen=True)
class WordStats:
    tokens: int  # runs of two or more letters (numbers and single letters say nothing about the language)
    known: int
    function: int
    unknown_examples: tuple[str, ...]

    @property
    def known_share(self) -> float:
        return self.known / self.tokens if self.tokens else 1.0

    @property
    def function_share(self) -> float:
        return self.function / self.tokens if self.tokens else 1.0


def word_stats(text: str, language: str = "en") -> WordStats:
    tokens = [t for t in _LETTERS.findall(unicodedata.normalize("NFKC", text).casefold()) if len(t) > 1]
    words = word_list(language)
    unknown = [t for t in tokens if not is_known_word(t, words)]
    function = sum(1 for t in tokens if t in FUNCTION_WORDS)
    return WordStats(len(tokens), len(tokens) - len(unknown), function, tuple(unknown[:4]))


def detect_garbled(
    output: str,
    *,
    language: str = "en",
    min_tokens: int = 3,
    min_known_share: float = 0.6,
    salad_min_tokens: int = 12,
) -> str | None:
    """Thresholds set on real text (639 stdlib docstrings: 3 fire, all code-heavy) and real garbage
    (random ids decoded by a byte-level BPE: 54% of 8-token, 87% of 20-token, 99% of 40-token outputs fire;
    random WordPiece vocabulary words: 8% of 8-word, 92% of 20-word, 99% of 40-word outputs fire).
    tests/unit/test_collapse.py measures both."""
    text = visible_text(output)
    if not text:
        return None  # that is the empty detector's finding
    if not _LETTERS.search(text):
        if any(ch.isdigit() for ch in text):
            return None  # a bare number is a fine answer
        return f"garbled: no words at all ({_snippet(text)!r})"
    stats = word_stats(text, language)
    if stats.tokens < min_tokens:
        return None
    examples = ", ".join(repr(t) for t in stats.unknown_examples)
    if stats.known_share < min_known_share:
        return f"garbled: only {stats.known} of {stats.tokens} tokens are {language} words ({stats.known_share:.0%}), e.g. {examples}"
    if stats.tokens >= salad_min_tokens and language == "en":
        if stats.function_share < 0.05 or (stats.known_share < 0.75 and stats.function_share < 0.12):
            return (
                f"garbled: word salad, {stats.function} of {stats.tokens} tokens are function words like 'the', 'of' "
                f"({stats.function_share:.0%}; prose has ~40%)"
            )
    return None


# --- media ignored ---


def detect_media_ignored(output: str, counterfactual_output: str, *, modality: str = "", min_similarity: float = 0.8) -> str | None:
    blanked = _BLANKED.get(modality, "the media blanked")
    result = agreement(counterfactual_output, output)
    if result.identical:
        return f"media ignored: same answer with {blanked}"
    if result.similarity >= min_similarity:
        return f"media ignored: near-identical answer with {blanked} (word F1 {result.similarity:.2f})"
    return None


# --- per probe ---


def detect(output: str, counterfactual_output: str | None = None, *, modality: str = "", language: str = "en") -> dict[str, str]:
    """Every detector that fires on one sample, with its reason."""
    fired: dict[str, str] = {}
    for name, reason in (
        ("empty", detect_empty(output)),
        ("loop", detect_loop(output)),
        ("garbled", detect_garbled(output, language=language)),
    ):
        if reason:
            fired[name] = reason
    if counterfactual_output is not None:
        reason = detect_media_ignored(output, counterfactual_output, modality=modality)
        if reason:
            fired["media_ignored"] = reason
    return fired


@dataclass(frozen=True)
class CollapseScan:
    """Detector results for one ProbeResult."""

    sample_ids: tuple[str, ...]
    flags: dict[str, dict[str, str]]  # sample_id -> {detector: reason}, only samples where something fired
    with_counterfactual: frozenset[str] = field(default_factory=frozenset)

    @property
    def n(self) -> int:
        return len(self.sample_ids)

    def fired(self, sample_id: str, detector: str) -> bool:
        sample_flags = self.flags.get(sample_id, {})
        if detector == ANY_OUTPUT:
            return any(d in sample_flags for d in OUTPUT_DETECTORS)
        return detector in sample_flags

    def applicable(self, sample_id: str, detector: str) -> bool:
        return detector != "media_ignored" or sample_id in self.with_counterfactual

    def count(self, detector: str) -> int:
        return sum(self.fired(s, detector) for s in self.sample_ids)

    def counts(self) -> dict[str, int]:
        return {d: self.count(d) for d in (*DETECTORS, ANY_OUTPUT)}


def scan(result: ProbeResult, *, language: str = "en") -> CollapseScan:
    counterfactual = {s.sample_id: s.output for s in result.counterfactual}
    flags = {}
    for sample in result.samples:
        fired = detect(sample.output, counterfactual.get(sample.sample_id), modality=result.modality, language=language)
        if fired:
            flags[sample.sample_id] = fired
    ids = tuple(s.sample_id for s in result.samples)
    return CollapseScan(ids, flags, frozenset(i for i in ids if i in counterfactual))


@dataclass(frozen=True)
class CollapseComparison:
    """One detector, variant against reference on the samples both have (and, for media_ignored, both blanked)."""

    detector: str
    n: int
    variant_count: int
    reference_count: int
    only_variant: int  # fired on the variant, not on the reference
    only_reference: int
    p_value: float  # exact one-sided: the variant's extra firings are not luck
    example: str  # one of the variant's reasons, with its sample id

    @property
    def excess(self) -> float:
        return (self.variant_count - self.reference_count) / self.n if self.n else 0.0

    def describe(self) -> str:
        return (
            f"{self.detector}: {self.variant_count} of {self.n} variant outputs vs {self.reference_count} of {self.n} "
            f"for the reference (excess {self.excess:.0%}, one-sided exact p={self.p_value:.3g}); e.g. {self.example}"
        )

    def to_json(self) -> dict:
        return {
            "detector": self.detector,
            "n": self.n,
            "variant": self.variant_count,
            "reference": self.reference_count,
            "only_variant": self.only_variant,
            "only_reference": self.only_reference,
            "excess": self.excess,
            "p_value": self.p_value,
            "example": self.example,
        }


def compare_collapse(
    reference: CollapseScan, variant: CollapseScan, detectors: Iterable[str] = (*DETECTORS, ANY_OUTPUT)
) -> list[CollapseComparison]:
    shared = [s for s in reference.sample_ids if s in set(variant.sample_ids)]
    out = []
    for detector in detectors:
        ids = [s for s in shared if reference.applicable(s, detector) and variant.applicable(s, detector)]
        if not ids:
            continue
        var_hits = [s for s in ids if variant.fired(s, detector)]
        ref_hits = {s for s in ids if reference.fired(s, detector)}
        only_variant = sum(1 for s in var_hits if s not in ref_hits)
        only_reference = len(ref_hits - set(var_hits))
        example = ""
        for sample_id in var_hits:
            reasons = variant.flags[sample_id]
            reason = reasons.get(detector) or next(reasons[d] for d in OUTPUT_DETECTORS if d in reasons)
            example = f"[{sample_id}] {reason}"
            break
        out.append(
            CollapseComparison(
                detector=detector,
                n=len(ids),
                variant_count=len(var_hits),
                reference_count=len(ref_hits),
                only_variant=only_variant,
                only_reference=only_reference,
                p_value=one_sided_flip_p(only_variant, only_reference),
                example=example,
            )
        )
    return out
