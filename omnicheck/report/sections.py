"""The per-modality sections: a block per variant, a block per probe in it, and its samples worst first, each with
its output beside the reference's (differences marked), its scores, its flags and its media."""

from __future__ import annotations

import difflib
import math
from typing import Any, Mapping, Sequence

from omnicheck.report.detectors import recorded_flags, sample_flags
from omnicheck.report.diff import Piece, alignment_pieces, plain_pieces, word_diff
from omnicheck.report.divergence_chart import token_strip
from omnicheck.report.figures import key_figure
from omnicheck.report.format import as_float, as_text, clip_text, fmt_number, fmt_signed, status_class, worst_status
from omnicheck.report.index import DocumentIndex, block_anchor, probe_anchor, probes_by_modality
from omnicheck.report.media import MediaEncoder, media_kind
from omnicheck.report.views import ModalitySection, ProbeBlock, SampleView, ScoreRow, VariantBlock

OPEN_SAMPLES = 3  # worst samples shown open per variant and probe; the rest are folded


def modality_sections(ctx: DocumentIndex, modalities: Sequence[str], variant_names: Sequence[str]) -> list[ModalitySection]:
    probes = probes_by_modality(ctx.document)
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


def _probe_block(ctx: DocumentIndex, variant: str, probe: str, modality: str) -> ProbeBlock:
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
            result_entry[0] if result_entry else -1, sample_index, sample, reference_sample, modality,
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


def _sample_view(
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
    record = extra.get("divergence")
    return SampleView(
        divergence=divergence_words(record),
        tokens=token_strip(record),
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


def divergence_words(record: Mapping[str, Any] | None) -> str:
    """'KL 0.0012 nats per token · top-1 agreement 96% · first diverging token #5 "red"', or ''."""
    if not record:
        return ""
    text = f"KL {record['kl_mean']:.3g} nats per token · top-1 agreement {record['agreement']:.0%}"
    first = record.get("first_divergence")
    if first is None:
        return text + " · the variant's greedy answer is the reference's, token for token"
    tokens = record.get("tokens") or []
    token = repr(tokens[first]) if first < len(tokens) else "the end of the answer"
    return text + f" · first diverging token #{first} {token}"


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


def attach_media(sections: Sequence[ModalitySection], encoder: MediaEncoder) -> None:
    """Encode media for open samples of every section first, then folded ones: a spent budget hits the least read."""
    blocks = [(b, p) for section in sections for b in section.blocks for p in b.probes]
    ordered = [s for b, p in blocks if not b.is_reference for s in p.samples_open]
    ordered += [s for b, p in blocks if not b.is_reference for s in p.samples_folded]
    ordered += [s for b, p in blocks if b.is_reference for s in p.samples_open + p.samples_folded]
    for sample in ordered:
        sample.previews = [encoder.preview(path, kind) for path, kind in sample.media]  # type: ignore[arg-type]

