"""The findings section: load errors, quant-card lints, run findings, detector notes and problem verdicts,
grouped by variant, each listed once, most fundamental source first."""

from __future__ import annotations

from typing import Sequence

from omnicheck.report.index import DocumentIndex
from omnicheck.report.views import FindingView

PROBLEM_STATUSES = frozenset({"ERROR", "BROKEN", "DEGRADED", "INCONCLUSIVE"})
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
FINDING_SOURCES = ("load", "lint", "finding", "detector", "verdict")  # order in the findings section


def findings_by_variant(ctx: DocumentIndex, variant_names: Sequence[str]) -> list[tuple[str, list[FindingView]]]:
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
        detector_severity = "warning" if status in PROBLEM_STATUSES else "info"
        for text in verdict.get("findings") or []:
            grouped.setdefault(name, []).append(
                FindingView(detector_severity, str(verdict.get("probe")), str(text), verdict.get("modality"), "detector")
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

