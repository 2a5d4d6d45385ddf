"""The report over verdicts made by the real gate (omnicheck.gate) from the sample document's results: the
report reads the gate's own schema (threshold_kind, retention_interval, collapse comparisons and counts)."""

from __future__ import annotations

import json
from typing import Any

from htmlscan import scan, text_of

from omnicheck import gate
from omnicheck.report.figures import key_figure
from omnicheck.report.media import MediaEncoder
from omnicheck.report.render import render_html_string
from omnicheck.report.view_build import build_view


def _judged_document(document: dict[str, Any]) -> dict[str, Any]:
    from omnicheck.config import Thresholds
    from omnicheck.types import ProbeResult

    results = {(r["variant"], r["probe"]): ProbeResult.from_json(r) for r in document["results"]}
    thresholds = Thresholds(min_samples=2)
    verdicts = []
    for (_, probe), result in results.items():
        reference = results[("bf16", probe)]
        verdicts.append(gate.judge(reference, result, thresholds, resamples=500, seed=1))
    matrix: dict[str, dict[str, str]] = {}
    severity = ("ERROR", "BROKEN", "DEGRADED", "INCONCLUSIVE", "PASS", "REFERENCE", "SKIPPED")
    for verdict in verdicts:
        row = matrix.setdefault(verdict.variant, {})
        current = row.get(verdict.modality)
        if current is None or severity.index(verdict.status) < severity.index(current):
            row[verdict.modality] = verdict.status
    cards = {v["name"]: v.get("quant_card") for v in document["variants"]}
    findings = [
        {"variant": name, "modality": None, "severity": "error", "code": "diagnosis", "message": text}
        for name in ("w4a16", "w4a4")
        for text in gate.diagnose([v for v in verdicts if v.variant == name], cards[name])
    ]
    judged = dict(document, verdicts=[v.to_json() for v in verdicts], matrix=matrix, findings=findings)
    return json.loads(json.dumps(judged))  # exactly what omnicheck.json holds


def test_report_renders_the_gates_verdicts(sample_document_master: dict[str, Any]) -> None:
    document = _judged_document(sample_document_master)
    html = render_html_string(document, media_budget_bytes=0)
    elements = scan(html)
    cells = {
        (next(a.attrs.get("data-variant") for a in reversed(e.ancestors) if a.tag == "tr"), e.attrs["data-modality"]): e
        for e in elements if e.tag == "td" and "cell" in e.classes and " " not in e.attrs["data-modality"]
    }
    for variant, row in document["matrix"].items():
        for modality, status in row.items():
            assert cells[(variant, modality)].attrs["data-status"] == status
    for verdict in document["verdicts"]:
        if verdict["status"] not in ("REFERENCE",):
            figure = key_figure(verdict)
            assert figure.main and figure.main in text_of(cells[(verdict["variant"], verdict["modality"])])
    statuses = {(v["variant"], v["probe"]): v["status"] for v in document["verdicts"]}
    assert statuses[("w4a4", "speech_wer")] in ("BROKEN", "DEGRADED"), "the garbled speech is caught by the real gate"


def test_collapse_chart_counts_are_the_gates(sample_document_master: dict[str, Any]) -> None:
    document = _judged_document(sample_document_master)
    view = build_view(document, "omnicheck.json", MediaEncoder(budget_bytes=0))
    assert view.collapse is not None
    rows = {(r.variant, r.probe): r for r in view.collapse.rows}
    detectors = view.collapse.detectors
    for verdict in document["verdicts"]:
        if verdict["variant"] == "bf16":
            expected = {d: n for d, n in verdict["details"]["collapse_counts"].items()}
        else:
            expected = {c["detector"]: c["variant"] for c in verdict["details"]["collapse"]["comparisons"]}
        row = rows[(verdict["variant"], verdict["probe"])]
        shown = {d: cell.count for d, cell in zip(detectors, row.cells)}
        assert shown == {d: expected.get(d, 0) for d in detectors}
    w4a4_video = rows[("w4a4", "video_describe")]
    assert dict(zip(detectors, (c.count for c in w4a4_video.cells)))["empty"] == 1
