"""The variant x modality matrix printed at the end of a pytest run: each cell's verdict, the evidence that
decided it, and each variant's teacher-forced divergence per modality."""

from __future__ import annotations

from typing import Any

from omnicheck.engines import engine_lines
from omnicheck.types import MODALITIES, DecidedBy, Status


def cell_evidence(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(variant, modality) -> the mark of what decided the verdict that sets the cell (its worst probe's)."""
    worst: dict[tuple[str, str], dict[str, Any]] = {}
    for verdict in document.get("verdicts", []):
        key = (verdict["variant"], verdict["modality"])
        seen = worst.get(key)
        if seen is None or Status(verdict["status"]).severity > Status(seen["status"]).severity:
            worst[key] = verdict
    marks = {}
    for key, verdict in worst.items():
        decided_by = (verdict.get("details") or {}).get("decided_by")
        if verdict["status"] in ("PASS", "DEGRADED", "BROKEN") and decided_by in {d.value for d in DecidedBy}:
            marks[key] = DecidedBy(decided_by).mark
    return marks


def matrix_lines(document: dict[str, Any]) -> list[str]:
    matrix = document.get("matrix", {})
    variants = [v["name"] for v in document.get("variants", [])]
    engines = document.get("engines") or {}
    cross = set(engines.get("cross_engine") or ())  # marked *: judged against a reference on another engine
    marks = cell_evidence(document)
    width = max([len(v) for v in variants] + [8])
    lines = [f"{'variant':<{width}}  " + "  ".join(f"{m:<15}" for m in MODALITIES)]
    for name in variants:
        row = matrix.get(name, {})
        cross_mark = "*" if name in cross else ""
        cells = []
        for m in MODALITIES:
            status = row[m] + cross_mark if m in row else "-"
            mark = marks.get((name, m))
            cells.append(f"{status + (f' [{mark}]' if mark else ''):<15}")
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    if marks:
        used = [d for d in DecidedBy if d.mark in set(marks.values())]
        lines.append("decided by: " + ", ".join(f"[{d.mark}] {d.value}" for d in used))
    lines += divergence_lines(document, width)
    lines += [f"  {line}" for line in engine_lines(engines)]
    lines += verdict_lines(document)
    for finding in document.get("findings", []):
        if finding.get("severity") in ("error", "warning") or finding.get("code") == "diagnosis":
            lines.append(f"  finding [{finding.get('variant')}]: {finding.get('message')}")
    return lines


def verdict_lines(document: dict[str, Any]) -> list[str]:
    """One line per failing verdict; a variant's probes that failed for the same reason (a variant refused before
    loading fails every probe alike) share one line naming them all."""
    grouped: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for verdict in document.get("verdicts", []):
        if verdict["status"] in ("BROKEN", "DEGRADED", "INCONCLUSIVE", "ERROR"):
            variant, probe, message = verdict["variant"], verdict["probe"], str(verdict["message"])
            reason = message.removeprefix(f"{probe} on {variant}: ")
            grouped.setdefault((variant, verdict["status"], reason), []).append((probe, message))
    lines = []
    for (variant, status, reason), probes in grouped.items():
        if len(probes) == 1:
            lines.append(f"  {variant} {probes[0][0]}: {status}: {probes[0][1]}")
        else:
            lines.append(f"  {variant} {', '.join(p for p, _ in probes)}: {status}: {reason}")
    return lines


def divergence_lines(document: dict[str, Any], width: int) -> list[str]:
    """'divergence' then one row per variant: mean KL per answer token (nats) and its multiple of the A/A floor."""
    rows = []
    for variant in document.get("variants", []):
        per = ((variant.get("description") or {}).get("divergence") or {}).get("per_modality") or {}
        if not per or variant.get("is_reference"):
            continue
        cells = []
        for m in MODALITIES:
            d = per.get(m)
            if d is None:
                cells.append(f"{'-':<15}")
                continue
            times = d.get("times_floor")
            cells.append(f"{_kl(d['kl_mean']) + (f' ({_times(times)})' if times is not None else ''):<15}")
        rows.append(f"{variant['name']:<{width}}  " + "  ".join(cells))
    if not rows:
        return []
    return ["divergence: KL(reference || variant) per answer token in nats (x the A/A noise floor)", *rows]


def _kl(x: float) -> str:
    return "0" if x == 0 else f"{x:.2g}"


def _times(x: float) -> str:
    return "0x" if x == 0 else f"{x:.1f}x" if x < 10 else f"{x:.0f}x" if x < 1e4 else f"{x:.0e}x"
