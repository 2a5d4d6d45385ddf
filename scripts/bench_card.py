"""Benchmark: the quant card of a 12B-class checkpoint must take under a second (headers only).

    PYTHONPATH=. python scripts/bench_card.py [--repeat 5] [--only bf16 nvfp4 mo-moe-nvfp4 ...]

Writes two synthetic gemma4_unified 12B-class checkpoints (bf16, ~24 GB declared; compressed-tensors NVFP4 W4A4,
~8 GB declared) and one per Gemma 4 write-up recipe format (omnicheck.formats.synthetic_recipes: FP8 128x128 blocks
with an FP8 KV cache in compressed-tensors, ModelOpt NVFP4 MLP-only with FP8 KV, ModelOpt FP8_PB_WO, ModelOpt NVFP4
on a 26B-A4B-class MoE with its experts unfused, compressed-tensors NVFP4A16 on an E4B-class gemma4) as sparse files
in a temporary folder, then times in fresh processes:
  card      read_card: config + safetensors headers -> card (the < 1 s target)
  lints     inspect_checkpoint(runtime_check=False): card + static lints
  runtime   inspect_checkpoint(): adds the meta-device build for run-time module names, split into
            `import transformers`, importing the architecture's model code, and the build itself
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from omnicheck.formats import inspect_checkpoint, read_card
t_import = time.perf_counter() - t0
path, mode = sys.argv[1], sys.argv[2]
out = {"import_omnicheck_formats": t_import}
if mode == "card":
    t, c = time.perf_counter(), time.process_time(); card = read_card(path)
    out["seconds"], out["cpu_seconds"] = time.perf_counter() - t, time.process_time() - c
elif mode == "lints":
    t, c = time.perf_counter(), time.process_time(); card = inspect_checkpoint(path, runtime_check=False)
    out["seconds"], out["cpu_seconds"] = time.perf_counter() - t, time.process_time() - c
else:
    t = time.perf_counter(); import transformers; out["import_transformers"] = time.perf_counter() - t
    arch = json.load(open(path + "/config.json"))["architectures"][0]
    t = time.perf_counter(); getattr(transformers, arch); out["import_model_code"] = time.perf_counter() - t
    t = time.perf_counter(); card = inspect_checkpoint(path); out["seconds"] = time.perf_counter() - t
    t = time.perf_counter(); inspect_checkpoint(path); out["seconds_again"] = time.perf_counter() - t
out["scheme"] = card.scheme
out["tensors_declared_gb"] = None
out["lints"] = [l.code for l in card.lints]
print(json.dumps(out))
"""


def run_child(path: Path, mode: str) -> dict:
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), mode], capture_output=True, text=True, env=env,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="formats to time (default: all)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from omnicheck.formats.synthetic import write_header_only_checkpoint
    from omnicheck.formats.synthetic_recipes import RECIPES, write_recipe_checkpoint

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for scheme in args.only or ("bf16", "nvfp4", *RECIPES):
            path = Path(tmp) / scheme
            if scheme in RECIPES:
                declared = write_recipe_checkpoint(path, scheme)
            else:
                declared = write_header_only_checkpoint(path, scheme)
            tensors = len(json.loads((path / "model.safetensors.index.json").read_text())["weight_map"])
            on_disk = sum(f.stat().st_blocks * 512 for f in path.iterdir())
            shards = len(list(path.glob("*.safetensors")))
            card_runs = [run_child(path, "card") for _ in range(args.repeat)]
            lint_runs = [run_child(path, "lints") for _ in range(args.repeat)]
            card = [r["seconds"] for r in card_runs]
            lints = [r["seconds"] for r in lint_runs]
            runtime = run_child(path, "runtime")
            median = statistics.median(card)
            ok &= median < 1.0
            print(f"{scheme}: {declared / 1e9:.1f} GB declared, {tensors} tensors in {shards} shards, "
                  f"{on_disk / 1e6:.2f} MB on disk")
            print(f"  card (headers only)   median {median * 1000:.1f} ms, max {max(card) * 1000:.1f} ms "
                  f"over {args.repeat} fresh processes  [target < 1000 ms: {'PASS' if median < 1.0 else 'FAIL'}]; "
                  f"CPU time median {statistics.median(r['cpu_seconds'] for r in card_runs) * 1000:.1f} ms")
            lints_median = statistics.median(lints)
            ok &= lints_median < 1.0
            print(f"  card + static lints   median {lints_median * 1000:.1f} ms  (reads every stored activation / KV "
                  f"scale's value)  [target < 1000 ms: {'PASS' if lints_median < 1.0 else 'FAIL'}]; CPU time median "
                  f"{statistics.median(r['cpu_seconds'] for r in lint_runs) * 1000:.1f} ms")
            print(f"  + run-time names      import transformers {runtime['import_transformers']:.2f} s + its "
                  f"model code {runtime['import_model_code']:.2f} s (once per process, the hf backend pays it "
                  f"too), then meta build + lints {runtime['seconds']:.2f} s (again in-process: "
                  f"{runtime['seconds_again'] * 1000:.0f} ms); lints: {', '.join(runtime['lints']) or 'none'}")
    print(f"load average during the run: {open('/proc/loadavg').read().split()[:3]} on {os.cpu_count()} CPUs "
          "(wall time on a shared machine is CPU time stretched by the queue)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
