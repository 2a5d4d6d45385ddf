"""What the teacher-forced divergence pass costs against the probe's own generation, measured side by side.

    python benchmarks/bench_divergence.py [--variant nvfp4a16] [--limit 12] [--repeats 3] [--no-counterfactual]

One Session per repeat over the demo panel's reference and one variant, every probe, the demo's data and token
caps, an empty cache (so the reference really generates). Per probe it times the probe's run (generation,
counterfactual and task scoring: what omnicheck spent before divergence existed) and the divergence pass: for the
variant one teacher-forced forward pass; for the reference its top-k pass and the A/A pass together (paid once,
then kept in the cache). The target is a variant ratio of at most 0.30.

Both wall-clock and process CPU time (every thread of this process) are taken. On a shared CPU the wall-clock
ratio of one run moves with whatever else runs in that second (measured: one probe's ratio 0.19 in one run, 0.96
in the next); CPU time counts the work this process did, so it moves much less. Each repeat's ratios are printed,
then the median over repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


class Clock:
    """Wall-clock and process CPU seconds per (what, probe) of the calls it wraps."""

    def __init__(self):
        self.seconds: dict[tuple[str, str], list[float]] = {}

    def wrap(self, call, key):
        """key(args): (what, probe) for one call's arguments."""
        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return call(*args, **kwargs)
            finally:
                total = self.seconds.setdefault(key(args), [0.0, 0.0])
                total[0] += time.perf_counter() - wall
                total[1] += time.process_time() - cpu
        return timed


def one_run(variant: str, limit: int, counterfactual: bool) -> dict[tuple[str, str], list[float]]:
    """(what, probe) -> [wall s, CPU s]; what: reference run / reference divergence / variant run / variant
    divergence."""
    from types import MappingProxyType

    import omnicheck.teacher_forcing as teacher_forcing
    from omnicheck.config import Settings
    from omnicheck.demo import HELDOUT_MAX_NEW_TOKENS, build_panel, panel_data
    from omnicheck.probes import PROBES
    from omnicheck.session import RunConfig, Session
    from omnicheck.variants import Variant

    settings = Settings(max_new_tokens=MappingProxyType(HELDOUT_MAX_NEW_TOKENS), counterfactual=counterfactual)
    panel = build_panel()
    clock = Clock()
    passes = {"reference": teacher_forcing.reference_pass, "variant": teacher_forcing.variant_pass}
    with tempfile.TemporaryDirectory() as tmp:
        variants = [Variant("bf16", str(panel["bf16"]), is_reference=True), Variant(variant, str(panel[variant]))]
        session = Session(RunConfig(variants=variants, probes=list(PROBES), tier="full", report_dir=Path(tmp),
                                    data=panel_data(), cache_dir=Path(tmp) / "cache", settings=settings, limit=limit,
                                    write_html=False))
        # the reference runs every probe at the first verdict (one load), so calls are told apart by their
        # arguments: the probe run by the model loaded, a divergence pass by the result it is given (args[2])
        for probe in PROBES:
            instance = session.probe(probe)
            instance.run = clock.wrap(instance.run, lambda args, _p=probe: (
                f"{'reference' if session._loaded[0] == 'bf16' else 'variant'} run", _p))
        for side, function in passes.items():
            setattr(teacher_forcing, f"{side}_pass",
                    clock.wrap(function, lambda args, _s=side: (f"{_s} divergence", args[2].probe)))
        try:
            for probe in PROBES:
                session.verdict(variant, probe)
                for side in ("reference", "variant"):
                    result = session.results[("bf16" if side == "reference" else variant, probe)]
                    if result.status != "ok" or result.info.get("divergence", {}).get("status") != "ok":
                        raise SystemExit(f"{side} {probe}: {result.reason or result.info.get('divergence')}")
        finally:
            for side, function in passes.items():
                setattr(teacher_forcing, f"{side}_pass", function)
            session.close()
    return clock.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="nvfp4a16")
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-counterfactual", action="store_true")
    args = parser.parse_args(argv)

    from omnicheck.probes import PROBES

    def ratio(seconds, side: str, probe: str, which: int) -> float:
        return seconds[(f"{side} divergence", probe)][which] / seconds[(f"{side} run", probe)][which]

    runs, loads = [], []
    for repeat in range(args.repeats):
        before = os.getloadavg()[0]
        runs.append(one_run(args.variant, args.limit, not args.no_counterfactual))
        loads.append((before, os.getloadavg()[0]))
        print(f"repeat {repeat + 1}: load average {before:.1f} -> {loads[-1][1]:.1f} (1 min); variant ratio wall / CPU: "
              + ", ".join(f"{p} {ratio(runs[-1], 'variant', p, 0):.2f} / {ratio(runs[-1], 'variant', p, 1):.2f}"
                          for p in PROBES), flush=True)

    print(f"\n{args.repeats} repeats, {args.limit} samples per probe, on {os.cpu_count()} CPUs; load average "
          f"{min(min(pair) for pair in loads):.1f} to {max(max(pair) for pair in loads):.1f}")
    print(f"| probe | bf16 run s (wall / CPU) | bf16 top-k + A/A ratio (wall / CPU) | {args.variant} run s (wall / CPU) | "
          "divergence s (wall / CPU) | ratio wall: median (each) | ratio CPU: median (each) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for probe in [*PROBES, "all"]:
        probes = list(PROBES) if probe == "all" else [probe]
        summed = [{(side, "x"): [sum(s[(side, p)][i] for p in probes) for i in (0, 1)]
                   for side in ("reference run", "reference divergence", "variant run", "variant divergence")}
                  for s in runs]

        def median(side: str, which: int) -> float:
            return statistics.median(s[(side, "x")][which] for s in summed)

        walls = [ratio(s, "variant", "x", 0) for s in summed]
        cpus = [ratio(s, "variant", "x", 1) for s in summed]
        ref_wall = statistics.median(ratio(s, "reference", "x", 0) for s in summed)
        ref_cpu = statistics.median(ratio(s, "reference", "x", 1) for s in summed)
        print(f"| {probe} | {median('reference run', 0):.1f} / {median('reference run', 1):.1f} | "
              f"{ref_wall:.2f} / {ref_cpu:.2f} | {median('variant run', 0):.1f} / {median('variant run', 1):.1f} | "
              f"{median('variant divergence', 0):.1f} / {median('variant divergence', 1):.1f} | "
              f"{statistics.median(walls):.2f} ({', '.join(f'{r:.2f}' for r in walls)}) | "
              f"{statistics.median(cpus):.2f} ({', '.join(f'{r:.2f}' for r in cpus)}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
