"""The model folders converted from installed packages: first use (conversion) against every later use (the cached
folder), side by side in one process, in a fresh cache.

    python benchmarks/bench_model_cache.py [--repeats 5] [--models whisper-base smollm2]

Prints seconds and ratios. The tests check that a second call writes nothing again
(tests/models/test_whisper_base.py, tests/models/test_smollm2.py); how much faster it is belongs here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF conversion draws progress bars
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def folder_makers():
    from omnicheck.models.smollm2 import smollm2_folder
    from omnicheck.models.whisper_base import whisper_base_folder

    return {"whisper-base": whisper_base_folder, "smollm2": smollm2_folder}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="cached calls timed after the conversion (median)")
    parser.add_argument("--models", nargs="+", default=["whisper-base", "smollm2"], choices=["whisper-base", "smollm2"])
    args = parser.parse_args()
    makers = folder_makers()
    print(f"{'model':14s} {'convert s':>10s} {'cached s':>10s} {'ratio':>10s}")
    for name in args.models:
        with tempfile.TemporaryDirectory(prefix="omnicheck-bench-") as cache:
            start = time.perf_counter()
            folder = makers[name](Path(cache))
            converted = time.perf_counter() - start
            cached = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                assert makers[name](Path(cache)) == folder
                cached.append(time.perf_counter() - start)
            median = statistics.median(cached)
            print(f"{name:14s} {converted:10.2f} {median:10.4f} {converted / median:9.0f}x")


if __name__ == "__main__":
    main()
