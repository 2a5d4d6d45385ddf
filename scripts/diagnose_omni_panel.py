"""Activation-range diagnosis of omni-small's W4A4 variants, per modality, on held-out inputs.

    python scripts/diagnose_omni_panel.py fixtures/omni-panel/nvfp4-textcal /work/omni-panel-extra/nvfp4-mixcal

For each checkpoint: 4 held-out prompts per modality through omni-small's processor, then
omnicheck.formats.diagnosis.diagnose_activation_ranges; prints the mean over quantized layers of the clipped share
and the input quantization error per modality, and the diagnosis's own summary.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HELDOUT = REPO / "fixtures" / "omni-small" / "heldout"
PER_MODALITY = 4


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (HELDOUT / name).read_text().splitlines() if line.strip()][:PER_MODALITY]


def inputs(processor) -> dict[str, list[dict]]:
    import soundfile as sf
    from PIL import Image
    from transformers.video_utils import load_video

    def encode(kind: str | None, prompt: str, **media) -> dict:
        content = ([{"type": kind}] if kind else []) + [{"type": "text", "text": prompt}]
        text = processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                             add_generation_prompt=True)
        return dict(processor(text=[text], return_tensors="pt", **media))

    out: dict[str, list[dict]] = {"text": [], "image": [], "audio": [], "video": []}
    for r in rows("ifeval_synthetic.jsonl"):
        out["text"].append(encode(None, r["prompt"]))
    for r in rows("images.jsonl"):
        out["image"].append(encode("image", r["prompt"], images=[[Image.open(HELDOUT / r["file"]).convert("RGB")]]))
    for r in rows("audio.jsonl"):
        audio, _ = sf.read(HELDOUT / r["file"], dtype="float32")
        out["audio"].append(encode("audio", r["prompt"], audio=[audio]))
    for r in rows("video.jsonl"):
        frames, metadata = load_video(str(HELDOUT / r["file"]), backend="pyav", num_frames=8)
        out["video"].append(encode("video", r["prompt"], videos=[frames], video_metadata=[metadata],
                                   do_sample_frames=False))
    return out


def main(paths: list[str]) -> int:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from omnicheck.formats.diagnosis import diagnose_activation_ranges

    torch.manual_seed(0)
    for path in paths:
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path).eval()
        diagnosis = diagnose_activation_ranges(model, inputs(processor))
        print(f"## {path}")
        for modality in ("text", "image", "audio", "video"):
            mine = [r for r in diagnosis.rows if r.modality == modality]
            if mine:
                clip = sum(r.clipped_fraction for r in mine) / len(mine)
                err = sum(r.relative_error for r in mine) / len(mine)
                print(f"{modality}: {len(mine)} layers, clipped {clip:.4%}, input quantization error {err:.3f}")
        for line in diagnosis.summary:
            print(f"summary: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
