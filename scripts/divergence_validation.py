"""The divergence validation (docs/divergence.md): variants of known truth, a large held-out run, verdicts on
random subsets with and without teacher-forced divergence.

    python scripts/train_omni.py heldout --out DIR/heldout --n 64
    python scripts/make_omni_probe_data.py --heldout DIR/heldout --out DIR/probe-data
    python scripts/divergence_validation.py run --dir DIR [--limit 64]     # the panel + one Session, DIR/report
    python scripts/divergence_validation.py table --dir DIR [--subsets 40]  # the tables for the docs

The panel: omni-small (reference); a byte copy of it; nvfp4a16 (weight-only) and nvfp4-textcal (W4A4 calibrated
on text), both committed llmcompressor checkpoints; vision-random (the vision projection replaced by noise);
subtle-N (Gaussian noise of N% of each weight's std added to every language-model MLP projection: task scores a
few percent down). Text is judged by ifeval (gsm8k's 8-shot prompts would triple the time on a small CPU).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OMNI = REPO / "fixtures" / "omni-small"
PANEL = REPO / "fixtures" / "omni-panel"
PROBES = ("ifeval", "image_caption", "speech_wer", "video_describe")
SUBTLE = (0.25, 0.4)  # relative noise std of the subtle variants
SIZES = (3, 5, 8, 10, 12, 16, 24, 32, 48, 64)


def build_panel(root: Path) -> dict[str, Path]:
    from omnicheck.demo import perturb_weights, randomize_modules

    root.mkdir(parents=True, exist_ok=True)
    copy = root / "copy"
    if not (copy / "config.json").exists():
        shutil.copytree(OMNI, copy, ignore=shutil.ignore_patterns("heldout", "probe-data"))
    panel = {"bf16": OMNI, "copy": copy, "nvfp4a16": PANEL / "nvfp4a16", "nvfp4-textcal": PANEL / "nvfp4-textcal"}
    vision = root / "vision-random"
    if not (vision / "config.json").exists():
        randomize_modules(OMNI, vision, prefix="model.embed_vision", seed=1)
    panel["vision-random"] = vision
    for std in SUBTLE:
        name = f"subtle-{round(std * 100)}"
        if not (root / name / "config.json").exists():
            perturb_weights(OMNI, root / name, pattern=".mlp.", relative_std=std, seed=7)
        panel[name] = root / name
    return panel


def settings():
    from types import MappingProxyType

    from omnicheck.config import Settings
    from omnicheck.demo import HELDOUT_MAX_NEW_TOKENS

    # no blank-media reruns: they feed only the media-ignored detector and would double the media probes' time
    return Settings(max_new_tokens=MappingProxyType({p: HELDOUT_MAX_NEW_TOKENS[p] for p in PROBES}), counterfactual=False,
                    source="scripts/divergence_validation.py")


def cmd_run(args: argparse.Namespace) -> int:
    from omnicheck.session import RunConfig, Session
    from omnicheck.variants import Variant

    data = args.dir / "probe-data"
    probe_data = {"image_caption": data / "image_caption", "speech_wer": args.dir / "heldout" / "speech",
                  "video_describe": data / "video_describe", "ifeval": data / "ifeval.jsonl"}
    panel = build_panel(args.dir / "panel")
    # the variants that test the rules hardest first (subtle damage must not PASS), the slowest (W4A4) last
    order = ["bf16", *(f"subtle-{round(std * 100)}" for std in SUBTLE), "nvfp4a16", "vision-random", "copy",
             "nvfp4-textcal"]
    names = [n for n in order if not args.only or n == "bf16" or n in args.only]
    variants = [Variant(n, str(panel[n]), is_reference=(n == "bf16")) for n in names]
    session = Session(RunConfig(variants=variants, probes=list(PROBES), tier="full", report_dir=args.dir / "report",
                                data=probe_data, cache_dir=args.dir / "cache", settings=settings(), limit=args.limit,
                                write_html=False), progress=lambda line: print(line, flush=True))
    try:
        for name in names:
            for probe in PROBES:
                verdict = session.verdict(name, probe)
                print(f"{name} {probe}: {verdict.status}", flush=True)
    finally:
        session.close()
        session.write_reports(html=False)
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from omnicheck.divergence_validation import subset_verdicts
    from omnicheck.types import ProbeResult

    document = json.loads((args.dir / "report" / "omnicheck.json").read_text())
    results = {(r["variant"], r["probe"]): ProbeResult.from_json(r) for r in document["results"]}
    reference = document["run"]["reference"]
    runs = []
    for (variant, probe), result in results.items():
        if variant == reference or result.status != "ok":
            continue
        runs.append(subset_verdicts(results[(reference, probe)], result, settings(), SIZES, args.subsets, seed=3))
    print("| variant | modality (probe) | truth over all samples | n for the right verdict, scores only | with divergence "
          "| false verdicts (scores only / with divergence) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for run in runs:
        t = run.truth
        without, with_ = run.needed("without", args.share), run.needed("with", args.share)
        false_without = sum(1 for line in run.false if " without divergence" in line)
        false_with = sum(1 for line in run.false if " with divergence" in line)
        print(f"| {run.variant} | {run.modality} ({run.probe}) | {t.kind}: loss {t.loss:+.3f} "
              f"(allowed {t.allowed:.3f}, broken {t.broken:.3f}), n={t.n} | {_n(without)} | {_n(with_)} | "
              f"{false_without} / {false_with} |")
    print()
    print(f"Verdict counts per subset size ({args.subsets} random subsets each; with divergence / scores only):")
    for run in runs:
        cells = []
        for n, counts in sorted(run.verdicts.items()):
            cells.append(f"n={n}: {_counts(counts['with'])} / {_counts(counts['without'])}")
        print(f"- {run.variant} {run.probe}: " + "; ".join(cells))
    false = [line for run in runs for line in run.false]
    print()
    print(f"false verdicts: {len(false)}")
    for line in false[:40]:
        print(f"  {line}")
    return 1 if any("false PASS" in line or "false BROKEN" in line for line in false) else 0


def _n(n: int | None) -> str:
    return "not reached" if n is None else str(n)


def _counts(counts) -> str:
    order = ("PASS", "INCONCLUSIVE", "DEGRADED", "BROKEN")
    return " ".join(f"{s[0]}{counts[s]}" for s in order if counts.get(s))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--only", nargs="*", default=None, help="variants to run (the reference always runs)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("table")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--subsets", type=int, default=40)
    p.add_argument("--share", type=float, default=0.8, help="share of subsets that must reach the right verdict")
    p.set_defaults(func=cmd_table)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
