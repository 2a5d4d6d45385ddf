"""Text differences as pieces the template marks: a word diff of two outputs, or a speech hypothesis aligned
against its transcript (from the jiwer alignment the probe kept)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Piece:
    text: str
    mark: str = ""  # "", "ins", "del", "sub"
    title: str = ""


def _words_and_spaces(text: str) -> list[str]:
    return re.findall(r"\S+|\s+", text)


def word_diff(reference: str, variant: str) -> tuple[list[Piece], list[Piece]]:
    """Both texts as pieces, words that differ marked (difflib on words; whitespace kept as written)."""
    ref_tokens, var_tokens = _words_and_spaces(reference), _words_and_spaces(variant)
    ref_words = [t for t in ref_tokens if not t.isspace()]
    var_words = [t for t in var_tokens if not t.isspace()]
    ref_marks = [""] * len(ref_words)
    var_marks = [""] * len(var_words)
    matcher = difflib.SequenceMatcher(None, ref_words, var_words, autojunk=False)
    for op, r0, r1, v0, v1 in matcher.get_opcodes():
        if op in ("replace", "delete"):
            ref_marks[r0:r1] = ["del"] * (r1 - r0)
        if op in ("replace", "insert"):
            var_marks[v0:v1] = ["ins"] * (v1 - v0)
    return _apply_marks(ref_tokens, ref_marks), _apply_marks(var_tokens, var_marks)


def _apply_marks(tokens: list[str], marks: list[str]) -> list[Piece]:
    pieces: list[Piece] = []
    words = iter(marks)
    for token in tokens:
        mark = "" if token.isspace() else next(words)
        if pieces and pieces[-1].mark == mark and (mark == "" or token.isspace() or pieces[-1].text[-1:].isspace()):
            pieces[-1] = Piece(pieces[-1].text + token, mark)
        else:
            pieces.append(Piece(token, mark))
    return _merge_marked_runs(pieces)


def _merge_marked_runs(pieces: list[Piece]) -> list[Piece]:
    """Join 'word', ' ', 'word' of one mark into one piece so a run reads as one highlight."""
    merged: list[Piece] = []
    for piece in pieces:
        if (
            len(merged) >= 2
            and piece.mark
            and merged[-1].mark == ""
            and merged[-1].text.isspace()
            and merged[-2].mark == piece.mark
        ):
            space = merged.pop()
            merged[-1] = Piece(merged[-1].text + space.text + piece.text, piece.mark)
        else:
            merged.append(piece)
    return merged


def alignment_pieces(extra: Mapping[str, Any]) -> list[Piece] | None:
    """A speech hypothesis against its transcript, from the jiwer alignment the probe kept; None if absent/bad."""
    alignment = extra.get("alignment")
    ref_words, hyp_words = extra.get("ref_words"), extra.get("hyp_words")
    if not isinstance(alignment, list) or not isinstance(ref_words, list) or not isinstance(hyp_words, list):
        return None
    pieces: list[Piece] = []
    try:
        for chunk in alignment:
            kind = chunk["type"]
            r0, r1 = int(chunk["ref_start_idx"]), int(chunk["ref_end_idx"])
            h0, h1 = int(chunk["hyp_start_idx"]), int(chunk["hyp_end_idx"])
            if not (0 <= r0 <= r1 <= len(ref_words) and 0 <= h0 <= h1 <= len(hyp_words)):
                return None
            hyp, ref = [str(w) for w in hyp_words[h0:h1]], [str(w) for w in ref_words[r0:r1]]
            if kind == "equal":
                pieces.append(Piece(" ".join(hyp)))
            elif kind == "substitute":
                pieces.extend(Piece(h, "sub", f"expected: {r}") for h, r in zip(hyp, ref))
            elif kind == "insert":
                pieces.append(Piece(" ".join(hyp), "ins", "inserted: not in the transcript"))
            elif kind == "delete":
                pieces.append(Piece(" ".join(ref), "del", "deleted: in the transcript, not heard"))
            else:
                return None
    except (KeyError, TypeError, ValueError):
        return None
    spaced: list[Piece] = []
    for piece in pieces:
        if spaced:
            spaced.append(Piece(" "))
        spaced.append(piece)
    return spaced


def plain_pieces(text: str) -> list[Piece]:
    return [Piece(text)] if text else []
