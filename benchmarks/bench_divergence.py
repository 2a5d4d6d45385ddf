"""What the teacher-forced divergence pass costs against the probe's own generation, measured in one run.

    python benchmarks/bench_divergence.py [--variant nvfp4a16] [--limit 12] [--no-counterfactual]

One Session over the demo panel's reference and one variant, every probe, the demo's data and token caps, an empty
cache (so the reference really generates). Per probe it prints the probe's run time (generation, counterfactual
and task scoring: what omnicheck spent before divergence existed), the divergence pass's time, and their ratio:
for the variant one teacher-forced forward pass; for the reference its top-k pass and the A/A pass together
(paid once, then kept in the cache). The target is a variant ratio of at most 0.30. Load average is printed too:
on a shared CPU both sides slow down, the ratio much less.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="nvfp4a16")
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--no-counterfactual", action="store_true")
    args = parser.parse_args(argv)

    from types import MappingProxyType

    from omnicheck.config import Settings
    from omnicheck.demo import build_panel, panel_data
    from omnicheck.probes import PROBES
    from omnicheck.session import RunConfig, Session
    from omnicheck.variants import Variant

    caps = {"image_caption": 32, "speech_wer": 32, "video_describe": 24, "gsm8k": 64, "ifeval": 64}
    settings = Settings(max_new_tokens=MappingProxyType(caps), counterfactual=not args.no_counterfactual)
    panel = build_panel()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        variants = [Variant("bf16", str(panel["bf16"]), is_reference=True),
                    Variant(args.variant, str(panel[args.variant]))]
        session = Session(RunConfig(variants=variants, probes=list(PROBES), tier="full", report_dir=Path(tmp),
                                    data=panel_data(), cache_dir=Path(tmp) / "cache", settings=settings,
                                    limit=args.limit, write_html=False))
        try:
            for probe in PROBES:
                session.verdict(args.variant, probe)
        finally:
            session.close()
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (1 min), on {os.cpu_count()} CPUs")
    print(f"| probe | reference run s | reference top-k + A/A s | ratio | {args.variant} run s | divergence s | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    totals = [0.0, 0.0, 0.0, 0.0]
    for probe in PROBES:
        ref, var = session.results[("bf16", probe)], session.results[(args.variant, probe)]
        ref_div = float(ref.info.get("divergence", {}).get("seconds") or 0.0)
        var_div = float(var.info.get("divergence", {}).get("seconds") or 0.0)
        totals = [totals[0] + ref.seconds, totals[1] + ref_div, totals[2] + var.seconds, totals[3] + var_div]
        print(f"| {probe} | {ref.seconds:.1f} | {ref_div:.1f} | {ref_div / ref.seconds:.2f} | {var.seconds:.1f} | "
              f"{var_div:.1f} | {var_div / var.seconds:.2f} |")
    print(f"| all | {totals[0]:.1f} | {totals[1]:.1f} | {totals[1] / totals[0]:.2f} | {totals[2]:.1f} | "
          f"{totals[3]:.1f} | {totals[3] / totals[2]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
