"""The 12B shape on one GPU, through omnicheck (issue 18): decode speed per modality against the weight-bandwidth
bound, eager against a static cache with a compiled decode step, batch scaling, batches sized from memory, what
out-of-memory does, and what each probe costs before and after.

Builds a random-weight gemma4_unified from the config written out beside this file (10.8B parameters with
omni-small's 1024-token tokenizer and processor), saves it to local disk and loads it as a user's checkpoint.
Every figure is measured in this one process, contenders side by side; nothing here is asserted.

    python benchmarks/bench_12b.py --part core     # device, bandwidth, modalities, batch scaling, out-of-memory
    python benchmarks/bench_12b.py --part probes   # each probe before (eager, batch 8, whole counterfactual)
                                                   #   and after (compiled, batch from memory, its opening)
    python benchmarks/bench_12b.py --config fixtures/omni-small/config.json --quick   # the CPU check, seconds

Per step = (time for 40 new tokens - time for 8) / 32, best of --repeats after a
warm-up, end-of-sequence switched off so every row runs to the end. The bound = bytes of the language model's
weights / the device's copy bandwidth measured first (bytes read + written). JSON under --out after each section.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMNICHECK_FIXTURES", str(ROOT / "fixtures"))

MODALITY_PROBES = {"video": "video_describe", "audio": "speech_wer", "image": "image_caption", "text": "gsm8k"}


class Bench:
    def __init__(self, args):
        self.args, self.start = args, time.perf_counter()
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.data: dict = {"argv": sys.argv[1:], "sections": {}, "rows": []}
        self.rows = self.data["rows"]  # every per-step row as it is measured: kept if a later one runs out of time
        self.backend = None
        self.eager_outputs: dict[str, list[str]] = {}

    def save(self) -> None:
        (self.out / f"bench-{self.args.part}.json").write_text(json.dumps(self.data, indent=1, default=str))

    def left(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.start)

    def section(self, name: str, fn) -> None:
        if self.left() <= 0:
            self.data["sections"][name] = {"skipped": "time budget spent"}
            print(f"[{name}] skipped: time budget spent", flush=True)
            return
        began = time.perf_counter()
        try:
            self.data["sections"][name] = fn() or {}
        except Exception as err:  # one section failing must not lose the others' figures
            self.data["sections"][name] = {"error": f"{type(err).__name__}: {err}"[:500], "trace": traceback.format_exc()}
            print(f"[{name}] ERROR {type(err).__name__}: {str(err)[:300]}", flush=True)
        self.data["sections"][name]["section_s"] = round(time.perf_counter() - began, 1)
        self.save()

    def log(self, *parts) -> None:
        print(f"[{time.perf_counter() - self.start:6.1f}s]", *parts, flush=True)


# --- the machine and the model ---


def device_info(bench: Bench) -> dict:
    import torch
    import transformers

    info = {"torch": torch.__version__, "transformers": transformers.__version__, "device": bench.args.device}
    if bench.args.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1))
    info["video_reader"] = use_opencv_video_without_av()
    bench.log(info)
    return info


def use_opencv_video_without_av() -> str:
    """av (a 35 MB wheel) cannot travel to the GPU machine; transformers reads the same clips with OpenCV there."""
    try:
        import av  # noqa: F401

        return "pyav"
    except ImportError:
        import transformers.video_utils as video_utils

        original = video_utils.load_video

        def load_video(video, *args, backend="pyav", **kwargs):
            return original(video, *args, backend="opencv", **kwargs)

        video_utils.load_video = load_video
        return "opencv (av is not installed here)"


def copy_bandwidth(bench: Bench) -> dict:
    """Bytes read + written per second by a large device copy (median of 10 after 3 warm-ups)."""
    import torch

    size = (4 << 30) if bench.args.device == "cuda" else (256 << 20)
    src = torch.empty(size, dtype=torch.uint8, device=bench.args.device).random_(0, 255)
    dst = torch.empty_like(src)
    times = []
    for i in range(13):
        sync(bench)
        began = time.perf_counter()
        dst.copy_(src)
        sync(bench)
        if i >= 3:
            times.append(time.perf_counter() - began)
    times.sort()
    rate = 2 * size / times[len(times) // 2]
    del src, dst
    bench.data["bandwidth_bytes_per_s"] = rate
    bench.log(f"copy bandwidth {rate / 1e12:.2f} TB/s")
    return {"bytes_per_s": rate, "bytes": 2 * size}


def build_and_load(bench: Bench) -> dict:
    """The random-weight model from the written-out config, saved with omni-small's processor, loaded by omnicheck."""
    import torch
    from transformers import AutoConfig, Gemma4UnifiedForConditionalGeneration

    from omnicheck.backends.hf import HFBackend

    folder = Path(bench.args.work)
    shutil.rmtree(folder, ignore_errors=True)
    config = AutoConfig.for_model(**json.loads(Path(bench.args.config).read_text()))
    began = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(bench.args.device):
        model = Gemma4UnifiedForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    sync(bench)
    built = time.perf_counter() - began
    began = time.perf_counter()
    model.save_pretrained(folder, max_shard_size="5GB")
    for name in ("tokenizer.json", "tokenizer_config.json", "processor_config.json", "chat_template.jinja",
                 "generation_config.json"):
        shutil.copy(ROOT / "fixtures" / "omni-small" / name, folder / name)
    os.sync()
    saved = time.perf_counter() - began
    del model
    release()
    bench.backend = backend = HFBackend(folder, name="12b-shape", device=bench.args.device)
    for config_owner in (backend.model, backend.generator):
        config_owner.generation_config.eos_token_id = None  # every row runs to the end: steps are comparable
    language = backend.model.model.language_model
    decode_bytes = sum(p.numel() * p.element_size() for p in language.parameters())
    info = backend.describe()
    bound_ms = 1000 * decode_bytes / bench.data["bandwidth_bytes_per_s"]
    bench.data.update(decode_bytes=decode_bytes, bound_ms=bound_ms)
    bench.log(f"{info['parameters'] / 1e9:.2f}B parameters, language model {decode_bytes / 2**30:.2f} GiB, "
              f"bound {bound_ms:.2f} ms/step; built {built:.1f}s saved {saved:.1f}s loaded {info['load_seconds']:.1f}s; "
              f"decoding {info['decoding']}")
    return {"parameters": info["parameters"], "decode_bytes": decode_bytes, "bound_ms": bound_ms, "build_s": built,
            "save_s": saved, "load_s": info["load_seconds"], "decoding_plan": info["decoding"],
            "resident_gib": info["resident_bytes"] / 2**30}


