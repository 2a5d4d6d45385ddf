"""Chart geometry for the report's inline SVG: pure functions from numbers to positions.

The template draws the SVG elements from these objects (so every label is autoescaped); nothing here writes markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class ForestRow:
    """One variant x modality (probe) on the retention chart: a dot and its interval, or only a figure."""

    y: float
    variant: str
    probe: str
    modality: str
    status: str
    figure: str
    href: str
    x: float | None = None  # None: this verdict has no retention (a difference-gated metric such as WER)
    x_lo: float | None = None
    x_hi: float | None = None
    clipped_low: bool = False
    clipped_high: bool = False
    threshold_x: float | None = None


@dataclass(frozen=True)
class ForestChart:
    width: float
    height: float
    plot_left: float
    plot_right: float
    top: float
    bottom: float
    ticks: list[Tick]
    one_x: float  # where retention = 1.0 (the reference) sits
    rows: list[ForestRow]


@dataclass(frozen=True)
class RetentionInput:
    variant: str
    probe: str
    modality: str
    status: str
    figure: str
    href: str
    retention: float | None
    interval: tuple[float, float] | None
    threshold: float | None  # a retention threshold, when the gate is a ratio


ROW_HEIGHT = 26.0


def linear(domain: tuple[float, float], pixels: tuple[float, float]) -> Callable[[float], float]:
    (d0, d1), (p0, p1) = domain, pixels
    span = (d1 - d0) or 1.0
    return lambda v: p0 + (v - d0) * (p1 - p0) / span


def nice_step(span: float, target_ticks: int = 6) -> float:
    raw = span / max(1, target_ticks)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for multiple in (1, 2, 2.5, 5, 10):
        if multiple * magnitude >= raw:
            return multiple * magnitude
    return 10 * magnitude


def ticks(lo: float, hi: float, scale: Callable[[float], float], fmt: Callable[[float], str]) -> list[Tick]:
    step = nice_step(hi - lo)
    first = math.ceil(lo / step - 1e-9) * step
    out = []
    value = first
    while value <= hi + 1e-9:
        out.append(Tick(scale(value), fmt(value)))
        value += step
    return out


def retention_chart(items: list[RetentionInput], width: float = 1000.0) -> ForestChart:
    """Forest plot of retention (variant / reference) with intervals; the domain always shows 0 and 1."""
    plot_left, plot_right = 210.0, width - 260.0
    top = 28.0
    values = [v for it in items for v in (it.retention, *(it.interval or ())) if v is not None and math.isfinite(v)]
    lo = max(-0.5, min([0.0, *values]))
    hi = min(2.0, max([1.2, *values]))
    scale = linear((lo, hi), (plot_left, plot_right))
    rows = []
    for i, it in enumerate(items):
        y = top + (i + 0.5) * ROW_HEIGHT
        x = x_lo = x_hi = None
        clipped_low = clipped_high = False
        if it.retention is not None and math.isfinite(it.retention):
            x = scale(min(hi, max(lo, it.retention)))
            clipped_low, clipped_high = it.retention < lo, it.retention > hi
            if it.interval is not None:
                a, b = sorted(it.interval)
                clipped_low |= a < lo
                clipped_high |= b > hi
                x_lo, x_hi = scale(max(lo, a)), scale(min(hi, b))
        threshold_x = scale(it.threshold) if it.threshold is not None and lo <= it.threshold <= hi else None
        rows.append(
            ForestRow(
                y=y, variant=it.variant, probe=it.probe, modality=it.modality, status=it.status,
                figure=it.figure, href=it.href, x=x, x_lo=x_lo, x_hi=x_hi,
                clipped_low=clipped_low, clipped_high=clipped_high, threshold_x=threshold_x,
            )
        )
    bottom = top + len(items) * ROW_HEIGHT
    return ForestChart(
        width=width, height=bottom + 30.0, plot_left=plot_left, plot_right=plot_right, top=top, bottom=bottom,
        ticks=ticks(lo, hi, scale, lambda v: f"{v * 100:.0f}%"), one_x=scale(1.0), rows=rows,
    )


# --- per-sample differences (variant - reference) ---


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    worse: bool
    label: str  # tooltip: sample id and the two values
    href: str


@dataclass(frozen=True)
class DifferenceBand:
    variant: str
    top: float
    zero_y: float
    bars: list[Bar]
    worse_count: int
    better_count: int


@dataclass(frozen=True)
class DifferenceChart:
    probe: str
    metric: str
    higher_is_better: bool
    width: float
    height: float
    plot_left: float
    plot_right: float
    limit: float  # bars span -limit..+limit
    limit_label: str
    bands: list[DifferenceBand]


@dataclass(frozen=True)
class SampleDifference:
    sample_id: str
    difference: float  # variant - reference, in the metric's own units
    reference: float
    variant: float
    href: str


BAND_HEIGHT = 64.0
MAX_SLOT = 36.0  # a bar's slot never grows wider than this, however few samples


def difference_chart(
    probe: str,
    metric: str,
    higher_is_better: bool,
    per_variant: list[tuple[str, list[SampleDifference]]],
    fmt: Callable[[float], str],
    width: float = 760.0,
) -> DifferenceChart:
    """One band per variant, one bar per sample, worst first; bars go up when the variant is worse."""
    plot_left, plot_right = 150.0, width - 20.0
    finite = [abs(d.difference) for _, ds in per_variant for d in ds if math.isfinite(d.difference)]
    limit = max(finite, default=0.0) or 1.0
    bands = []
    top = 10.0
    for variant, diffs in per_variant:
        ordered = sorted(diffs, key=lambda d: _worseness(d.difference, higher_is_better), reverse=True)
        half = (BAND_HEIGHT - 12.0) / 2
        zero_y = top + 6.0 + half
        slot = min(MAX_SLOT, (plot_right - plot_left) / max(1, len(ordered)))
        bars = []
        for i, d in enumerate(ordered):
            worse_by = _worseness(d.difference, higher_is_better)
            size = min(1.0, abs(d.difference) / limit) * half if math.isfinite(d.difference) else half
            height = max(size, 1.0)
            y = zero_y - height if worse_by > 0 else zero_y
            if worse_by == 0:
                y, height = zero_y - 0.5, 1.0
            bars.append(
                Bar(
                    x=plot_left + i * slot + slot * 0.15, y=y, width=max(1.0, slot * 0.7), height=height,
                    worse=worse_by > 0,
                    label=f"{d.sample_id}: reference {fmt(d.reference)}, variant {fmt(d.variant)}, "
                    f"difference {fmt_signed(d.difference, fmt)}",
                    href=d.href,
                )
            )
        bands.append(
            DifferenceBand(
                variant=variant, top=top, zero_y=zero_y, bars=bars,
                worse_count=sum(1 for d in diffs if _worseness(d.difference, higher_is_better) > 0),
                better_count=sum(1 for d in diffs if _worseness(d.difference, higher_is_better) < 0),
            )
        )
        top += BAND_HEIGHT
    return DifferenceChart(
        probe=probe, metric=metric, higher_is_better=higher_is_better, width=width, height=top + 8.0,
        plot_left=plot_left, plot_right=plot_right, limit=limit, limit_label=fmt(limit), bands=bands,
    )


def _worseness(difference: float, higher_is_better: bool) -> float:
    if not math.isfinite(difference):
        return math.inf
    return -difference if higher_is_better else difference


def fmt_signed(value: float, fmt: Callable[[float], str]) -> str:
    text = fmt(value)
    return text if text.startswith("-") or value == 0 else f"+{text}"


# --- collapse counts (dead-modality detectors) ---


@dataclass(frozen=True)
class CollapseCell:
    x: float
    width: float  # of the filled part
    full_width: float
    count: int
    n: int
    label: str


@dataclass(frozen=True)
class CollapseRow:
    y: float
    variant: str
    probe: str
    status: str
    href: str
    cells: list[CollapseCell]


@dataclass(frozen=True)
class CollapseChart:
    width: float
    height: float
    detectors: list[str]
    header_x: list[float]
    rows: list[CollapseRow]
    cell_width: float


@dataclass(frozen=True)
class CollapseInput:
    variant: str
    probe: str
    status: str
    href: str
    counts: dict[str, int]
    n: int


def collapse_chart(items: list[CollapseInput], detectors: list[str], width: float = 760.0) -> CollapseChart:
    """A bar table: one row per variant x probe, one column per detector, bar = flagged samples / samples."""
    left = 210.0
    cell_width = (width - left - 10.0) / max(1, len(detectors))
    rows = []
    top = 30.0
    for i, it in enumerate(items):
        y = top + i * ROW_HEIGHT
        cells = []
        for j, detector in enumerate(detectors):
            count = int(it.counts.get(detector, 0))
            full = cell_width - 54.0
            share = count / it.n if it.n else 0.0
            cells.append(
                CollapseCell(
                    x=left + j * cell_width, width=max(0.0, min(1.0, share)) * full, full_width=full,
                    count=count, n=it.n, label=f"{count}/{it.n}" if it.n else str(count),
                )
            )
        rows.append(CollapseRow(y=y, variant=it.variant, probe=it.probe, status=it.status, href=it.href, cells=cells))
    return CollapseChart(
        width=width, height=top + len(items) * ROW_HEIGHT + 8.0, detectors=detectors,
        header_x=[left + j * cell_width for j in range(len(detectors))], rows=rows, cell_width=cell_width,
    )
