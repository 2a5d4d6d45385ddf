"""What the charts show, read from the document: retention per verdict, per-sample score differences per probe,
and collapse detector counts per variant and probe. charts.py turns these into geometry."""

from __future__ import annotations

from typing import Sequence

from omnicheck.report import charts
from omnicheck.report.detectors import DETECTOR_LABELS, DETECTOR_ORDER, collapse_counts
from omnicheck.report.figures import gate_kind, key_figure, retention_interval
from omnicheck.report.format import as_float, fmt_number
from omnicheck.report.index import DocumentIndex, probe_anchor, probes_by_modality


def retention(ctx: DocumentIndex, modalities: Sequence[str], variant_names: Sequence[str]) -> charts.ForestChart | None:
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


def differences(ctx: DocumentIndex, variant_names: Sequence[str]) -> list[charts.DifferenceChart]:
    out = []
    probes = [p for ps in probes_by_modality(ctx.document).values() for p in ps]
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


def collapse(ctx: DocumentIndex, variant_names: Sequence[str]) -> tuple[charts.CollapseChart | None, list[str]]:
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