# --- measuring ---


def modality_samples(modality: str, count: int, quick: bool) -> list:
    from omnicheck.probes import load_probe

    base = load_probe(MODALITY_PROBES[modality]).load_samples("full")
    base = base[:2] if quick else base
    return [replace(s, id=f"{s.id}#{i}") for i, s in zip(range(count), itertools.cycle(base))]


def settings_for(tokens: int, batch: int, **changes):
    from omnicheck.types import GenerationSettings

    return GenerationSettings(max_new_tokens=tokens, batch_size=batch, **changes)


def set_mode(bench: Bench, mode: str, compiler: str = "inductor") -> None:
    plan = bench.backend.decoder.plan
    plan.mode, plan.compiler, plan.min_steps, plan.reason = mode, compiler, 0, f"set by bench_12b ({mode}, {compiler})"


def timed(bench: Bench, fn):
    sync(bench)
    began = time.perf_counter()
    value = fn()
    sync(bench)
    return time.perf_counter() - began, value


def per_step(bench: Bench, samples: list, batch: int, mode: str, compiler: str = "inductor") -> dict:
    """ms per decode step and the prefill, from a short and a long generation of the same batch."""
    set_mode(bench, mode, compiler)
    short, long = bench.args.tokens
    generate = bench.backend.generate
    first_s, _ = timed(bench, lambda: generate(samples, settings_for(short, batch)))  # warm-up (compiles)
    runs = {short: [], long: []}
    outputs = None
    for _ in range(bench.args.repeats):
        for tokens in (short, long):
            seconds, out = timed(bench, lambda: generate(samples, settings_for(tokens, batch)))
            runs[tokens].append(seconds)
            outputs = out if tokens == long else outputs
    best = {t: min(v) for t, v in runs.items()}
    step_ms = 1000 * (best[long] - best[short]) / (long - short)
    prefill_ms = 1000 * best[short] - short * step_ms
    plan = bench.backend.decoder.plan
    row = {"mode": mode if plan.mode == mode else f"{mode} -> {plan.reason}", "batch": batch, "rows": len(samples),
           "compiler": compiler if mode != "eager" else None, "step_ms": round(step_ms, 2),
           "cache_len": getattr(bench.backend.generator, "_previous_max_cache_length", None),
           "prefill_ms": round(prefill_ms, 1), "first_call_s": round(first_s, 1),
           "tokens_per_s": round(len(samples) * 1000 / step_ms, 1) if step_ms > 0 else None,
           "x_bound": round(step_ms / bench.data["bound_ms"], 2), "outputs": [g.text for g in outputs]}
    bench.log(f"  {row['mode'][:60]:22s} {compiler if mode != 'eager' else '':10s} batch {batch:3d}: {step_ms:7.2f} "
              f"ms/step ({row['x_bound']}x bound), prefill {prefill_ms:.0f} ms, first call {first_s:.1f}s")
    bench.rows.append({k: v for k, v in row.items() if k != "outputs"})
    bench.save()
    return row


