"""Does a large image set stream? Peak memory of image_caption on 5,000 photos against 50, in one run (issue 15).

For each layout (an lmms-lab/COCO-Caption style parquet file with the JPEG bytes inside; a COCO folder with
annotations/captions_val2017.json and val2017/), the script writes a set of SMALL and of LARGE distinct photos
(crops of the bundled ones, 128 px, three generated captions each) into a temp folder, then runs each size in a
fresh child process: probe.load_samples("full") -> probe.run(backend, samples) with the counterfactual pass ->
every score (key-term recall, MiniLM similarity, CIDEr-D). It prints each child's peak RSS and LARGE / SMALL.

The backend decodes every batch's images with the transformers backend's own loader (omnicheck.messages.
load_image) and answers a fixed caption: a model's weights weigh the same at any set size, and a real one takes
~0.35 s a photo on this CPU (30 min for 5,000), so by default it is left out, which makes the ratio stricter.
--model PATH runs a real in-process model instead (e.g. on a GPU machine).

    python benchmarks/bench_streaming.py [--small 50] [--large 5000] [--batch-size 16] [--model PATH]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "china", "flower", "coins", "camera", "grace_hopper", "horse")
WORDS = ("a the cat dog man woman child car bus street table plate food cup bike tree grass sky building water "
         "red blue green white black small large old young sits stands walks rides holds looks near on in with "
         "next to under over two three people group field road window room kitchen beach park snow").split()
SIDE = 128


def photos(count: int, seed: int = 0):
    """`count` distinct JPEGs (crops of the bundled photos at different places and sizes) with three captions."""
    from PIL import Image

    rng = random.Random(seed)
    sources = [Image.open(REPO / "fixtures" / "images" / f"{name}.jpg").convert("RGB") for name in PHOTOS]
    for index in range(count):
        source = sources[index % len(sources)]
        size = rng.randint(96, min(source.size))
        left, top = rng.randint(0, source.width - size), rng.randint(0, source.height - size)
        out = io.BytesIO()
        source.crop((left, top, left + size, top + size)).resize((SIDE, SIDE)).save(out, format="JPEG", quality=85)
        captions = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))) for _ in range(3)]
        yield index, out.getvalue(), captions


def write_parquet(folder: Path, count: int) -> Path:
    import datasets
    from datasets import Dataset, Features, Image, List, Value

    datasets.disable_progress_bars()
    rows = {"question_id": [], "image": [], "answer": []}
    for index, jpeg, captions in photos(count):
        rows["question_id"].append(f"{index:012d}.jpg")
        rows["image"].append({"bytes": jpeg, "path": None})
        rows["answer"].append(captions)
    features = Features({"question_id": Value("string"), "image": Image(), "answer": List(Value("string"))})
    path = folder / f"coco-caption-{count}.parquet"
    Dataset.from_dict(rows, features=features).to_parquet(str(path))  # datasets' own row groups (100 images)
    return path


def write_coco(folder: Path, count: int) -> Path:
    root = folder / f"coco-{count}"
    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    images, annotations = [], []
    for index, jpeg, captions in photos(count):
        name = f"{index:012d}.jpg"
        (root / "val2017" / name).write_bytes(jpeg)
        images.append({"id": index, "file_name": name, "height": SIDE, "width": SIDE})
        annotations += [{"image_id": index, "id": 3 * index + i, "caption": c} for i, c in enumerate(captions)]
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    return root


class DecodingBackend:
    """Decodes each batch's images exactly as the transformers backend does, then answers a fixed caption."""

    name = "decode-only"
    modalities = frozenset({"image"})

    def __init__(self):
        self.decoded = 0

    def generate(self, samples, settings):
        from omnicheck.backends.base import Generation
        from omnicheck.messages import load_image

        out = []
        for start in range(0, len(samples), settings.batch_size):
            batch = samples[start : start + settings.batch_size]
            images = [load_image(p.path) for s in batch for m in s.messages for p in m.media()]
            self.decoded += len(images)
            out += [Generation(text="a small cat sits on a red table near a window", tokens=11) for _ in batch]
            del images
        return out


def child(data: Path, model: str | None, batch_size: int) -> None:
    from omnicheck.probes import load_probe
    from omnicheck.probes.common import sentence_encoder
    from omnicheck.types import GenerationSettings

    sentence_encoder()  # loaded at any size: count it on both sides
    start = time.perf_counter()
    if model:
        from omnicheck.backends.hf import HFBackend

        backend = HFBackend(model, name="model", device=None)
    else:
        backend = DecodingBackend()
    probe = load_probe("image_caption", data)
    samples = probe.load_samples("full")
    result = probe.run(backend, samples, GenerationSettings(max_new_tokens=8, batch_size=batch_size))
    seconds = time.perf_counter() - start
    print(json.dumps({
        "samples": len(result.samples), "counterfactual": len(result.counterfactual),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds": seconds, "cider_d": result.aggregates.get("cider_d"),
        "decoded": getattr(backend, "decoded", None),
    }))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--large", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default=None, help="a checkpoint folder to generate with (default: decode only)")
    parser.add_argument("--layouts", default="parquet,coco")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child), args.model, args.batch_size)
        return 0
    writers = {"parquet": write_parquet, "coco": write_coco}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"image_caption, batch size {args.batch_size}, backend: {args.model or 'decode-only (no model)'}")
        for layout in args.layouts.split(","):
            peaks = {}
            for count in (args.small, args.large):
                data = writers[layout](folder, count)
                env = dict(os.environ, OMNICHECK_CACHE=str(folder / f"cache-{layout}-{count}"))
                command = [sys.executable, __file__, "--child", str(data), "--batch-size", str(args.batch_size)]
                command += ["--model", args.model] if args.model else []
                done = subprocess.run(command, env=env, capture_output=True, text=True)
                if done.returncode:
                    print(done.stderr[-3000:])
                    return 1
                figures = json.loads(done.stdout.strip().splitlines()[-1])
                peaks[count] = figures["peak_rss_mb"]
                print(f"  {layout:8s} {count:5d} photos: {figures['samples']} scored (+{figures['counterfactual']} "
                      f"blanked), peak RSS {figures['peak_rss_mb']:.0f} MB, {figures['seconds']:.0f} s, "
                      f"{figures['samples'] / figures['seconds']:.1f} photos/s")
            print(f"  {layout:8s} peak RSS {args.large} / {args.small} photos: {peaks[args.large] / peaks[args.small]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
