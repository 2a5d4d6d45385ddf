"""The view the template draws: plain dataclasses, filled by view_build.build_view from the document."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from omnicheck.report import charts
from omnicheck.report.diff import Piece
from omnicheck.report.divergence_chart import DivergenceChart, TokenMark
from omnicheck.report.figures import Figure
from omnicheck.report.media import Preview


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
    divergence: str = ""  # teacher-forced divergence on this sample, in words
    tokens: list[TokenMark] = field(default_factory=list)  # the reference's answer, marked by the variant's top-1

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
    engine: str = ""  # e.g. "vLLM 0.32.0 (served)"
    cross_engine: bool = False  # judged against a reference that ran on another engine


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
    divergence: DivergenceChart | None
    findings: list[tuple[str, list[FindingView]]]
    speed: list[dict[str, Any]]
    counts: dict[str, int]
    media_bytes: int = 0
    status_legend: list[tuple[str, str, str]] = field(default_factory=list)
    engine_notes: list[str] = field(default_factory=list)  # engines.engine_lines: empty when one engine ran all
