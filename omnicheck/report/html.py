"""The one-file HTML review report, rendered from the omnicheck.json document (a plain dict, never live objects).

render_html(document, out_path) writes a self-contained page: CSS inline, media as data URIs, charts as inline SVG,
no network requests, readable with scripts disabled. All text from the document (model output above all) is
untrusted: the Jinja2 environment autoescapes everything and a Content-Security-Policy forbids any load but data:.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from omnicheck.report import charts
from omnicheck.report.media import DEFAULT_BUDGET_BYTES, MediaEncoder, Preview, media_kind
from omnicheck.types import MODALITIES

TEMPLATE_DIR = Path(__file__).parent
MAIN_TEMPLATE = "template.html.j2"

# Worst first: the order in which a cell takes the status of its probes.
STATUS_SEVERITY = ("ERROR", "BROKEN", "DEGRADED", "INCONCLUSIVE", "NO VERDICT", "PASS", "REFERENCE", "SKIPPED")
PROBLEM_STATUSES = frozenset({"ERROR", "BROKEN", "DEGRADED", "INCONCLUSIVE"})
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
FINDING_SOURCES = ("load", "lint", "finding", "detector", "verdict")  # order in the findings section
DETECTOR_ORDER = ("empty", "loop", "repetition", "garbled", "media_ignored", "collapsed")
DETECTOR_LABELS = {
    "empty": "empty output",
    "loop": "repetition loop",
    "repetition": "repetition loop",
    "garbled": "garbled text",
    "media_ignored": "media ignored",
    "collapsed": "any of the first three",
}
OPEN_SAMPLES = 3  # worst samples shown open per variant and probe; the rest are folded
MAX_SAMPLES = 40  # per variant and probe in the page (worst first); all of them are in omnicheck.json
MAX_TEXT_CHARS = 3000


# --- small formatting helpers (pure) ---


def fmt_number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "∞" if value > 0 else ("-∞" if value < 0 else "NaN")
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    text = f"{value:.3g}" if abs(value) >= 0.001 else f"{value:.2e}"
    return text


def fmt_signed(value: float | None) -> str:
    if value is None:
        return "–"
    return charts.fmt_signed(value, fmt_number)


def fmt_percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value * 100:.0f}%" if abs(value) >= 0.1 else f"{value * 100:.1f}%"


def fmt_created(value: Any) -> str:
    """An ISO 8601 timestamp as 'YYYY-MM-DD HH:MM UTC+hh:mm'; anything else as written."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value or "")
    zone = moment.strftime("%z")
    suffix = f" UTC{zone[:3]}:{zone[3:]}" if zone else ""
    return moment.strftime("%Y-%m-%d %H:%M") + suffix


def status_class(status: str | None) -> str:
    return "status-" + re.sub(r"[^a-z]+", "-", (status or "none").lower()).strip("-")


def worst_status(statuses: Iterable[str]) -> str | None:
    ranked = [s for s in statuses if s in STATUS_SEVERITY]
    return min(ranked, key=STATUS_SEVERITY.index) if ranked else None


