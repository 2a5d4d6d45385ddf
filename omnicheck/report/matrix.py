"""The variant x modality matrix at the top of the page, and one headline per variant drawn from it."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from omnicheck.report.figures import key_figure
from omnicheck.report.format import NO_VERDICT, as_float, fmt_number, status_class, status_severity, worst_status
from omnicheck.report.index import DocumentIndex, block_anchor
from omnicheck.report.views import Headline, MatrixCell, MatrixRow


def matrix_rows(ctx: DocumentIndex, modalities: Sequence[str], variant_names: Sequence[str]) -> list[MatrixRow]:
    variants = {str(v.get("name")): v for v in ctx.document.get("variants") or []}
    given = ctx.document.get("matrix") or {}
    cross = set((ctx.document.get("engines") or {}).get("cross_engine") or ())
    rows = []
    for variant in variant_names:
        info = variants.get(variant, {})
        is_reference = variant == ctx.reference
        cells = []
        for modality in modalities:
            verdicts = {p: v for (name, p), v in ctx.verdicts.items() if name == variant and v.get("modality") == modality}
            results = {p: r for (name, p), (_, r) in ctx.results.items() if name == variant and r.get("modality") == modality}
            ran = {p for p, r in results.items() if r.get("status") == "ok"}
            status = (given.get(variant) or {}).get(modality) or worst_status(str(v.get("status")) for v in verdicts.values())
            if status is None:
                if info.get("error") or any(r.get("status") == "error" for r in results.values()):
                    status = "ERROR"
                elif ran:
                    status = "REFERENCE" if is_reference else NO_VERDICT
                else:
                    status = "SKIPPED"
            lines = []
            titles = []
            for probe in [*verdicts, *(p for p in results if p not in verdicts)]:
                verdict, result = verdicts.get(probe), results.get(probe, {})
                if verdict is not None and not is_reference:
                    figure = key_figure(verdict)
                    lines.append((probe, figure.main, figure.interval))
                    divergence = _divergence_line(verdict)
                    if divergence:
                        lines.append(divergence)
                elif probe in ran:
                    lines.append((probe, _aggregate_line(result, str((verdict or {}).get("metric") or "") or None), ""))
                if verdict is not None and verdict.get("message"):
                    titles.append(str(verdict["message"]))
                elif result.get("reason"):
                    titles.append(str(result["reason"]))
            href = "#" + block_anchor(ctx.variant_index[variant], modality) if verdicts or results else ""
            if not titles and info.get("error"):
                titles.append(str(info["error"]))
            cells.append(MatrixCell(modality, status, status_class(status), lines, href, " ".join(titles)))
        rows.append(
            MatrixRow(
                variant=variant, is_reference=is_reference,
                error=str(info["error"]) if info.get("error") else None, scheme=_scheme(info), cells=cells,
                engine=str((info.get("engine") or {}).get("label") or ""), cross_engine=variant in cross,
            )
        )
    return rows


def _divergence_line(verdict: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """The verdict's teacher-forced divergence under its score, saying so where it decided the verdict."""
    details = verdict.get("details") or {}
    divergence = details.get("divergence") or {}
    kl = as_float(divergence.get("kl_mean"))
    if divergence.get("status") != "ok" or kl is None:
        return None
    decided = "divergence" in str(details.get("decided_by") or "")
    low, high = (as_float(x) for x in (divergence.get("kl_interval") or (None, None)))
    interval = f"[{fmt_number(low)}, {fmt_number(high)}]" if low is not None and high is not None else ""
    return ("KL", f"{fmt_number(kl)} nats/token" + (" · decided this" if decided else ""), interval)


def headlines(matrix: Sequence[MatrixRow]) -> list[Headline]:
    """One line per variant: its worst status, then which modalities got which verdict."""
    out = []
    for row in matrix:
        if row.is_reference:
            continue
        status = worst_status(c.status for c in row.cells) or "SKIPPED"
        first_href = next((c.href for c in row.cells if c.status == status and c.href), "")
        if row.error:
            out.append(Headline(row.variant, "ERROR", status_class("ERROR"), f"failed to load: {row.error}", first_href))
            continue
        by_status: dict[str, list[str]] = {}
        for cell in row.cells:
            by_status.setdefault(cell.status, []).append(cell.modality)
        parts = []
        for name in sorted(by_status, key=lambda n: -status_severity(n) if status_severity(n) is not None else 99):
            label = "not run on" if name == "SKIPPED" else f"{name} on"
            parts.append(f"{label} {', '.join(by_status[name])}")
        out.append(Headline(row.variant, status, status_class(status), " · ".join(parts), first_href))
    return out


def _scheme(variant: Mapping[str, Any]) -> str:
    card = variant.get("quant_card")
    if not isinstance(card, dict):
        return "unquantized" if variant.get("is_reference") else ""
    parts = [str(card[k]) for k in ("format", "scheme") if card.get(k)]
    return " · ".join(parts)


def _aggregate_line(result: Mapping[str, Any], metric: str | None = None) -> str:
    aggregates = result.get("aggregates") or {}
    name = metric or next((str(m.get("name")) for m in result.get("metrics") or []), None)
    value = as_float(aggregates.get(name)) if name else None
    return f"{name} {fmt_number(value)}" if value is not None else ""


