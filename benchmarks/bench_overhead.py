"""What omnicheck costs on top of the model, measured side by side in one run (issue 7).

For each media probe, on the same loaded model, the same samples, the same settings and batch size:
  bare      a plain loop: processor -> model.generate -> decode, written directly against transformers
  omnicheck probe.run(...) without the counterfactual pass (the same generations as bare, plus scoring)
  +cf       probe.run(...) as a run does it, with the blank-media counterfactual pass (its answer's opening)
  batch=1   omnicheck one sample at a time, and whether its greedy outputs equal the batched ones
Then: plugin import time, peak RSS against the model's own size.

    python benchmarks/bench_overhead.py [--model PATH] [--repeats 3] [--batch-size 8] [--max-new-tokens 16]

Prints ratios; asserts nothing. Timings are the median of --repeats runs, after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MEDIA_PROBES = ("image_caption", "speech_wer", "video_describe")


def bare_loop(backend, samples, settings, **generate_kwargs) -> list[str]:
    """What a user would write without omnicheck: build inputs, generate, decode. No omnicheck code inside.
    generate_kwargs go to generate() as they are (e.g. the static cache the compared run uses)."""
    import torch
    from PIL import Image

    model, processor, tokenizer = backend.model, backend.processor, backend.tokenizer
    outputs: list[str] = []
    for start in range(0, len(samples), settings.batch_size):
        batch = samples[start : start + settings.batch_size]
        texts, images, audios, videos, metas = [], [], [], [], []
        for sample in batch:
            message = sample.messages[-1]
            content = []
            for part in message.parts:
                if part.kind == "text":
                    content.append({"type": "text", "text": part.text})
                    continue
                content.append({"type": part.kind})
                if part.kind == "image":
                    images.append([Image.open(part.path).convert("RGB")])
                elif part.kind == "audio":
                    import librosa

                    audios.append(librosa.load(str(part.path), sr=16000, mono=True)[0])
                else:
                    from transformers.video_utils import load_video

                    frames, meta = load_video(str(part.path), num_frames=part.num_frames, backend="pyav")
                    videos.append(frames)
                    metas.append(meta)
            texts.append(processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                       add_generation_prompt=True))
        kwargs = {"text": texts, "return_tensors": "pt", "padding": True}
        if images:
            kwargs["images"] = images
        if audios:
            kwargs["audio"] = audios
        if videos:
            kwargs.update(videos=videos, video_metadata=metas, do_sample_frames=False)
        inputs = processor(**kwargs).to(backend.device)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=settings.max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, **generate_kwargs)
        for row in out[:, inputs["input_ids"].shape[1]:]:
            outputs.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    return outputs


def timed(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up: first-call costs (kernels, lazy imports, media caches) are not per-run overhead
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def timed_side_by_side(fns: dict, repeats: int) -> dict[str, tuple[float, object]]:
    """Median seconds of each function, run in turns (a, b, a, b, ...) so drift in clocks or machine load
    falls on all of them alike."""
    values = {name: fn() for name, fn in fns.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            values[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), values[name]) for name in fns}


def plugin_import_seconds() -> dict[str, object]:
    code = (
        "import sys, time; import pytest; t = time.perf_counter(); import omnicheck.plugin; "
        "d = time.perf_counter() - t; heavy = [m for m in ('torch', 'transformers', 'lm_eval', 'numpy', 'librosa', 'av') "
        "if m in sys.modules]; print(d, ','.join(heavy))"
    )
    runs = []
    heavy = ""
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
        seconds, heavy = out.stdout.strip().split(" ", 1) if " " in out.stdout.strip() else (out.stdout.strip(), "")
        runs.append(float(seconds))
    whole = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import omnicheck.plugin"], check=True,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
        whole.append(time.perf_counter() - start)
    return {"plugin_after_pytest_s": statistics.median(runs), "python_c_import_s": statistics.median(whole),
            "heavy_modules_imported": heavy or "none"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="checkpoint folder (default: a tiny gemma4_unified)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--tier", default="full")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    from omnicheck.backends.hf import HFBackend
    from omnicheck.probes import load_probe
    from omnicheck.types import GenerationSettings

    model_path = args.model
    if model_path is None:
        from omnicheck.models.tiny import build_tiny_gemma4_unified

        model_path = build_tiny_gemma4_unified(Path(tempfile.mkdtemp()) / "tiny-gemma4", seed=0)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    backend = HFBackend(model_path, device=args.device)
    info = backend.describe()
    print(f"model {model_path} ({info['model_type']}, {info['parameters']:,} params, {info['dtype']}) on {info['device']}")
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    one = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=1)
    rows = []
    for name in MEDIA_PROBES:
        probe = load_probe(name)
        samples = probe.load_samples(args.tier)
        no_cf = type(probe)
        no_cf_probe = no_cf()
        no_cf_probe.counterfactual = lambda sample: None  # the same generations as the bare loop
        measured = timed_side_by_side({
            "bare": lambda: bare_loop(backend, samples, settings),
            "omnicheck": lambda: no_cf_probe.run(backend, samples, settings),
            "with_cf": lambda: probe.run(backend, samples, settings),
            "batch1": lambda: no_cf_probe.run(backend, samples, one),
        }, args.repeats)
        (bare_s, bare_out), (omni_s, omni_res) = measured["bare"], measured["omnicheck"]
        full_s, (single_s, single_res) = measured["with_cf"][0], measured["batch1"]
        batched_out = [s.output for s in omni_res.samples]
        rows.append({
            "probe": name,
            "samples": len(samples),
            "bare_s": round(bare_s, 3),
            "omnicheck_s": round(omni_s, 3),
            "ratio": round(omni_s / bare_s, 3),
            "with_counterfactual_s": round(full_s, 3),
            "ratio_with_counterfactual": round(full_s / bare_s, 3),
            "batch1_s": round(single_s, 3),
            "batch_speedup": round(single_s / omni_s, 2),
            "batched_equals_batch1": batched_out == [s.output for s in single_res.samples],
            "omnicheck_equals_bare": batched_out == list(bare_out),
        })
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    memory = {"peak_rss_mb": round(peak / 2**20, 1), "rss_before_load_mb": round(rss_before / 2**20, 1),
              "model_weights_mb": round(info["resident_bytes"] / 2**20, 2)}
    backend.close()
    imports = plugin_import_seconds()

    print(f"\n{'probe':16s} {'n':>3s} {'bare s':>8s} {'omni s':>8s} {'ratio':>6s} {'+cf s':>8s} {'ratio':>6s} "
          f"{'b=1 s':>8s} {'speedup':>7s} {'b=1 same':>8s} {'=bare':>6s}")
    for r in rows:
        print(f"{r['probe']:16s} {r['samples']:3d} {r['bare_s']:8.3f} {r['omnicheck_s']:8.3f} {r['ratio']:6.3f} "
              f"{r['with_counterfactual_s']:8.3f} {r['ratio_with_counterfactual']:6.3f} {r['batch1_s']:8.3f} "
              f"{r['batch_speedup']:7.2f} {str(r['batched_equals_batch1']):>8s} {str(r['omnicheck_equals_bare']):>6s}")
    print(f"\nmemory: peak RSS {memory['peak_rss_mb']} MB (process before load {memory['rss_before_load_mb']} MB; "
          f"model weights {memory['model_weights_mb']} MB)")
    print(f"import omnicheck.plugin after pytest: {imports['plugin_after_pytest_s'] * 1000:.1f} ms; "
          f"python -c 'import omnicheck.plugin' whole process: {imports['python_c_import_s'] * 1000:.0f} ms; "
          f"heavy modules imported: {imports['heavy_modules_imported']}")
    if args.json:
        args.json.write_text(json.dumps({"model": str(model_path), "info": info, "probes": rows, "memory": memory,
                                         "imports": imports}, indent=1))


if __name__ == "__main__":
    main()
