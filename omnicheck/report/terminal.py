"""The variant x modality matrix printed at the end of a pytest run."""

from __future__ import annotations

from typing import Any

from omnicheck.engines import engine_lines
from omnicheck.types import MODALITIES


def matrix_lines(document: dict[str, Any]) -> list[str]:
    matrix = document.get("matrix", {})
    variants = [v["name"] for v in document.get("variants", [])]
    engines = document.get("engines") or {}
    cross = set(engines.get("cross_engine") or ())  # marked *: judged against a reference on another engine
    width = max([len(v) for v in variants] + [8])
    lines = [f"{'variant':<{width}}  " + "  ".join(f"{m:<12}" for m in MODALITIES)]
    for name in variants:
        row = matrix.get(name, {})
        mark = "*" if name in cross else ""
        lines.append(f"{name:<{width}}  " + "  ".join(f"{row[m] + mark if m in row else '-':<12}" for m in MODALITIES))
    lines += [f"  {line}" for line in engine_lines(engines)]
    for verdict in document.get("verdicts", []):
        if verdict["status"] in ("BROKEN", "DEGRADED", "INCONCLUSIVE", "ERROR"):
            lines.append(f"  {verdict['variant']} {verdict['probe']}: {verdict['status']}: {verdict['message']}")
    for finding in document.get("findings", []):
        if finding.get("severity") in ("error", "warning") or finding.get("code") == "diagnosis":
            lines.append(f"  finding [{finding.get('variant')}]: {finding.get('message')}")
    return lines