def clip_text(text: str, limit: int = MAX_TEXT_CHARS) -> tuple[str, int]:
    """The text cut to limit characters, and how many were cut (kept in omnicheck.json)."""
    return (text, 0) if len(text) <= limit else (text[:limit], len(text) - limit)


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return " | ".join(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def as_float(value: Any) -> float | None:
    """Numbers (and booleans, as pass/fail scores) as float; anything else as None."""
    if not isinstance(value, (int, float)):
        return None
    return float(value)


# --- key figures ---


@dataclass(frozen=True)
class Figure:
    main: str
    interval: str
    detail: str  # one line for a tooltip: metric, reference, variant, threshold, n


def retention_interval(verdict: Mapping[str, Any]) -> tuple[float, float] | None:
    """The retention interval: given in details, or the difference interval divided by the reference value."""
    details = verdict.get("details") or {}
    given = details.get("retention_interval")
    if isinstance(given, (list, tuple)) and len(given) == 2 and all(as_float(v) is not None for v in given):
        return float(given[0]), float(given[1])
    interval = verdict.get("interval")
    reference = as_float(verdict.get("reference_value"))
    if verdict.get("retention") is None or not interval or not reference:
        return None
    lo, hi = (as_float(v) for v in interval)
    if lo is None or hi is None:
        return None
    return 1 + lo / reference, 1 + hi / reference


DIFFERENCE_GATES = frozenset({"max_drop", "max_increase", "difference"})


def gate_kind(verdict: Mapping[str, Any]) -> str | None:
    """How the gate judged the primary metric: min_retention (a ratio) or max_drop/max_increase (a difference)."""
    details = verdict.get("details") or {}
    kind = details.get("threshold_kind") or details.get("gate")
    return str(kind) if kind else None


def key_figure(verdict: Mapping[str, Any], prefer: str = "gate") -> Figure:
    """The verdict's figure and interval. prefer='gate': the quantity the threshold applies to (the difference for
    max_drop/max_increase gates, the retention otherwise); prefer='retention': the retention when there is one."""
    metric = verdict.get("metric") or "score"
    retention = as_float(verdict.get("retention"))
    difference = as_float(verdict.get("difference"))
    interval = verdict.get("interval")
    n = verdict.get("n") or 0
    detail = (
        f"{metric}: reference {fmt_number(as_float(verdict.get('reference_value')))}, "
        f"variant {fmt_number(as_float(verdict.get('variant_value')))}"
        + (f", threshold {fmt_number(as_float(verdict.get('threshold')))}" if verdict.get("threshold") is not None else "")
        + (f", n={n}" if n else "")
    )
    difference_gated = prefer == "gate" and gate_kind(verdict) in DIFFERENCE_GATES
    if retention is not None and not difference_gated:
        r_interval = retention_interval(verdict)
        text = f"[{fmt_percent(r_interval[0])}, {fmt_percent(r_interval[1])}]" if r_interval else ""
        return Figure(f"{fmt_percent(retention)} of ref", text, detail)
    if difference is not None:
        text = ""
        if interval and len(interval) == 2 and None not in interval:
            text = f"[{fmt_signed(float(interval[0]))}, {fmt_signed(float(interval[1]))}]"
        return Figure(f"Δ{metric} {fmt_signed(difference)}", text, detail)
    value = as_float(verdict.get("variant_value"))
    if value is not None:
        return Figure(f"{metric} {fmt_number(value)}", "", detail)
    return Figure("", "", detail)


# --- text differences ---


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


# --- the view the template draws ---


@dataclass(frozen=True)
class ScoreRow:
    name: str
    reference: str
    variant: str
    difference: str
    tone: str  # "worse", "better" or ""


@dataclass
class SampleView:
    anchor: str
    sample_id: str
    json_path: str
    media: list[tuple[str, str]]  # (path, kind); previews are attached after all views exist, worst first
    prompt: str
    prompt_cut: int
    target: str | None
    reference_pieces: list[Piece] | None
    variant_pieces: list[Piece]
    variant_cut: int
    reference_cut: int
    diff_mode: str  # "alignment" (speech, against the transcript) or "words" (against the reference output)
    scores: list[ScoreRow]
    headline: str
    tone: str
    flags: list[tuple[str, str]]  # (detector, reason)
    counterfactual: str | None = None
    counterfactual_same: bool = False
    previews: list[Preview] = field(default_factory=list)

    @property
    def flag_names(self) -> list[str]:
        return [name for name, _ in self.flags]


@dataclass
class ProbeBlock:
    probe: str
    anchor: str
    status: str
    status_class: str
    message: str
    figure: Figure | None
    reason: str
    aggregates: list[ScoreRow]
    samples_open: list[SampleView]
    samples_folded: list[SampleView]
    samples_left_out: int
    findings: list[str]
    seconds: float | None
    cached: bool
    reference_available: bool


@dataclass
class VariantBlock:
    anchor: str
    variant: str
    is_reference: bool
    status: str
    status_class: str
    probes: list[ProbeBlock]
    note: str = ""


@dataclass
class ModalitySection:
    modality: str
    anchor: str
    blocks: list[VariantBlock]


@dataclass(frozen=True)
class MatrixCell:
    modality: str
    status: str
    status_class: str
    lines: list[tuple[str, str, str]]  # (probe, figure, interval)
    href: str
    title: str


@dataclass
class MatrixRow:
    variant: str
    is_reference: bool
    error: str | None
    scheme: str
    cells: list[MatrixCell]


@dataclass(frozen=True)
class FindingView:
    severity: str
    code: str
    message: str
    modality: str | None
    source: str


@dataclass(frozen=True)
class Headline:
    variant: str
    status: str
    status_class: str
    text: str
    href: str


@dataclass
class ReportView:
    title: str
    document: Mapping[str, Any]
    json_name: str
    reference: str | None
    modalities: list[str]
    variants: list[dict[str, Any]]
    matrix: list[MatrixRow]
    headlines: list[Headline]
    sections: list[ModalitySection]
    retention: charts.ForestChart | None
    differences: list[charts.DifferenceChart]
    collapse: charts.CollapseChart | None
    collapse_labels: list[str]
    findings: list[tuple[str, list[FindingView]]]
    speed: list[dict[str, Any]]
    counts: dict[str, int]
    media_bytes: int = 0
    status_legend: list[tuple[str, str, str]] = field(default_factory=list)


def _variant_index(document: Mapping[str, Any]) -> dict[str, int]:
    names: list[str] = [str(v.get("name")) for v in document.get("variants") or []]
    for item in [*(document.get("results") or []), *(document.get("verdicts") or [])]:
        if str(item.get("variant")) not in names:
            names.append(str(item.get("variant")))
    for name in document.get("matrix") or {}:
        if name not in names:
            names.append(name)
    return {name: i for i, name in enumerate(names)}


def block_anchor(variant_index: int, modality: str) -> str:
    return f"v{variant_index}-{re.sub(r'[^a-z0-9]+', '-', modality.lower())}"


def probe_anchor(variant_index: int, probe: str) -> str:
    return f"v{variant_index}-p-{re.sub(r'[^A-Za-z0-9_]+', '-', probe)}"


def _reference_name(document: Mapping[str, Any]) -> str | None:
    for variant in document.get("variants") or []:
        if variant.get("is_reference"):
            return str(variant.get("name"))
    run_ref = (document.get("run") or {}).get("reference")
    return str(run_ref) if run_ref else None


def _modalities(document: Mapping[str, Any]) -> list[str]:
    seen = list(MODALITIES)
    extra = [
        *(r.get("modality") for r in document.get("results") or []),
        *(v.get("modality") for v in document.get("verdicts") or []),
        *(m for row in (document.get("matrix") or {}).values() if isinstance(row, dict) for m in row),
    ]
    for modality in extra:
        if modality and modality not in seen:
            seen.append(str(modality))
    return seen


def _metric_directions(result: Mapping[str, Any]) -> dict[str, bool]:
    return {str(m.get("name")): bool(m.get("higher_is_better", True)) for m in result.get("metrics") or []}


def _tone(difference: float | None, higher_is_better: bool | None) -> str:
    if difference is None or higher_is_better is None or difference == 0 or not math.isfinite(difference):
        return "" if difference is None or difference == 0 else "worse"
    worse = difference < 0 if higher_is_better else difference > 0
    return "worse" if worse else "better"


def score_rows(
    reference: Mapping[str, Any] | None, variant: Mapping[str, Any], directions: Mapping[str, bool]
) -> list[ScoreRow]:
    names = list(directions)
    for name in [*(reference or {}), *variant]:
        if name not in names and name != "n":
            names.append(name)
    rows = []
    for name in names:
        ref_value = as_float((reference or {}).get(name))
        var_value = as_float(variant.get(name))
        if ref_value is None and var_value is None:
            continue
        difference = var_value - ref_value if ref_value is not None and var_value is not None else None
        rows.append(
            ScoreRow(
                name=name,
                reference=fmt_number(ref_value),
                variant=fmt_number(var_value),
                difference=fmt_signed(difference) if difference is not None else "–",
                tone=_tone(difference, directions.get(name)),
            )
        )
    return rows


def sample_badness(
    reference: Mapping[str, Any] | None, variant: Mapping[str, Any], metric: str | None, higher_is_better: bool
) -> float:
    """How much worse the variant did on this sample than the reference (larger = worse); -inf if unscored."""
    var_value = as_float((variant.get("scores") or {}).get(metric)) if metric else None
    if var_value is None:
        return -math.inf
    ref_value = as_float(((reference or {}).get("scores") or {}).get(metric)) if metric else None
    base = var_value - ref_value if ref_value is not None else var_value
    return -base if higher_is_better else base


def _output_similarity(reference: Mapping[str, Any] | None, variant: Mapping[str, Any]) -> float:
    if reference is None:
        return 1.0
    a, b = str(reference.get("output") or ""), str(variant.get("output") or "")
    return difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False).ratio()


