"""build_view: the omnicheck.json document (a plain dict, never live objects) -> the ReportView the template draws.

Each part of the page is built by its own module (matrix, sections, chart_data, findings) from one DocumentIndex.
"""

from __future__ import annotations

from typing import Any, Mapping

from omnicheck.engines import engine_lines
from omnicheck.report import chart_data
from omnicheck.report.divergence_chart import divergence_chart
from omnicheck.report.findings import findings_by_variant
from omnicheck.report.format import as_float, fmt_number, status_class
from omnicheck.report.index import document_modalities, index_document
from omnicheck.report.matrix import headlines, matrix_rows
from omnicheck.report.media import MediaEncoder
from omnicheck.report.sections import attach_media, modality_sections
from omnicheck.report.views import ReportView

MAX_SAMPLES = 40  # per variant and probe in the page (worst first); all of them are in omnicheck.json


def build_view(
    document: Mapping[str, Any], json_name: str, encoder: MediaEncoder, max_samples: int = MAX_SAMPLES
) -> ReportView:
    ctx = index_document(document, max_samples)
    reference = ctx.reference
    variant_names = sorted(ctx.variant_index, key=lambda n: (n != reference, ctx.variant_index[n]))
    modalities = document_modalities(document)
    matrix = matrix_rows(ctx, modalities, variant_names)
    sections = modality_sections(ctx, modalities, variant_names)
    attach_media(sections, encoder)
    collapse, collapse_labels = chart_data.collapse(ctx, variant_names)
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
        retention=chart_data.retention(ctx, modalities, variant_names),
        differences=chart_data.differences(ctx, variant_names),
        collapse=collapse,
        collapse_labels=collapse_labels,
        divergence=divergence_chart(document),
        findings=findings_by_variant(ctx, variant_names),
        speed=_speed_rows(document),
        engine_notes=engine_lines(document.get("engines")),
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

