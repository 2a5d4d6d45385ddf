"""Quantize a text-only causal LM with llmcompressor into compressed-tensors variants, for checking omnicheck on
real quantized checkpoints of a real model (SmolLM2-135M-Instruct from `omnicheck models smollm2`).

    scripts/setup_quant_env.sh llmcompressor
    /work/venvs/llmcompressor/bin/python scripts/quantize_text_lm.py "$(.venv/bin/omnicheck models smollm2)" \
        --out /tmp/smol-panel

Runs in the llmcompressor venv and imports nothing from omnicheck. The model is loaded in bfloat16 (the float32
NVFP4A16 forward fails in transformers), every Linear but lm_head is quantized, and the one scheme that needs
calibration (NVFP4, activations included) is calibrated on build_quant_panel's English sentences.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_quant_panel import CALIBRATION_TEXT, calibration_dataset  # noqa: E402

# variant folder -> (llmcompressor preset scheme, needs calibration). No int4 W4A16: its 128-column groups do not
# divide SmolLM2's 576-wide hidden size, and llmcompressor refuses it.
SCHEMES = {
    "bf16": (None, False),
    "fp8-dynamic": ("FP8_DYNAMIC", False),
    "nvfp4a16": ("NVFP4A16", False),
    "nvfp4": ("NVFP4", True),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", nargs="*", choices=sorted(SCHEMES))
    args = parser.parse_args(argv)

    import llmcompressor
    import torch
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.base)
    for name in args.only or list(SCHEMES):
        scheme, calibrate = SCHEMES[name]
        out = args.out / name
        shutil.rmtree(out, ignore_errors=True)
        model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.bfloat16)
        if scheme is None:
            model.save_pretrained(out)
        else:
            recipe = QuantizationModifier(targets="Linear", scheme=scheme, ignore=["lm_head"])
            kwargs = {}
            if calibrate:
                kwargs = dict(dataset=calibration_dataset(tokenizer), processor=tokenizer, pipeline="basic",
                              num_calibration_samples=len(CALIBRATION_TEXT), max_seq_length=64)
            oneshot(model=model, recipe=recipe, **kwargs)
            model.save_pretrained(out, save_compressed=True)
        tokenizer.save_pretrained(out)
        (out / "omnicheck-provenance.json").write_text(json.dumps({
            "base": str(args.base), "scheme": scheme or "bfloat16 copy", "targets": "Linear", "ignore": ["lm_head"],
            "calibration": f"{len(CALIBRATION_TEXT)} English sentences (scripts/build_quant_panel.py)" if calibrate else None,
            "llmcompressor": llmcompressor.__version__,
        }, indent=1) + "\n")
        size = sum(p.stat().st_size for p in out.glob("*.safetensors"))
        print(f"{name}: {size / 1e6:.1f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
