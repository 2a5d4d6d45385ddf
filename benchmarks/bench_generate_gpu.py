"""omnicheck's generation path vs a bare transformers loop, on whatever device torch sees (issue 7, GPU half).

Runs where only torch, transformers and pillow exist (the lent GPU machine): image and text prompts from the
bundled fixtures, the backend's generate() against bare_loop() from bench_overhead.py, same model, same
samples, same batch size, timed side by side; scoring is left out (its encoder cannot travel there).

    python benchmarks/bench_generate_gpu.py [--model PATH] [--repeats 5] [--batch-size 8] [--max-new-tokens 32]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_overhead import bare_loop, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from omnicheck.backends.hf import HFBackend
    from omnicheck.types import GenerationSettings, ImagePart, Message, Sample

    model = args.model
    if model is None:
        from omnicheck.models.tiny import build_tiny_gemma4_unified

        model = build_tiny_gemma4_unified(Path(tempfile.mkdtemp()) / "tiny", seed=0)
    images = sorted((ROOT / "fixtures" / "images").glob("*.jpg"))
    sets = {
        "image": [Sample(p.stem, (Message.user(ImagePart(p), "Describe this image in one sentence."),)) for p in images],
        "text": [Sample(str(i), (Message.user(f"What is {i} plus {i + 3}?"),)) for i in range(16)],
    }
    backend = HFBackend(model)
    info = backend.describe()
    print(f"{info['model_type']} {info['parameters']:,} params {info['dtype']} on {info['device']}; "
          f"torch {torch.__version__}")
    rows = []
    for name, samples in sets.items():
        settings = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
        one = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=1)
        bare_s, bare = timed(lambda: bare_loop(backend, samples, settings), args.repeats)
        omni_s, omni = timed(lambda: backend.generate(samples, settings), args.repeats)
        single_s, single = timed(lambda: backend.generate(samples, one), args.repeats)
        rows.append({
            "set": name, "samples": len(samples), "bare_s": round(bare_s, 4), "omnicheck_s": round(omni_s, 4),
            "ratio": round(omni_s / bare_s, 3), "batch1_s": round(single_s, 4), "batch_speedup": round(single_s / omni_s, 2),
            "same_as_bare": [g.text for g in omni] == list(bare),
            "batched_equals_batch1": [g.text for g in omni] == [g.text for g in single],
        })
        print(rows[-1])
    if torch.cuda.is_available():
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB; model weights "
              f"{info['resident_bytes'] / 2**20:.1f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"info": info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