def same_outputs(a: list[str], b: list[str]) -> dict:
    from omnicheck.compare.agreement import agreement

    differing = [agreement(x, y).first_divergence for x, y in zip(a, b) if x != y]
    return {"identical_rows": len(a) - len(differing), "rows": len(a), "first_divergence_words": differing[:8]}


def modalities(bench: Bench) -> dict:
    """Per modality at one batch: eager and compiled steps, compiled outputs against eager, omnicheck against a bare
    loop (same compiled decoding), peak memory. The static cache is sized once for the longest prompts (a run keeps
    the longest length it has seen), so one compiled shape serves every modality."""
    import torch
    from bench_overhead import bare_loop

    from omnicheck.backends.decoding import COMPILED, EAGER

    batch, rows = bench.args.batch, {}
    bench.backend.generator._previous_max_cache_length = bench.args.cache_len
    for modality in bench.args.modalities:
        if bench.left() < 60:
            rows[modality] = {"skipped": "time budget spent"}
            continue
        bench.log(f"{modality}:")
        samples = modality_samples(modality, batch, bench.args.quick)
        reset_peak(bench)
        eager = per_step(bench, samples, batch, EAGER)
        compiled = per_step(bench, samples, batch, COMPILED)
        bench.eager_outputs[modality] = eager.pop("outputs")
        settings = settings_for(bench.args.tokens[1], batch)
        static = {"cache_implementation": "static", "max_cache_len": bench.backend.generator._previous_max_cache_length}
        ratios = []
        for _ in range(bench.args.repeats):  # in turns: drift falls on both alike
            omni_s, _ = timed(bench, lambda: bench.backend.generate(samples, settings))
            bare_s, _ = timed(bench, lambda: bare_loop(bench.backend, samples, settings, **static))
            ratios.append((omni_s, bare_s))
        omni_s, bare_s = min(r[0] for r in ratios), min(r[1] for r in ratios)
        peak = torch.cuda.max_memory_allocated() / 2**30 if bench.args.device == "cuda" else None
        rows[modality] = {"eager": eager, "compiled": compiled, "speedup": round(eager["step_ms"] / compiled["step_ms"], 2),
                          "compiled_vs_eager": same_outputs(bench.eager_outputs[modality], compiled.pop("outputs")),
                          "omnicheck_s": round(omni_s, 3), "bare_s": round(bare_s, 3),
                          "omnicheck_over_bare": round(omni_s / bare_s, 3), "peak_gib": peak and round(peak, 2)}
        bench.log(f"  speedup {rows[modality]['speedup']}x; compiled = eager on {rows[modality]['compiled_vs_eager']}; "
                  f"omnicheck/bare {rows[modality]['omnicheck_over_bare']}; peak {peak and round(peak, 1)} GiB")
    return rows


def cudagraphs_only(bench: Bench) -> dict:
    """The same decode step captured as CUDA graphs without inductor's code generation: compile cost and speed."""
    from omnicheck.backends.decoding import COMPILED

    rows = {}
    for modality in ("image", "text"):
        if bench.left() < 60 or modality not in bench.eager_outputs:
            continue
        row = per_step(bench, modality_samples(modality, bench.args.batch, bench.args.quick), bench.args.batch,
                       COMPILED, compiler="cudagraphs")
        row["compiled_vs_eager"] = same_outputs(bench.eager_outputs[modality], row.pop("outputs"))
        rows[modality] = row
    set_mode(bench, COMPILED)
    return rows


def batch_scaling(bench: Bench) -> dict:
    """Text: ms per step from batch 1 up, compiled (each new batch is a new compiled shape: first_call_s) and eager."""
    from omnicheck.backends.decoding import COMPILED, EAGER

    rows = []
    for mode, batches in ((COMPILED, bench.args.compiled_batches), (EAGER, bench.args.eager_batches)):
        for batch in batches:
            if bench.left() < 20:
                rows.append({"mode": mode, "batch": batch, "skipped": "time budget spent"})
                continue
            row = per_step(bench, modality_samples("text", batch, bench.args.quick), batch, mode)
            row.pop("outputs")
            rows.append(row)
    return {"rows": rows}


