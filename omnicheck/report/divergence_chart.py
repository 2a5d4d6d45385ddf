"""Report geometry for teacher-forced divergence: the per-modality KL chart and the per-token agreement strip.

Pure functions from numbers to positions and classes; the template draws them (autoescaped).
KL spans many decades (a copy's 0, a floor near 1e-5, a dead modality near 3 nats), so the axis is logarithmic,
with 0 drawn at the left edge and labelled as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from omnicheck.report.charts import Tick

LOG_LO, LOG_HI = -6.0, 1.0  # 1e-6 .. 10 nats per token


@dataclass(frozen=True)
class DivergenceRow:
    y: float
    variant: str
    modality: str
    label: str  # "0.0011 nats (112x floor)"
    x: float
    x_lo: float
    x_hi: float
    floor_x: float | None
    status: str


@dataclass(frozen=True)
class DivergenceChart:
    width: float
    height: float
    plot_left: float
    plot_right: float
    top: float
    bottom: float
    ticks: list[Tick]
    rows: list[DivergenceRow]
    pass_x: float | None  # divergence_pass_kl
    broken_x: float | None  # divergence_broken_kl


def _x(value: float, left: float, right: float) -> float:
    if value <= 0:
        return left
    frac = (min(max(math.log10(value), LOG_LO), LOG_HI) - LOG_LO) / (LOG_HI - LOG_LO)
    return left + frac * (right - left)


def divergence_chart(document: Mapping[str, Any], width: float = 1000.0, row_height: float = 22.0) -> DivergenceChart | None:
    """One row per variant x modality that has per-modality divergence; None when no variant has any."""
    left, right, top = 260.0, width - 230.0, 28.0
    rows: list[DivergenceRow] = []
    statuses = document.get("matrix", {})
    for variant in document.get("variants", []):
        per = ((variant.get("description") or {}).get("divergence") or {}).get("per_modality") or {}
        for modality in ("text", "image", "audio", "video"):
            d = per.get(modality)
            if not d:
                continue
            lo, hi = d["kl_interval"]
            times = d.get("times_floor")
            label = f"{_kl(d['kl_mean'])} nats" + (f" ({_times(times)} floor)" if times is not None else "")
            rows.append(DivergenceRow(
                y=top + len(rows) * row_height + row_height / 2, variant=variant["name"], modality=modality,
                label=label, x=_x(d["kl_mean"], left, right), x_lo=_x(lo, left, right), x_hi=_x(hi, left, right),
                floor_x=_x(d["floor"], left, right) if d.get("floor") else None,
                status=statuses.get(variant["name"], {}).get(modality, ""),
            ))
    if not rows:
        return None
    bottom = top + len(rows) * row_height
    ticks = [Tick(left, "0")] + [Tick(_x(10.0**e, left, right), f"1e{e}") for e in range(int(LOG_LO) + 1, int(LOG_HI) + 1)]
    thresholds = ((document.get("run") or {}).get("thresholds") or {}).get("thresholds", {}).get("default", {})
    pass_kl, broken_kl = thresholds.get("divergence_pass_kl"), thresholds.get("divergence_broken_kl")
    return DivergenceChart(width, bottom + 34.0, left, right, top, bottom, ticks, rows,
                           _x(pass_kl, left, right) if pass_kl else None, _x(broken_kl, left, right) if broken_kl else None)


@dataclass(frozen=True)
class TokenMark:
    text: str
    kind: str  # "same" | "differs" | "first" (the first position where the variant's top-1 leaves the answer)
    kl: float
    shade: float  # 0..1, for the background: log-scaled KL


def token_strip(record: Mapping[str, Any] | None, limit: int = 400) -> list[TokenMark]:
    """The reference's answer token by token, each marked by whether the variant's top-1 agrees there, with the
    position after the last token shown as the end of the answer."""
    if not record:
        return []
    tokens: Sequence[str] = list(record.get("tokens", [])) + ["\u23ce end"]
    first = record.get("first_divergence")
    marks = []
    for i, (text, same, kl) in enumerate(zip(tokens, record.get("agree", []), record.get("kl", []))):
        if i >= limit:
            break
        kind = "first" if i == first else "same" if same else "differs"
        shade = 0.0 if kl <= 0 else min(1.0, max(0.0, (math.log10(kl) - LOG_LO) / (LOG_HI - LOG_LO)))
        marks.append(TokenMark(text, kind, float(kl), round(shade, 3)))
    return marks


def _kl(x: float) -> str:
    return "0" if x == 0 else f"{x:.2g}"


def _times(x: float) -> str:
    return "0x" if x == 0 else f"{x:.1f}x" if x < 10 else f"{x:,.0f}x"
