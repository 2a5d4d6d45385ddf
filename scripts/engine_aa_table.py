"""The A/A across engines of docs/experiment-served.md, from an omnicheck.json whose run held the same weights on two
engines (the document's "engines" block finds them by their safetensors).

    python scripts/engine_aa_table.py reports/omnicheck.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(document: dict) -> str:
    engines = document["engines"]
    if not engines.get("engine_alone"):
        raise SystemExit("this run holds no variant with the reference's own weights on another engine")
    labels = {v["name"]: (v.get("engine") or {}).get("label") for v in document["variants"]}
    reference = engines["reference"]
    verdicts = {(v["variant"], v["probe"]): v for v in document["verdicts"]}
    lines = []
    for name, probes in engines["engine_alone"].items():
        lines += [f"reference {reference} on {labels[reference]}; {name} on {labels[name]} (same safetensors)", "",
                  "| probe | samples | identical outputs | mean word F1 | metric: reference -> other engine "
                  "| verdict |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for probe, figures in probes.items():
            verdict = verdicts[(name, probe)]
            share, similarity = figures.get("identical_share"), figures.get("mean_similarity")
            values = (verdict.get("reference_value"), verdict.get("variant_value"))
            metric = (f"{verdict.get('metric')}: {values[0]:.3f} -> {values[1]:.3f}" if None not in values else "-")
            lines.append(f"| {probe} | {figures.get('n')} | "
                         f"{'-' if share is None else f'{100 * share:.0f}%'} | "
                         f"{'-' if similarity is None else f'{similarity:.3f}'} | {metric} | {verdict['status']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(json.loads(Path(sys.argv[1]).read_text())))