def out_of_memory(bench: Bench) -> dict:
    """Real out-of-memory on the GPU, by capping this process's share of it: a batch that does not fit is halved
    and retried; at batch 1 it is one line; a second model that does not fit is one line at load."""
    import torch

    from omnicheck.backends.hf import HFBackend
    from omnicheck.errors import OmnicheckError

    if bench.args.device != "cuda":
        return {"skipped": "needs a GPU"}
    from omnicheck.backends.decoding import EAGER

    set_mode(bench, EAGER)  # no graph capture while memory is capped
    release()
    total = torch.cuda.get_device_properties(0).total_memory
    held = torch.cuda.memory_reserved()  # the cap counts what torch's allocator holds, not only what is in use
    out: dict = {"held_gib": round(held / 2**30, 2)}
    samples = modality_samples("image", 64, bench.args.quick)
    try:
        torch.cuda.set_per_process_memory_fraction((held + (3 << 30)) / total)
        bench.backend.decoder.take_calls()
        try:
            seconds, result = timed(bench, lambda: bench.backend.generate(samples, settings_for(8, 64)))
            out["halving"] = {"seconds": round(seconds, 2), "rows_done": len(result)}
        except OmnicheckError as err:
            out["halving"] = str(err)
        out["halving_calls"] = bench.backend.take_decoding()["calls"]
        release()
        torch.cuda.set_per_process_memory_fraction((held + (8 << 20)) / total)
        try:
            bench.backend.generate(samples[:1], settings_for(8, 1))
            out["batch_1"] = "fitted"
        except OmnicheckError as err:
            out["batch_1"] = str(err)
        release()
        torch.cuda.set_per_process_memory_fraction((held + (8 << 30)) / total)
        try:
            HFBackend(bench.args.work, name="second-12b", device="cuda")
            out["load"] = "fitted"
        except OmnicheckError as err:
            out["load"] = str(err)
        release()
        out["held_gib_after_failed_load"] = round((torch.cuda.memory_allocated() - held) / 2**30, 3)
        small = HFBackend(ROOT / "fixtures" / "omni-small", name="omni-small", device="cuda")
        out["next_variant"] = small.generate(samples[:2], settings_for(4, 2))[0].text is not None
        small.close()
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        release()
    for key, value in out.items():
        bench.log(f"  {key}: {value}")
    return out


# --- what a run costs, probe by probe ---


def gsm8k_samples(count: int) -> list:
    """GSM8K as lm-eval asks it with a chat template: 8 exemplars as turns, then the question (no lm-eval here)."""
    from omnicheck.fixtures import fixture_dir
    from omnicheck.types import Message, Sample, TextPart

    shots = [json.loads(line) for line in (fixture_dir("gsm8k") / "fewshot.jsonl").read_text().splitlines() if line]
    turns = []
    for shot in shots[:8]:
        turns += [Message.user(f"Question: {shot['question']}\nAnswer:"), Message("assistant", (TextPart(shot["answer"]),))]
    rows = [json.loads(line) for line in (fixture_dir("gsm8k") / "test.jsonl").read_text().splitlines() if line]
    return [Sample(str(i), (*turns, Message.user(f"Question: {row['question']}\nAnswer:"))) for i, row in enumerate(rows[:count])]


def ifeval_samples(count: int) -> list:
    from omnicheck.fixtures import fixture_dir
    from omnicheck.types import Message, Sample

    rows = [json.loads(line) for line in (fixture_dir("ifeval") / "bundled.jsonl").read_text().splitlines() if line]
    return [Sample(str(i), (Message.user(row["prompt"]),)) for i, row in zip(range(count), itertools.cycle(rows))]


FULL_SIZES = {"gsm8k": 1319, "ifeval": 541}  # ifeval: the official set (--omnicheck-data); 42 prompts are bundled


def probe_costs(bench: Bench) -> dict:
    """Each probe before (eager, the probe's batch, the whole blank-media answer) and after (compiled, batch from
    memory, the answer's opening; text probes run twice: the first call pays any compiling), and between them
    memory_eager (the batch from memory, eager: what the batch alone buys). Media probes: their whole bundled
    sets through Probe.run, scoring left out (its encoder cannot travel here). Text probes: generate() on the prompts
    lm-eval would send (lm-eval cannot travel here), a subset, scaled to the full set."""
    from omnicheck.backends.decoding import COMPILED, EAGER

    rows: dict = {name: {} for name in bench.args.probes}
    bench.data["probe_rows"] = rows  # saved as each probe finishes, not only at the section's end
    for label, mode in (("before", EAGER), ("memory_eager", EAGER), ("after", COMPILED)):
        for name in bench.args.probes:
            if bench.left() < 40:
                rows[name][label] = {"skipped": "time budget spent"}
                continue
            set_mode(bench, mode)
            rows[name][label] = probe_cost(bench, name, label)
            bench.save()
    for row in rows.values():
        if "full_set_min" in row.get("before", {}) and "full_set_min" in row.get("after", {}):
            row["speedup"] = round(row["before"]["full_set_min"] / max(row["after"]["full_set_min"], 1e-9), 1)
    return rows


