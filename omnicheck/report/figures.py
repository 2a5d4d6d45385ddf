"""The key figure of a verdict: the one number (with its interval) a reader compares against the threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from omnicheck.report.format import as_float, fmt_number, fmt_percent, fmt_signed


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