def sample_flags(sample: Mapping[str, Any], recorded: Mapping[str, Any] | None = None) -> list[str]:
    """Detectors that fired on one sample: the gate's (details.collapse.flags[id]) if recorded, the probe's
    (extra.flags), and an empty output, which needs no detector to see."""
    extra = sample.get("extra") or {}
    flags = [str(f) for f in extra.get("flags") or [] if isinstance(f, str)]
    for name in recorded or {}:
        if str(name) not in flags:
            flags.append(str(name))
    if not str(sample.get("output") or "").strip() and "empty" not in flags:
        flags.insert(0, "empty")
    return flags


def recorded_flags(verdict: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """sample id -> {detector: reason} from the verdict's details, when the gate kept them."""
    collapse = ((verdict or {}).get("details") or {}).get("collapse")
    flags = collapse.get("flags") if isinstance(collapse, dict) else None
    if not isinstance(flags, dict):
        return {}
    out: dict[str, Mapping[str, Any]] = {}
    for sample_id, fired in flags.items():
        if isinstance(fired, dict):
            out[str(sample_id)] = fired
        elif isinstance(fired, list):
            out[str(sample_id)] = {str(name): "" for name in fired}
    return out


@dataclass
class _Context:
    document: Mapping[str, Any]
    encoder: MediaEncoder
    variant_index: dict[str, int]
    reference: str | None
    results: dict[tuple[str, str], tuple[int, Mapping[str, Any]]]
    verdicts: dict[tuple[str, str], Mapping[str, Any]]
    max_samples: int = MAX_SAMPLES


def attach_media(sections: Sequence[ModalitySection], encoder: MediaEncoder) -> None:
    """Encode media for open samples of every section first, then folded ones: a spent budget hits the least read."""
    blocks = [(b, p) for section in sections for b in section.blocks for p in b.probes]
    ordered = [s for b, p in blocks if not b.is_reference for s in p.samples_open]
    ordered += [s for b, p in blocks if not b.is_reference for s in p.samples_folded]
    ordered += [s for b, p in blocks if b.is_reference for s in p.samples_open + p.samples_folded]
    for sample in ordered:
        sample.previews = [encoder.preview(path, kind) for path, kind in sample.media]  # type: ignore[arg-type]


def _sample_view(
    ctx: _Context,
    result_index: int,
    sample_index: int,
    variant_sample: Mapping[str, Any],
    reference_sample: Mapping[str, Any] | None,
    modality: str,
    directions: Mapping[str, bool],
    primary: str | None,
    anchor: str,
    counterfactual: Mapping[str, Any] | None,
    detector_reasons: Mapping[str, Any] | None = None,
) -> SampleView:
    extra = variant_sample.get("extra") or {}
    variant_output, variant_cut = clip_text(str(variant_sample.get("output") or ""))
    reference_pieces: list[Piece] | None = None
    reference_cut = 0
    aligned = alignment_pieces(extra)
    if aligned is not None:
        diff_mode = "alignment"
        variant_pieces = aligned
        if reference_sample is not None:
            ref_output, reference_cut = clip_text(str(reference_sample.get("output") or ""))
            reference_pieces = alignment_pieces(reference_sample.get("extra") or {}) or plain_pieces(ref_output)
    else:
        diff_mode = "words"
        if reference_sample is not None:
            ref_output, reference_cut = clip_text(str(reference_sample.get("output") or ""))
            reference_pieces, variant_pieces = word_diff(ref_output, variant_output)
        else:
            variant_pieces = plain_pieces(variant_output)
    media = [
        (str(path), kind)
        for path in variant_sample.get("media") or []
        if (kind := media_kind(str(path), modality)) is not None
    ]
    prompt, prompt_cut = clip_text(str(variant_sample.get("prompt") or ""))
    scores = score_rows((reference_sample or {}).get("scores"), variant_sample.get("scores") or {}, directions)
    headline, tone = "", ""
    for row in scores:
        if row.name == primary:
            headline = f"{row.name}: {row.reference} → {row.variant}" if reference_sample else f"{row.name}: {row.variant}"
            if reference_sample is not None and row.difference != "–":
                headline += f" ({row.difference})"
            tone = row.tone
    cf_text = None
    cf_same = False
    if counterfactual is not None:
        cf_output = str(counterfactual.get("output") or "").strip()
        cf_text, _ = clip_text(cf_output, 600)
        answer = str(variant_sample.get("output") or "").strip()
        cut = bool((counterfactual.get("extra") or {}).get("cut_at_tokens"))  # only its opening was generated
        cf_same = cf_output == answer or (cut and bool(cf_output) and answer.startswith(cf_output))
        cf_text = f"{cf_text} …" if cut else cf_text
    return SampleView(
        anchor=anchor,
        sample_id=str(variant_sample.get("id")),
        json_path=f"results[{result_index}].samples[{sample_index}]",
        media=media,
        prompt=prompt,
        prompt_cut=prompt_cut,
        target=as_text(variant_sample.get("target")),
        reference_pieces=reference_pieces,
        variant_pieces=variant_pieces,
        variant_cut=variant_cut,
        reference_cut=reference_cut,
        diff_mode=diff_mode,
        scores=scores,
        headline=headline,
        tone=tone,
        flags=[(name, str((detector_reasons or {}).get(name) or "")) for name in sample_flags(variant_sample, detector_reasons)],
        counterfactual=cf_text,
        counterfactual_same=cf_same,
    )


def _probe_block(ctx: _Context, variant: str, probe: str, modality: str) -> ProbeBlock:
    index = ctx.variant_index[variant]
    anchor = probe_anchor(index, probe)
    verdict = ctx.verdicts.get((variant, probe))
    result_entry = ctx.results.get((variant, probe))
    is_reference = variant == ctx.reference
    reference_entry = None if is_reference else ctx.results.get((ctx.reference or "", probe))
    result = result_entry[1] if result_entry else {}
    reference_result = reference_entry[1] if reference_entry else None
    directions = _metric_directions(result or reference_result or {})
    primary = next(iter(directions), None)
    status = str((verdict or {}).get("status") or ("REFERENCE" if is_reference else _result_status(result)))
    reference_samples = {str(s.get("id")): s for s in (reference_result or {}).get("samples") or []}
    counterfactuals = {str(s.get("id")): s for s in result.get("counterfactual") or []}
    reasons = recorded_flags(verdict)
    ranked = []
    for sample_index, sample in enumerate(result.get("samples") or []):
        reference_sample = None if is_reference else reference_samples.get(str(sample.get("id")))
        badness = sample_badness(reference_sample, sample, primary, directions.get(primary or "", True))
        similarity = _output_similarity(reference_sample, sample)
        ranked.append((-badness, similarity, sample_index, sample, reference_sample))
    if not is_reference:
        ranked.sort(key=lambda item: (item[0], item[1], item[2]))
    left_out = max(0, len(ranked) - ctx.max_samples)
    ranked = ranked[: ctx.max_samples]
    views = [
        _sample_view(
            ctx, result_entry[0] if result_entry else -1, sample_index, sample, reference_sample, modality,
            directions, primary, f"{anchor}-s{sample_index}", counterfactuals.get(str(sample.get("id"))),
            reasons.get(str(sample.get("id"))),
        )
        for _, _, sample_index, sample, reference_sample in ranked
    ]
    differs = [-neg_badness > 0 or similarity < 1 for neg_badness, similarity, *_ in ranked]
    open_positions = set() if is_reference else {i for i, d in enumerate(differs) if d}
    open_positions = set(sorted(open_positions)[:OPEN_SAMPLES])
    aggregates = score_rows(
        (reference_result or {}).get("aggregates"), result.get("aggregates") or {}, directions
    )
    seconds = as_float(result.get("seconds"))
    return ProbeBlock(
        probe=probe,
        anchor=anchor,
        status=status,
        status_class=status_class(status),
        message="" if is_reference else str((verdict or {}).get("message") or ""),
        figure=key_figure(verdict) if verdict and not is_reference else None,
        reason=str(result.get("reason") or ("no result recorded for this probe" if not result_entry else "")),
        aggregates=aggregates,
        samples_open=[v for i, v in enumerate(views) if i in open_positions],
        samples_folded=[v for i, v in enumerate(views) if i not in open_positions],
        samples_left_out=left_out,
        findings=[str(f) for f in (verdict or {}).get("findings") or []],
        seconds=seconds,
        cached=bool(result.get("cached")),
        reference_available=reference_result is not None and not is_reference,
    )


def _result_status(result: Mapping[str, Any]) -> str:
    return {"skipped": "SKIPPED", "error": "ERROR"}.get(str(result.get("status")), "")


def _probes_by_modality(document: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in [*(document.get("results") or []), *(document.get("verdicts") or [])]:
        modality, probe = str(item.get("modality")), str(item.get("probe"))
        if probe not in out.setdefault(modality, []):
            out[modality].append(probe)
    return out


def _sections(ctx: _Context, modalities: Sequence[str], variant_names: Sequence[str]) -> list[ModalitySection]:
    probes = _probes_by_modality(ctx.document)
    sections = []
    for modality in modalities:
        if not probes.get(modality):
            continue
        blocks = []
        for variant in variant_names:
            present = [p for p in probes[modality] if (variant, p) in ctx.results or (variant, p) in ctx.verdicts]
            if not present:
                continue
            probe_blocks = [_probe_block(ctx, variant, probe, modality) for probe in present]
            status = worst_status(b.status for b in probe_blocks) or ""
            note = ""
            if variant == ctx.reference:
                status = "REFERENCE"
                note = "The reference's outputs appear beside every variant's below; its own samples are folded here."
            blocks.append(
                VariantBlock(
                    anchor=block_anchor(ctx.variant_index[variant], modality), variant=variant,
                    is_reference=variant == ctx.reference, status=status, status_class=status_class(status),
                    probes=probe_blocks, note=note,
                )
            )
        blocks.sort(key=lambda b: not b.is_reference)
        sections.append(ModalitySection(modality=modality, anchor=f"m-{modality}", blocks=blocks))
    return sections


def _scheme(variant: Mapping[str, Any]) -> str:
    card = variant.get("quant_card")
    if not isinstance(card, dict):
        return "unquantized" if variant.get("is_reference") else ""
    parts = [str(card[k]) for k in ("format", "scheme") if card.get(k)]
    return " · ".join(parts)


def _aggregate_line(result: Mapping[str, Any], metric: str | None = None) -> str:
    aggregates = result.get("aggregates") or {}
    name = metric or next((str(m.get("name")) for m in result.get("metrics") or []), None)
    value = as_float(aggregates.get(name)) if name else None
    return f"{name} {fmt_number(value)}" if value is not None else ""


def _matrix(ctx: _Context, modalities: Sequence[str], variant_names: Sequence[str]) -> list[MatrixRow]:
    variants = {str(v.get("name")): v for v in ctx.document.get("variants") or []}
    given = ctx.document.get("matrix") or {}
    rows = []
    for variant in variant_names:
        info = variants.get(variant, {})
        is_reference = variant == ctx.reference
        cells = []
        for modality in modalities:
            verdicts = {p: v for (name, p), v in ctx.verdicts.items() if name == variant and v.get("modality") == modality}
            results = {p: r for (name, p), (_, r) in ctx.results.items() if name == variant and r.get("modality") == modality}
            ran = {p for p, r in results.items() if r.get("status") == "ok"}
            status = (given.get(variant) or {}).get(modality) or worst_status(str(v.get("status")) for v in verdicts.values())
            if status is None:
                if info.get("error") or any(r.get("status") == "error" for r in results.values()):
                    status = "ERROR"
                elif ran:
                    status = "REFERENCE" if is_reference else "NO VERDICT"
                else:
                    status = "SKIPPED"
            lines = []
            titles = []
            for probe in [*verdicts, *(p for p in results if p not in verdicts)]:
                verdict, result = verdicts.get(probe), results.get(probe, {})
                if verdict is not None and not is_reference:
                    figure = key_figure(verdict)
                    lines.append((probe, figure.main, figure.interval))
                elif probe in ran:
                    lines.append((probe, _aggregate_line(result, str((verdict or {}).get("metric") or "") or None), ""))
                if verdict is not None and verdict.get("message"):
                    titles.append(str(verdict["message"]))
                elif result.get("reason"):
                    titles.append(str(result["reason"]))
            href = "#" + block_anchor(ctx.variant_index[variant], modality) if verdicts or results else ""
            if not titles and info.get("error"):
                titles.append(str(info["error"]))
            cells.append(MatrixCell(modality, status, status_class(status), lines, href, " ".join(titles)))
        rows.append(
            MatrixRow(
                variant=variant, is_reference=is_reference,
                error=str(info["error"]) if info.get("error") else None, scheme=_scheme(info), cells=cells,
            )
        )
    return rows


def headlines(matrix: Sequence[MatrixRow]) -> list[Headline]:
    """One line per variant: its worst status, then which modalities got which verdict."""
    out = []
    for row in matrix:
        if row.is_reference:
            continue
        status = worst_status(c.status for c in row.cells) or "SKIPPED"
        first_href = next((c.href for c in row.cells if c.status == status and c.href), "")
        if row.error:
            out.append(Headline(row.variant, "ERROR", status_class("ERROR"), f"failed to load: {row.error}", first_href))
            continue
        by_status: dict[str, list[str]] = {}
        for cell in row.cells:
            by_status.setdefault(cell.status, []).append(cell.modality)
        parts = []
        for name in sorted(by_status, key=lambda n: STATUS_SEVERITY.index(n) if n in STATUS_SEVERITY else 99):
            label = "not run on" if name == "SKIPPED" else f"{name} on"
            parts.append(f"{label} {', '.join(by_status[name])}")
        out.append(Headline(row.variant, status, status_class(status), " · ".join(parts), first_href))
    return out


def _retention_chart(ctx: _Context, modalities: Sequence[str], variant_names: Sequence[str]) -> charts.ForestChart | None:
    items = []
    order = {m: i for i, m in enumerate(modalities)}
    verdicts = sorted(
        (v for v in ctx.verdicts.values() if v.get("status") not in ("REFERENCE", "SKIPPED") and v.get("variant") != ctx.reference),
        key=lambda v: (order.get(str(v.get("modality")), 99), ctx.variant_index.get(str(v.get("variant")), 99)),
    )
    for verdict in verdicts:
        figure = key_figure(verdict, prefer="retention")
        retention = as_float(verdict.get("retention"))
        threshold = as_float(verdict.get("threshold"))
        gate = gate_kind(verdict)
        is_ratio_gate = gate in ("min_retention", "retention") or (
            gate is None and threshold is not None and 0.5 <= threshold <= 1.5
        )
        variant = str(verdict.get("variant"))
        items.append(
            charts.RetentionInput(
                variant=variant, probe=str(verdict.get("probe")), modality=str(verdict.get("modality")),
                status=str(verdict.get("status")), figure=f"{figure.main} {figure.interval}".strip(),
                href="#" + probe_anchor(ctx.variant_index.get(variant, 0), str(verdict.get("probe"))),
                retention=retention, interval=retention_interval(verdict),
                threshold=threshold if retention is not None and is_ratio_gate else None,
            )
        )
    return charts.retention_chart(items) if items else None


def _difference_charts(ctx: _Context, variant_names: Sequence[str]) -> list[charts.DifferenceChart]:
    out = []
    probes = [p for ps in _probes_by_modality(ctx.document).values() for p in ps]
    for probe in probes:
        reference_entry = ctx.results.get((ctx.reference or "", probe))
        if reference_entry is None:
            continue
        metrics = reference_entry[1].get("metrics") or []
        if not metrics or metrics[0].get("kind") != "continuous":
            continue
        metric, higher_is_better = str(metrics[0].get("name")), bool(metrics[0].get("higher_is_better", True))
        reference_scores = {
            str(s.get("id")): as_float((s.get("scores") or {}).get(metric)) for s in reference_entry[1].get("samples") or []
        }
        per_variant = []
        for variant in variant_names:
            if variant == ctx.reference or (variant, probe) not in ctx.results:
                continue
            diffs = []
            for i, sample in enumerate(ctx.results[(variant, probe)][1].get("samples") or []):
                value = as_float((sample.get("scores") or {}).get(metric))
                base = reference_scores.get(str(sample.get("id")))
                if value is None or base is None:
                    continue
                href = f"#{probe_anchor(ctx.variant_index[variant], probe)}-s{i}"
                diffs.append(charts.SampleDifference(str(sample.get("id")), value - base, base, value, href))
            if diffs:
                per_variant.append((variant, diffs))
        if per_variant:
            out.append(charts.difference_chart(probe, metric, higher_is_better, per_variant, fmt_number))
    return out


def collapse_counts(verdict: Mapping[str, Any] | None, result: Mapping[str, Any]) -> dict[str, int]:
    """Detector -> flagged samples of this variant, as the gate counted them; else from the samples' own flags.

    Reads the gate's details: collapse.comparisons [{detector, variant, ...}] (a variant's verdict),
    collapse_counts {detector: n} (the reference's verdict), or a flat {detector: n | [ids]} under collapse.
    """
    details = (verdict or {}).get("details") or {}
    collapse = details.get("collapse")
    counts: dict[str, int] = {}
    if isinstance(collapse, dict) and isinstance(collapse.get("comparisons"), list):
        for comparison in collapse["comparisons"]:
            if isinstance(comparison, dict) and isinstance(comparison.get("variant"), (int, float)):
                counts[str(comparison.get("detector"))] = int(comparison["variant"])
        return counts
    recorded = details.get("collapse_counts") if isinstance(details.get("collapse_counts"), dict) else collapse
    if isinstance(recorded, dict):
        for name, value in recorded.items():
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                counts[str(name)] = int(value)
            elif isinstance(value, list):
                counts[str(name)] = len(value)
        if counts:
            return counts
    for sample in result.get("samples") or []:
        for flag in sample_flags(sample):
            counts[flag] = counts.get(flag, 0) + 1
    return counts


def _collapse_chart(ctx: _Context, variant_names: Sequence[str]) -> tuple[charts.CollapseChart | None, list[str]]:
    items = []
    seen: list[str] = []
    for (variant, probe), (_, result) in sorted(
        ctx.results.items(), key=lambda kv: (ctx.variant_index.get(kv[0][0], 99), kv[1][0])
    ):
        if result.get("status") != "ok":
            continue
        verdict = ctx.verdicts.get((variant, probe))
        counts = collapse_counts(verdict, result)
        seen.extend(name for name in counts if name not in seen)
        n = len(result.get("samples") or []) or int((verdict or {}).get("n") or 0)
        status = str((verdict or {}).get("status") or ("REFERENCE" if variant == ctx.reference else ""))
        items.append(
            charts.CollapseInput(
                variant=variant, probe=probe, status=status,
                href="#" + probe_anchor(ctx.variant_index[variant], probe), counts=counts, n=n,
            )
        )
    seen = [d for d in seen if d != "collapsed"]  # the gate's union of empty/loop/garbled repeats those columns
    detectors = [d for d in DETECTOR_ORDER if d in seen or d == "empty"] + [d for d in seen if d not in DETECTOR_ORDER]
    if not items:
        return None, []
    return charts.collapse_chart(items, detectors), [DETECTOR_LABELS.get(d, d.replace("_", " ")) for d in detectors]


def _findings(ctx: _Context, variant_names: Sequence[str]) -> list[tuple[str, list[FindingView]]]:
    grouped: dict[str, list[FindingView]] = {}
    for variant in ctx.document.get("variants") or []:
        name = str(variant.get("name"))
        if variant.get("error"):
            grouped.setdefault(name, []).append(FindingView("error", "load", str(variant["error"]), None, "load"))
        for lint in variant.get("lints") or []:
            grouped.setdefault(name, []).append(
                FindingView(str(lint.get("severity") or "info"), str(lint.get("code") or ""), str(lint.get("message") or ""), None, "lint")
            )
    for finding in ctx.document.get("findings") or []:
        grouped.setdefault(str(finding.get("variant") or "run"), []).append(
            FindingView(
                str(finding.get("severity") or "info"), str(finding.get("code") or ""), str(finding.get("message") or ""),
                finding.get("modality"), "finding",
            )
        )
    for verdict in ctx.verdicts.values():
        status = str(verdict.get("status"))
        name = str(verdict.get("variant"))
        if status in PROBLEM_STATUSES and verdict.get("message"):
            severity = "error" if status in ("BROKEN", "ERROR") else "warning"
            grouped.setdefault(name, []).append(
                FindingView(severity, f"{status} · {verdict.get('probe')}", str(verdict["message"]), verdict.get("modality"), "verdict")
            )
        for text in verdict.get("findings") or []:
            grouped.setdefault(name, []).append(
                FindingView("warning" if status in PROBLEM_STATUSES else "info", str(verdict.get("probe")), str(text), verdict.get("modality"), "detector")
            )
    order = {name: i for i, name in enumerate(variant_names)}
    out = []
    for name in sorted(grouped, key=lambda n: order.get(n, len(order))):
        unique: dict[str, FindingView] = {}
        for finding in grouped[name]:
            unique.setdefault(f"{finding.code}\n{finding.message}", finding)
        ranked = sorted(
            unique.values(),
            key=lambda f: (FINDING_SOURCES.index(f.source), SEVERITY_ORDER.get(f.severity, 3)),
        )
        out.append((name, ranked))
    return out


def _speed_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for row in document.get("speed") or []:
        path = row.get("execution_path")
        if isinstance(path, dict):
            path_text = " · ".join(f"{k.replace('_', ' ')}: {v}" for k, v in path.items() if v is not None)
        else:
            path_text = str(path or "")
        rows.append(
            {
                "variant": str(row.get("variant") or ""),
                "probe": str(row.get("probe") or ""),
                "seconds": fmt_number(as_float(row.get("seconds"))),
                "tokens": fmt_number(row.get("generated_tokens")),
                "rate": fmt_number(as_float(row.get("tokens_per_s"))),
                "path": path_text,
                "label": str(row.get("label") or ""),
            }
        )
    return rows


def build_view(
    document: Mapping[str, Any], json_name: str, encoder: MediaEncoder, max_samples: int = MAX_SAMPLES
) -> ReportView:
    variant_index = _variant_index(document)
    reference = _reference_name(document)
    variant_names = sorted(variant_index, key=lambda n: (n != reference, variant_index[n]))
    results = {
        (str(r.get("variant")), str(r.get("probe"))): (i, r) for i, r in enumerate(document.get("results") or [])
    }
    verdicts = {(str(v.get("variant")), str(v.get("probe"))): v for v in document.get("verdicts") or []}
    ctx = _Context(document, encoder, variant_index, reference, results, verdicts, max_samples)
    modalities = _modalities(document)
    matrix = _matrix(ctx, modalities, variant_names)
    sections = _sections(ctx, modalities, variant_names)
    attach_media(sections, encoder)
    collapse, collapse_labels = _collapse_chart(ctx, variant_names)
    counts: dict[str, int] = {}
    for row in matrix:
        if not row.is_reference:
            for cell in row.cells:
                counts[cell.status] = counts.get(cell.status, 0) + 1
    return ReportView(
        title="omnicheck review",
        document=document,
        json_name=json_name,
        reference=reference,
        modalities=modalities,
        variants=[dict(v) for v in sorted(document.get("variants") or [], key=lambda v: not v.get("is_reference"))],
        matrix=matrix,
        headlines=headlines(matrix),
        sections=sections,
        retention=_retention_chart(ctx, modalities, variant_names),
        differences=_difference_charts(ctx, variant_names),
        collapse=collapse,
        collapse_labels=collapse_labels,
        findings=_findings(ctx, variant_names),
        speed=_speed_rows(document),
        counts=counts,
        status_legend=[
            ("PASS", status_class("PASS"), "as good as the reference within the threshold"),
            ("DEGRADED", status_class("DEGRADED"), "measurably worse, beyond the threshold"),
            ("BROKEN", status_class("BROKEN"), "the modality does not work"),
            ("INCONCLUSIVE", status_class("INCONCLUSIVE"), "too few samples to decide"),
            ("ERROR", status_class("ERROR"), "the variant or probe failed to run"),
            ("SKIPPED", status_class("SKIPPED"), "not run: the model has no such input"),
        ],
    )


# --- Jinja2 ---


def _environment() -> "Any":
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "svg.j2", "html"), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_number
    env.filters["signed"] = fmt_signed
    env.filters["pct"] = fmt_percent
    env.filters["status_class"] = status_class
    env.filters["created"] = fmt_created
    env.filters["shell"] = lambda argv: shlex.join(str(a) for a in argv) if isinstance(argv, (list, tuple)) else str(argv)
    env.filters["as_text"] = as_text
    env.filters["r1"] = lambda v: f"{float(v):.1f}"
    env.globals["is_mapping"] = lambda v: isinstance(v, Mapping)
    env.globals["is_sequence"] = lambda v: isinstance(v, (list, tuple))
    return env


def csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


def render_html_string(
    document: Mapping[str, Any],
    json_name: str = "omnicheck.json",
    media_budget_bytes: int = DEFAULT_BUDGET_BYTES,
    max_samples: int = MAX_SAMPLES,
) -> str:
    env = _environment()
    encoder = MediaEncoder(budget_bytes=media_budget_bytes)
    view = build_view(document, json_name, encoder, max_samples)
    view.media_bytes = encoder.spent_bytes
    script = env.get_template("_filters.js.j2").render()
    styles = env.get_template("_style.css.j2").render()
    policy = (
        "default-src 'none'; img-src data:; media-src data:; "
        f"style-src 'unsafe-inline'; script-src {csp_hash(script)}; base-uri 'none'; form-action 'none'"
    )
    from markupsafe import Markup

    return env.get_template(MAIN_TEMPLATE).render(
        view=view, script=Markup(script), styles=Markup(styles), policy=policy
    )


def render_html(
    document: Mapping[str, Any],
    out_path: Path,
    json_name: str = "omnicheck.json",
    media_budget_bytes: int = DEFAULT_BUDGET_BYTES,
    max_samples: int = MAX_SAMPLES,
) -> Path:
    """Write the review report for an omnicheck.json document; returns the path written.

    media_budget_bytes caps the embedded media (past it, media is named, not embedded); max_samples caps the
    samples shown per variant and probe (worst first). Everything left out stays in the JSON document.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    html = render_html_string(document, json_name, media_budget_bytes, max_samples)
    out_path.write_text(html, encoding="utf-8")
    return out_path


def pytest_html_extras(verdict_json: Mapping[str, Any]) -> str:
    """A small HTML snippet for one verdict, for pytest-html's per-test extras (extras.html(snippet))."""
    env = _environment()
    status = str(verdict_json.get("status") or "")
    return env.get_template("_pytest_html.html.j2").render(
        verdict=verdict_json, status=status, status_class=status_class(status), figure=key_figure(verdict_json)
    )
