"""Judge every Gemma 4 write-up recipe checkpoint against the bf16 base it was made from, one modality per column,
and write the recipe x modality table (verdict and cause) as markdown.

    PYTHONPATH=. /work/main/.venv/bin/python scripts/recipe_table.py --out /tmp/tiny.md [--limit 10]
    PYTHONPATH=. /work/main/.venv/bin/python scripts/recipe_table.py --omni /work/recipes-omni --out /tmp/omni.md

Default: fixtures/checkpoints' recipe panel (PROVENANCE.md there), real llmcompressor 0.14 and ModelOpt 0.47
outputs on tiny RANDOM gemma4_unified / gemma4 models, each against its base on the bundled probe data. A random
model's answers are noise: both score ~0, so a PASS there says "no worse than noise", and what tells is the
agreement with the reference's own outputs (in the causes) and the load (a variant refused before loading shows
that refusal). --omni DIR: the same recipes made from the trained omni-small by `scripts/build_quant_panel.py omni`
(written to DIR, not committed), judged against omni-small on its held-out sets, as the demo does.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PANEL = ROOT / "fixtures" / "checkpoints"
PROBES = {"text": "ifeval", "image": "image_caption", "audio": "speech_wer", "video": "video_describe"}
MAX_NEW_TOKENS = {"ifeval": 16, "image_caption": 12, "speech_wer": 12, "video_describe": 12}


def cause(verdict, result, lints: list[dict]) -> str:
    if result.status != "ok":
        refused = [f"{lint['code']} ({lint['message'].split(' -- fix:')[0]})" for lint in lints
                   if lint["severity"] == "error"]
        if result.reason.startswith("refused before loading") and refused:
            return "refused before loading: " + "; ".join(refused)
        return result.reason.split(" -- fix:")[0]
    findings = "; ".join(verdict.findings[:2])
    return findings or verdict.message


def judge(name: str, variant: Path, reference: Path, limit: int, tmp: Path, data: dict[str, Path] | None,
          tokens: dict[str, int]) -> dict[str, tuple[str, str]]:
    from types import MappingProxyType

    from omnicheck.config import Settings
    from omnicheck.session import RunConfig, Session
    from omnicheck.variants import Variant

    variants = [Variant("bf16", str(reference), is_reference=True), Variant(name, str(variant))]
    session = Session(RunConfig(variants=variants, probes=list(PROBES.values()), tier="full", limit=limit,
                                report_dir=tmp / name / "reports", cache_dir=tmp / "cache", write_html=False,
                                data={p: data[p] for p in PROBES.values()} if data else {},
                                settings=Settings(max_new_tokens=MappingProxyType(tokens),
                                                  source="scripts/recipe_table.py")))
    row = {}
    for modality, probe in PROBES.items():
        result = session.result(name, probe)
        verdict = session.verdict(name, probe)
        status = verdict.status if result.status == "ok" else result.status.upper()
        row[modality] = (status, cause(verdict, result, session.states[name].lints))
    session.close()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "recipes-table.md")
    parser.add_argument("--limit", type=int, default=12, help="samples per probe (10 is the least that can decide)")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--omni", type=Path, help="folder of omni-small recipe variants (build_quant_panel.py omni)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.omni:
        from omnicheck.demo import HELDOUT_MAX_NEW_TOKENS, panel_data

        records = [{**json.loads((d / "provenance.json").read_text()), "base": "omni-small"}
                   for d in sorted(args.omni.iterdir()) if (d / "provenance.json").exists()]
        where, reference, data, tokens = args.omni, ROOT / "fixtures" / "omni-small", panel_data(), HELDOUT_MAX_NEW_TOKENS
    else:
        records = [r for r in json.loads((PANEL / "provenance.json").read_text()) if r.get("base")]
        where, reference, data, tokens = PANEL, None, None, MAX_NEW_TOKENS
    recipes = [r for r in records if not args.only or r["name"] in args.only]
    rows = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for record in recipes:
            print(f"judging {record['name']} against {record['base']}", flush=True)
            rows[record["name"]] = (record, judge(record["name"], where / record["name"], reference or PANEL / record["base"],
                                                  args.limit, Path(tmp), data, tokens))
            (Path(tmp) / "rows.json").write_text(json.dumps({k: v[1] for k, v in rows.items()}))
    seconds = time.perf_counter() - start
    lines = [
        "| recipe (checkpoint) | base | " + " | ".join(PROBES) + " |",
        "| --- | --- | " + " | ".join("---" for _ in PROBES) + " |",
    ]
    causes = []
    for name, (record, row) in rows.items():
        cells = []
        for modality in PROBES:
            status, why = row[modality]
            cells.append(status)
            causes.append(f"- **{name}**, {modality}: {status} -- {why}")
        lines.append(f"| {name}: {record['about']} | {record['base']} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n\nCauses, cell by cell:\n\n" + "\n".join(causes) + "\n"
    text += (f"\nMeasured with `PYTHONPATH=. python scripts/recipe_table.py {' '.join(argv or sys.argv[1:])}` "
             f"(python {platform.python_version()}, {seconds:.0f} s on this machine).\n")
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
