"""The per-variant, per-modality table of docs/experiment-omni-small.md, from an omnicheck.json.

    python scripts/omni_experiment_table.py reports/omnicheck.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MODALITIES = ("text", "image", "audio", "video")


def cell(verdict: dict) -> str:
    if verdict["status"] == "REFERENCE":
        return ""
    ref, var, diff = verdict.get("reference_value"), verdict.get("variant_value"), verdict.get("difference")
    interval = verdict.get("interval")
    figures = f"{ref:.3f} -> {var:.3f} ({diff:+.3f}" if None not in (ref, var, diff) else ""
    if figures and interval:
        figures += f", 90% [{interval[0]:+.3f}, {interval[1]:+.3f}]"
    return f"**{verdict['status']}** {figures + ')' if figures else ''}".strip()


def table(document: dict) -> str:
    verdicts = document["verdicts"]
    reference = document["run"]["reference"]
    probes = {v["modality"]: v["probe"] for v in verdicts}
    columns = [m for m in MODALITIES if m in probes]
    ref_row = {v["modality"]: v for v in verdicts if v["variant"] == reference}
    lines = ["| variant | " + " | ".join(f"{m} ({probes[m]}: {ref_row[m].get('metric') or ''})" for m in columns) + " |",
             "| --- |" + " --- |" * len(columns)]
    ref_values = []
    for m in columns:
        result = next(r for r in document["results"] if r["variant"] == reference and r["probe"] == probes[m])
        metric = result["metrics"][0]["name"] if result.get("metrics") else ""
        values = [s["scores"][metric] for s in result["samples"] if metric in s["scores"]]
        ref_values.append(f"{sum(values) / len(values):.3f} over {len(values)}" if values else "-")
    lines.append(f"| {reference} (reference) | " + " | ".join(ref_values) + " |")
    for name in dict.fromkeys(v["variant"] for v in verdicts if v["variant"] != reference):
        mine = {v["modality"]: v for v in verdicts if v["variant"] == name}
        lines.append(f"| {name} | " + " | ".join(cell(mine[m]) if m in mine else "not run" for m in columns) + " |")
    return "\n".join(lines)


def findings(document: dict) -> str:
    rows = [f"- {f.get('variant')}: {f.get('message')}" for f in document.get("findings", [])
            if f.get("message") and not f.get("code")]
    return "\n".join(rows) or "- none"


def main(argv: list[str]) -> int:
    document = json.loads(Path(argv[0]).read_text())
    print(table(document))
    print()
    print(findings(document))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
