"""How the report writes values: numbers, signed differences, shares, timestamps, status classes, clipped text.

Also how a cell takes the worst of its probes' statuses: Status's own severity, with the report's NO VERDICT beside it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Iterable

from omnicheck.report import charts
from omnicheck.types import Status

NO_VERDICT = "NO VERDICT"  # shown where a probe ran but no verdict was made; ranks just below INCONCLUSIVE
MAX_TEXT_CHARS = 3000


def fmt_number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "∞" if value > 0 else ("-∞" if value < 0 else "NaN")
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    text = f"{value:.3g}" if abs(value) >= 0.001 else f"{value:.2e}"
    return text


def fmt_signed(value: float | None) -> str:
    if value is None:
        return "–"
    return charts.fmt_signed(value, fmt_number)


def fmt_percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value * 100:.0f}%" if abs(value) >= 0.1 else f"{value * 100:.1f}%"


def fmt_created(value: Any) -> str:
    """An ISO 8601 timestamp as 'YYYY-MM-DD HH:MM UTC+hh:mm'; anything else as written."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value or "")
    zone = moment.strftime("%z")
    suffix = f" UTC{zone[:3]}:{zone[3:]}" if zone else ""
    return moment.strftime("%Y-%m-%d %H:%M") + suffix


def status_class(status: str | None) -> str:
    return "status-" + re.sub(r"[^a-z]+", "-", (status or "none").lower()).strip("-")


def status_severity(status: str) -> float | None:
    """Status's severity for a verdict status, NO_VERDICT's just below INCONCLUSIVE, None for anything else."""
    if status == NO_VERDICT:
        return Status.INCONCLUSIVE.severity - 0.5
    return Status(status).severity if status in Status.__members__ else None


def worst_status(statuses: Iterable[str]) -> str | None:
    ranked = [s for s in statuses if status_severity(s) is not None]
    return max(ranked, key=status_severity) if ranked else None  # type: ignore[arg-type]


def clip_text(text: str, limit: int = MAX_TEXT_CHARS) -> tuple[str, int]:
    """The text cut to limit characters, and how many were cut (kept in omnicheck.json)."""
    return (text, 0) if len(text) <= limit else (text[:limit], len(text) - limit)


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return " | ".join(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def as_float(value: Any) -> float | None:
    """Numbers (and booleans, as pass/fail scores) as float; anything else as None."""
    if not isinstance(value, (int, float)):
        return None
    return float(value)