def probe_cost(bench: Bench, name: str, label: str) -> dict:
    from omnicheck.probes import load_probe

    probe = load_probe(name)
    tokens = 8 if bench.args.quick else probe.settings.max_new_tokens
    if label == "before":
        settings = settings_for(tokens, probe.settings.batch_size, counterfactual_tokens=0)
    else:  # memory_eager and after: the batch from memory, the counterfactual's opening
        settings = settings_for(tokens, probe.settings.batch_size, batch_from_memory=True)
    if name in FULL_SIZES:
        count = 4 if bench.args.quick else (8 if label == "before" else 128)
        samples = gsm8k_samples(count) if name == "gsm8k" else ifeval_samples(count)
        call = lambda: bench.backend.generate(samples, settings)  # noqa: E731
        scale = FULL_SIZES[name] / len(samples)
    else:
        probe.score, probe.extra = (lambda sample, output: {}), (lambda sample, output: {})
        samples = probe.load_samples("full")
        call = lambda: probe.run(bench.backend, samples, settings)  # noqa: E731
        scale = 1.0
    runs = []
    for _ in range(2 if label == "after" and name in FULL_SIZES else 1):  # the first pays compiling
        bench.backend.decoder.take_calls()
        seconds, result = timed(bench, call)
        runs.append(seconds)
    row = {"samples": len(samples), "max_new_tokens": tokens, "seconds": round(runs[-1], 2),
           "full_set_min": round(runs[-1] * scale / 60, 3), **bench.backend.take_decoding()}
    if len(runs) > 1:
        row["first_call_s"] = round(runs[0], 2)  # with whatever compiling this shape needed
    if hasattr(result, "info"):
        row["counterfactual"] = result.info.get("counterfactual")
    bench.log(f"  {name} {label}: {row['seconds']}s for {len(samples)} samples (first {runs[0]:.1f}s) -> "
              f"{row['full_set_min']} min for the full set; batches {[c['size'] for c in row['calls']]}")
    return row


# --- helpers ---


def sync(bench: Bench) -> None:
    if bench.args.device == "cuda":
        import torch

        torch.cuda.synchronize()


def reset_peak(bench: Bench) -> None:
    if bench.args.device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def release() -> None:
    from omnicheck.backends.decoding import release_memory

    release_memory()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("core", "probes"), default="core")
    parser.add_argument("--config", type=Path, default=ROOT / "benchmarks" / "gemma4_unified_12b.json")
    parser.add_argument("--work", type=Path, default=Path("/tmp/omnicheck-12b-shape"))
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "reports" / "bench-12b"))
    parser.add_argument("--budget-s", type=float, default=530.0, help="start no section past this many seconds")
    parser.add_argument("--quick", action="store_true", help="few samples and tokens: checks the script, measures nothing")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import torch

    args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.tokens = (2, 6) if args.quick else (8, 40)
    args.batch = 4 if args.quick else 32
    args.modalities = ["image", "text", "audio", "video"]
    args.cache_len = 256 if args.quick else 768  # the longest prompt (video, 617 tokens) + 40 new, bucketed
    args.compiled_batches = [2, 1] if args.quick else [256, 128, 64, 8, 1]
    args.eager_batches = [1] if args.quick else [1, 8]
    args.probes = ["gsm8k", "ifeval", "image_caption", "speech_wer", "video_describe"]
    if args.quick:
        args.repeats = 1
    bench = Bench(args)
    bench.section("device", lambda: device_info(bench))
    bench.section("bandwidth", lambda: copy_bandwidth(bench))
    bench.section("model", lambda: build_and_load(bench))
    if bench.backend is None:
        return
    if args.part == "core":
        bench.section("modalities", lambda: modalities(bench))
        bench.section("batch_scaling", lambda: batch_scaling(bench))
        bench.section("out_of_memory", lambda: out_of_memory(bench))
        bench.section("cudagraphs_only", lambda: cudagraphs_only(bench))
    else:
        bench.section("out_of_memory", lambda: out_of_memory(bench))  # before any compiled graph holds memory
        bench.section("probe_costs", lambda: probe_costs(bench))
    print(f"done in {time.perf_counter() - bench.start:.0f}s; {bench.out / f'bench-{args.part}.json'}", flush=True)


if __name__ == "__main__":
    main()
