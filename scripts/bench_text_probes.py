"""Wall time of omnicheck's gsm8k/ifeval probes against the same lm-eval call made directly (issue 7: ratio <= 1.05).

    PYTHONPATH=. python scripts/bench_text_probes.py [--model HF_FOLDER] [--probe gsm8k ifeval] [--docs 16]
        [--max-new-tokens 32] [--repeats 3]

Both sides use one already-loaded model (the backend's one HFLM), the same task config, docs, chat template and
generation settings. The probe side adds what omnicheck does around lm-eval: loading and checking the data, verifying the
manifest, turning lm-eval's logged samples into SampleResults, counting generated tokens. Runs alternate
(direct, probe, direct, ...) after one warm-up of each, and the medians are compared. On a shared machine the
run-to-run noise can exceed the overhead, so the probe's own time around its lm-eval call is also measured inside
each probe run (total minus lm-eval) and reported as an in-run ratio.
Without --model a tiny random gemma4_unified is built (omnicheck.models.tiny), which makes generation cheap and the
probe's own overhead as visible as it can be.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def open_backend(folder: Path | None, tmp: Path) -> Any:
    """omnicheck's HF backend over the given folder, or over a freshly built tiny gemma4_unified."""
    from omnicheck.backends.hf import HFBackend
    from omnicheck.models.tiny import build_tiny_gemma4_unified

    return HFBackend(folder or build_tiny_gemma4_unified(tmp / "tiny-gemma4", seed=0))


def direct_call(lm: Any, config: dict[str, Any], indices: list[int], max_new_tokens: int) -> float:
    """lm-eval used by hand: the same config, docs and settings, nothing of omnicheck around it."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from omnicheck.probes.lmeval import TASKS_DIR

    start = time.perf_counter()
    lm_eval.simple_evaluate(
        model=lm,
        tasks=[config],
        task_manager=TaskManager(include_path=str(TASKS_DIR), include_defaults=False),
        samples={config["task"]: sorted(indices)},
        apply_chat_template=True,
        fewshot_as_multiturn=True,
        gen_kwargs={"max_gen_toks": max_new_tokens, "do_sample": False, "temperature": 0.0},
        log_samples=True,
        bootstrap_iters=0,
    )
    return time.perf_counter() - start


def probe_call(probe: Any, backend: Any, tier: str, docs: int, max_new_tokens: int) -> tuple[float, float]:
    """(whole probe: data loading + run + results, the lm-eval call inside it)."""
    from omnicheck.types import GenerationSettings

    start = time.perf_counter()
    samples = probe.load_samples(tier)[:docs]
    result = probe.run(backend, samples, GenerationSettings(max_new_tokens=max_new_tokens))
    return time.perf_counter() - start, result.info["lm_eval_seconds"]


def bench(name: str, backend: Any, docs: int, max_new_tokens: int, repeats: int) -> dict[str, float]:
    from omnicheck.probes import load_probe

    probe = load_probe(name)
    indices = [s.meta["doc_index"] for s in probe.load_samples("full")[:docs]]
    config = probe.task_config()
    lm = backend.lm_eval_model()
    direct_call(lm, config, indices, max_new_tokens)  # warm-up: imports, dataset cache
    probe_call(probe, backend, "full", docs, max_new_tokens)
    direct, wrapped, inside = [], [], []
    for _ in range(repeats):
        direct.append(direct_call(lm, config, indices, max_new_tokens))
        total, lm_eval_part = probe_call(probe, backend, "full", docs, max_new_tokens)
        wrapped.append(total)
        inside.append(lm_eval_part)
    d, p = statistics.median(direct), statistics.median(wrapped)
    overhead = [t - i for t, i in zip(wrapped, inside)]
    return {
        "docs": docs,
        "direct_s": d,
        "probe_s": p,
        "ratio": p / d,
        # within one probe run, so free of the run-to-run noise of a shared machine
        "overhead_s": statistics.median(overhead),
        "in_run_ratio": statistics.median(t / i for t, i in zip(wrapped, inside)),
        "direct_all": direct,
        "probe_all": wrapped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a checkpoint folder omnicheck's HF backend loads (chat template)")
    parser.add_argument("--probe", nargs="+", default=["gsm8k", "ifeval"])
    parser.add_argument("--docs", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from omnicheck.probes.lmeval import go_offline

    go_offline()
    with tempfile.TemporaryDirectory() as tmp:
        backend = open_backend(args.model, Path(tmp))
        for name in args.probe:
            r = bench(name, backend, args.docs, args.max_new_tokens, args.repeats)
            print(
                f"{name}: {r['docs']} docs, max_new_tokens={args.max_new_tokens}, model={backend.name}: "
                f"direct lm-eval {r['direct_s']:.2f}s, probe {r['probe_s']:.2f}s, ratio {r['ratio']:.3f} "
                f"(medians of {args.repeats}; direct {[round(x, 2) for x in r['direct_all']]}, "
                f"probe {[round(x, 2) for x in r['probe_all']]}); omnicheck's own time around lm-eval "
                f"{r['overhead_s']:.3f}s, in-run ratio {r['in_run_ratio']:.4f}"
            )


if __name__ == "__main__":
    main()
