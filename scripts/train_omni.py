"""Train omnicheck's small gemma4_unified ("omni-small") from scratch, evaluate it on held-out data, save it.

    # the real run (an H100 takes about 9 minutes, data generation and evaluation included)
    python scripts/train_omni.py train --out /tmp/omni-small --fewshot fixtures/gsm8k/fewshot.jsonl
    # a few CPU steps of a tiny model: checks the pipeline
    python scripts/train_omni.py train --out /tmp/omni-debug --preset debug --device cpu
    # machines without espeak-ng: make a bundle here, set OMNICHECK_ESPEAK=<bundle> there
    python scripts/train_omni.py bundle-espeak --out .trained/espeak
    # held-out files (PNG, WAV, MP4, JSONL) for omnicheck's probes and the tests
    python scripts/train_omni.py heldout --out fixtures/omni-small/heldout --n 8
    # score a checkpoint through omnicheck's transformers backend on held-out files
    python scripts/train_omni.py evaluate --model fixtures/omni-small --data fixtures/omni-small/heldout
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from omnicheck.errors import FixtureError  # noqa: E402


def read_fewshot(path: str | None) -> list[dict[str, str]]:
    if not path:
        return []
    file = Path(path)
    if not file.is_file():
        raise FixtureError(f"GSM8K few-shot file {file} not found", "pass --fewshot fixtures/gsm8k/fewshot.jsonl or omit it")
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def cmd_train(args: argparse.Namespace) -> None:
    import dataclasses

    from omnicheck.models.train.trainer import TrainConfig, train

    cfg = TrainConfig.debug() if args.preset == "debug" else TrainConfig()
    overrides = {k: v for k, v in {"steps": args.steps, "train_seconds": args.train_seconds, "seed": args.seed,
                                   "workers": args.workers, "heldout": args.heldout}.items() if v is not None}
    cfg = dataclasses.replace(cfg, **overrides)
    device = args.device or ("cuda" if __import__("torch").cuda.is_available() else "cpu")
    record = train(cfg, Path(args.out), read_fewshot(args.fewshot), device, log=lambda m: print(m, flush=True))
    print(json.dumps({"steps": record["steps"], "seconds": record["seconds"]}))


def cmd_bundle_espeak(args: argparse.Namespace) -> None:
    """espeak-ng binary + its library + libsonic + a stub libpcaudio (playback only; WAV output never calls it) +
    the English voice data: about 2 MB, runs on any x86-64 glibc Linux."""
    out = Path(args.out)
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise FixtureError("espeak-ng is not installed here", "apt-get install espeak-ng")
    lib = Path("/usr/lib/x86_64-linux-gnu")
    data = lib / "espeak-ng-data"
    shutil.rmtree(out, ignore_errors=True)
    (out / "lib").mkdir(parents=True)
    shutil.copy(binary, out / "espeak-ng")
    for name in ("libespeak-ng.so.1", "libsonic.so.0"):
        shutil.copy(lib / name, out / "lib" / name, follow_symlinks=True)
    stub = out / "pcaudio_stub.c"
    stub.write_text(PCAUDIO_STUB)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-Wl,-soname,libpcaudio.so.0", "-o", str(out / "lib" / "libpcaudio.so.0"),
                    str(stub)], check=True)
    stub.unlink()
    (out / "espeak-ng-data" / "lang" / "gmw").mkdir(parents=True)
    for name in ("phondata", "phontab", "phonindex", "intonations", "en_dict", "phondata-manifest"):
        shutil.copy(data / name, out / "espeak-ng-data" / name)
    shutil.copytree(data / "voices" / "!v", out / "espeak-ng-data" / "voices" / "!v")
    for file in (data / "lang" / "gmw").glob("en*"):
        shutil.copy(file, out / "espeak-ng-data" / "lang" / "gmw" / file.name)
    print(f"espeak-ng bundle in {out}: set OMNICHECK_ESPEAK={out}")


PCAUDIO_STUB = """/* espeak-ng links libpcaudio for live playback; writing WAV never calls it. */
#include <stddef.h>
struct audio_object;
struct audio_object *create_audio_device_object(const char *d, const char *a, const char *b) { return NULL; }
int audio_object_open(struct audio_object *o, int f, unsigned r, unsigned char c) { return -1; }
void audio_object_close(struct audio_object *o) {}
void audio_object_destroy(struct audio_object *o) {}
int audio_object_write(struct audio_object *o, const void *d, size_t b) { return -1; }
int audio_object_drain(struct audio_object *o) { return 0; }
int audio_object_flush(struct audio_object *o) { return 0; }
const char *audio_object_strerror(struct audio_object *o, int e) { return "no audio device"; }
"""


def cmd_heldout(args: argparse.Namespace) -> None:
    from omnicheck.models.train import heldout

    items = heldout.make_heldout(args.n, read_fewshot(args.fewshot))
    folder = heldout.write_files(items, Path(args.out))
    print(f"held-out files ({args.n} per task) in {folder}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from omnicheck.models.train.evaluate import evaluate_folder

    results = evaluate_folder(
        Path(args.model), Path(args.data), limit=args.limit, fewshot=read_fewshot(args.fewshot), dtype=args.dtype
    )
    print(json.dumps({t: {k: v for k, v in r.items() if k != "examples"} for t, r in results.items()}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def main() -> None:
    os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train")
    p.add_argument("--out", required=True)
    p.add_argument("--preset", choices=("full", "debug"), default="full")
    p.add_argument("--device")
    p.add_argument("--fewshot", help="GSM8K few-shot JSONL (lm-eval's gsm8k exemplars) to train the 8-shot prompt on")
    p.add_argument("--steps", type=int)
    p.add_argument("--train-seconds", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int)
    p.add_argument("--heldout", type=int)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("bundle-espeak")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_bundle_espeak)
    p = sub.add_parser("heldout")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--fewshot")
    p.set_defaults(func=cmd_heldout)
    p = sub.add_parser("evaluate")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--limit", type=int)
    p.add_argument("--fewshot")
    p.add_argument("--json")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), help="default: the checkpoint's own (bfloat16)")
    p.set_defaults(func=cmd_evaluate)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
