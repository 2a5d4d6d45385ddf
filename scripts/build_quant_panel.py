"""Build the quantized test panel: real llmcompressor and ModelOpt checkpoints of the tiny gemma4_unified model.

    scripts/setup_quant_env.sh                  # once: /work/venvs/llmcompressor and /work/venvs/modelopt
    /work/main/.venv/bin/python scripts/build_quant_panel.py all --out fixtures/checkpoints
    # issue 14's recipes (published Gemma 4 recipes on tiny gemma4_unified, gemma4 E4B-style and gemma4 MoE bases),
    # added to the same folder without rebuilding the checkpoints above
    /work/main/.venv/bin/python scripts/build_quant_panel.py recipes --out fixtures/checkpoints
    # the trained omni-small and its panel (committed: nvfp4a16, nvfp4-textcal; the rest rebuilt on demand)
    /work/main/.venv/bin/python scripts/build_quant_panel.py omni --base fixtures/omni-small \
        --out fixtures/omni-panel --only nvfp4a16 nvfp4-textcal
    /work/main/.venv/bin/python scripts/build_quant_panel.py omni --base fixtures/omni-small \
        --out /work/omni-panel-extra --only nvfp4-mixcal fp8-dynamic nvfp4-mlp

`all` runs in the runtime venv: it builds the bf16 base with omnicheck.models.tiny, then runs this same file
under each quantization venv (`llmcompressor` / `modelopt` subcommands, which import nothing from omnicheck),
and writes provenance.json + PROVENANCE.md. CI does not rebuild the panel; this script is for reproducibility.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

VENVS = Path(os.environ.get("OMNICHECK_VENVS", "/work/venvs"))
PROCESSOR_FILES = ("tokenizer.json", "tokenizer_config.json", "processor_config.json", "chat_template.jinja")
LM_LINEAR = r"re:.*language_model.*_proj$"  # the language model's q/k/v/o and MLP projections, nothing else
LM_MLP = r"re:.*language_model.*mlp\.(gate|up|down)_proj$"
MEDIA_IGNORE = ["lm_head", "re:.*embed_vision.*", "re:.*embed_audio.*"]

# Text-only calibration set, written for this panel: plain English sentences, no media.
CALIBRATION_TEXT = [
    "The morning train was late, so she read the paper on the platform.",
    "Add two cups of flour and stir until the batter is smooth.",
    "A small boat drifted past the harbour lights after midnight.",
    "He counted twelve apples, gave away five, and kept the rest.",
    "The museum opens at nine and closes early on Sundays.",
    "Rain is expected tomorrow, with clear skies by the weekend.",
    "Our team finished the report two days ahead of schedule.",
    "The old clock in the hall chimes every quarter hour.",
    "Please write a short summary of the meeting in three lines.",
    "The river rose after the storm and flooded the lower field.",
    "Seven students solved the puzzle before the bell rang.",
    "She planted tomatoes, beans and basil along the fence.",
    "The library lends books, films and sometimes even tools.",
    "After dinner they walked along the beach and talked about work.",
    "The recipe needs three eggs, a pinch of salt and some butter.",
    "A red kite circled high above the hill in the afternoon wind.",
    "Natalia sold clips to 48 of her friends in April.",
    "Write a poem about the sea without using any commas.",
    "The quick brown fox jumps over the lazy dog.",
    "How many clips did Natalia sell altogether in April and May?",
    "The bakery on the corner sells bread until noon.",
    "Mountains covered in snow rose behind the quiet village.",
    "The engineer checked every bolt twice before the test.",
    "They moved the meeting to Thursday because of the holiday.",
    "A cup of tea and a good book make a calm evening.",
    "The children built a sandcastle with four towers and a moat.",
    "Her bicycle had a flat tyre, so she walked to school.",
    "The concert hall was full and the orchestra began to play.",
    "Count from one to ten and then back down to one.",
    "The farmer sold eggs at the market every Saturday.",
    "Translate the word house into French and Spanish.",
    "The city council approved the new park near the river.",
]
CALIBRATION_NAME = "omnicheck panel text-only sentences (32, in scripts/build_quant_panel.py)"

LLMC_VARIANTS = {
    "ct-nvfp4a16": dict(scheme="NVFP4A16", targets=[LM_LINEAR], ignore=["lm_head"], calibrate=False,
                        about="weight-only NVFP4 on the language model's linear layers"),
    "ct-nvfp4-textcal": dict(scheme="NVFP4", targets=[LM_LINEAR], ignore=["lm_head"], calibrate=True,
                             about="W4A4 NVFP4 on the language model, input global scales calibrated on text only"),
    "ct-fp8-dynamic": dict(scheme="FP8_DYNAMIC", targets=[LM_LINEAR], ignore=["lm_head"], calibrate=False,
                           about="FP8 per-channel weights, dynamic per-token FP8 activations"),
    "ct-nvfp4-mlp": dict(scheme="NVFP4", targets=[LM_MLP], ignore=["lm_head"], calibrate=True,
                         about="W4A4 NVFP4 on MLP projections only, calibrated on text only"),
    "ct-nvfp4a16-media": dict(scheme="NVFP4A16", targets=["Linear"], ignore=["lm_head"], calibrate=False,
                              about="weight-only NVFP4 on every Linear but lm_head: vision/audio projections quantized"),
    "ct-nvfp4a16-ignore-mismatch": dict(
        scheme="NVFP4A16", targets=["Linear"], ignore=MEDIA_IGNORE, calibrate=False,
        about="the ignore-list bug: llmcompressor writes the media ignore entries with on-disk names "
              "(model.vision_embedder.patch_dense) that match no run-time module, so transformers quantizes "
              "them on load and they come back random; must be refused"),
}
# The trained omni-small's panel. Calibration "text" / "mix" reads the processor-made samples written by
# `omni_calibration` (generated data from omnicheck.models.train with its own seed, held-out texts removed).
OMNI_VARIANTS = {
    "nvfp4a16": dict(scheme="NVFP4A16", targets=[LM_LINEAR], ignore=["lm_head"], calibrate=False,
                     about="weight-only NVFP4 on the language model's linear layers"),
    "nvfp4-textcal": dict(scheme="NVFP4", targets=[LM_LINEAR], ignore=["lm_head"], calibrate="text",
                          about="W4A4 NVFP4 on the language model, input global scales calibrated on text only"),
    "nvfp4-mixcal": dict(scheme="NVFP4", targets=[LM_LINEAR], ignore=["lm_head"], calibrate="mix",
                         about="W4A4 NVFP4 on the language model, calibrated on a text + image + audio mix"),
    "fp8-dynamic": dict(scheme="FP8_DYNAMIC", targets=[LM_LINEAR], ignore=["lm_head"], calibrate=False,
                        about="FP8 per-channel weights, dynamic per-token FP8 activations"),
    "nvfp4-mlp": dict(scheme="NVFP4", targets=[LM_MLP], ignore=["lm_head"], calibrate="text",
                      about="W4A4 NVFP4 on the MLP projections only, calibrated on text only"),
}
# The write-up recipes on omni-small too (issue 14's table: a trained model's verdicts mean something).
OMNI_VARIANTS.update({
    "nvfp4a16-writeup": dict(scheme="NVFP4A16", targets=["Linear"], ignore=["lm_head", "re:.*embedding_projection.*"],
                             calibrate=False, about="the 12B write-up's NVFP4A16 recipe, its ignore list verbatim"),
    "nvfp4-writeup-textcal": dict(scheme="NVFP4", targets=["Linear"], ignore=["lm_head", "re:.*embedding_projection.*"],
                                  calibrate="text", about="the 12B write-up's NVFP4 W4A4 recipe, its ignore list "
                                  "verbatim, calibrated on text only"),
})
OMNI_MODELOPT = {
    "mo-mlp-fp8kv": dict(config="NVFP4_MLP_ONLY_CFG", kv_config="FP8_KV_CFG",
                         about="ModelOpt NVFP4 W4A4 on the MLP only with an FP8 KV cache, calibrated on text"),
    "mo-fp8-pb-wo": dict(config="FP8_2D_BLOCKWISE_WEIGHT_ONLY_CFG",
                         about="ModelOpt FP8 weight-only in 128x128 blocks"),
}
OMNI_CALIBRATION_SEED = 4242  # not the held-out seed (20261123) nor training's (0)
OMNI_CALIBRATION_COUNTS = {"text": {"gsm": 12, "ifeval": 12}, "mix": {"gsm": 4, "ifeval": 4, "image": 8, "audio": 8}}

MODELOPT_VARIANTS = {
    "mo-nvfp4": dict(config="NVFP4_DEFAULT_CFG", about="ModelOpt NVFP4 W4A4 (default config), calibrated on text only"),
    "mo-nvfp4-mlp": dict(config="NVFP4_MLP_ONLY_CFG", about="ModelOpt NVFP4 W4A4 on MLP layers only, text calibration"),
    "mo-w4a16-nvfp4": dict(config="W4A16_NVFP4_CFG", about="ModelOpt weight-only NVFP4 (W4A16_NVFP4)"),
    "mo-fp8": dict(config="FP8_DEFAULT_CFG", about="ModelOpt FP8 per-tensor weights and static activations"),
}

# --- issue 14: the recipes of the Gemma 4 write-ups, one checkpoint each ---
# Bases beside base-bf16: tiny gemma4 models from omnicheck.models.tiny_gemma4 (seed 0, bfloat16).
GEMMA4_BASES = {"gemma4-e4b-bf16": "e4b", "gemma4-moe-bf16": "moe"}
WRITEUP_12B_IGNORE = ["lm_head", "re:.*embedding_projection.*"]  # the 12B write-up's list, verbatim
E4B_IGNORE = ["lm_head", "re:.*vision_tower.*", "re:.*audio_tower.*", "re:.*embed_vision.*", "re:.*embed_audio.*"]
FP8_BLOCK_WEIGHTS = {"num_bits": 8, "type": "float", "strategy": "block", "block_structure": [128, 128],
                     "symmetric": True, "dynamic": False}
FP8_KV = {"num_bits": 8, "type": "float", "strategy": "tensor", "symmetric": True, "dynamic": False}
RECIPE_LLMC = {
    "ct-12b-nvfp4a16-writeup": dict(
        base="base-bf16", scheme="NVFP4A16", targets=["Linear"], ignore=WRITEUP_12B_IGNORE, calibrate=False,
        about="the 12B write-up's NVFP4A16 recipe, its ignore list verbatim: the vision patch_dense stays quantized"),
    "ct-12b-nvfp4-writeup-textcal": dict(
        base="base-bf16", scheme="NVFP4", targets=["Linear"], ignore=WRITEUP_12B_IGNORE, calibrate=True,
        about="the 12B write-up's NVFP4 W4A4 recipe, its ignore list verbatim, calibrated on text: the quantized "
              "vision patch_dense never sees a calibration sample"),
    "ct-e4b-nvfp4a16": dict(
        base="gemma4-e4b-bf16", scheme="NVFP4A16", targets=["Linear"], ignore=E4B_IGNORE, calibrate=False,
        about="the E4B NVFP4A16 recipe: every Linear but lm_head, the towers and their embedders"),
    "ct-e4b-fp8-block-fp8kv": dict(
        base="gemma4-e4b-bf16", config_groups={"group_0": {"targets": ["Linear"], "weights": FP8_BLOCK_WEIGHTS}},
        kv_cache_scheme=FP8_KV, ignore=E4B_IGNORE, calibrate=True,
        about="FP8 weight-only in 128x128 blocks with an FP8 KV cache (static per-tensor k/v scales calibrated on "
              "text)"),
}
RECIPE_MODELOPT = {
    "mo-nvfp4-mlp-fp8kv": dict(
        base="base-bf16", config="NVFP4_MLP_ONLY_CFG", kv_config="FP8_KV_CFG",
        about="AxionML's recipe: ModelOpt NVFP4 W4A4 on the MLP only with an FP8 KV cache, calibrated on text"),
    "mo-e4b-fp8-pb-wo": dict(
        base="gemma4-e4b-bf16", config="FP8_2D_BLOCKWISE_WEIGHT_ONLY_CFG",
        about="its FP8 sister: ModelOpt FP8 weight-only in 128x128 blocks (FP8_2D_BLOCKWISE_WEIGHT_ONLY_CFG)"),
    "mo-moe-nvfp4": dict(
        base="gemma4-moe-bf16", config="NVFP4_DEFAULT_CFG",
        about="the 26B-A4B recipe: ModelOpt NVFP4 W4A4 on a gemma4 MoE, calibrated on text; ModelOpt's fused-experts "
              "plugin exports every expert unfused as experts.{i}.gate_proj/up_proj/down_proj"),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def versions(*names: str) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def copy_processor(base: Path, out: Path) -> None:
    for name in PROCESSOR_FILES:
        if (base / name).exists():
            shutil.copy2(base / name, out / name)


def record(out: Path, name: str, tool: str, recipe: dict, calibration: dict | None, command: str) -> dict:
    weights = out / "model.safetensors"
    return {
        "name": name,
        "tool": tool,
        "versions": versions("llmcompressor", "nvidia-modelopt", "compressed-tensors", "transformers", "torch"),
        "python": platform.python_version(),
        "recipe": recipe,
        "calibration": calibration,
        "command": command,
        "sha256": {"model.safetensors": sha256(weights)},
        "bytes": sum(f.stat().st_size for f in out.iterdir()),
    }


# --- base: runtime venv ---


def build_base(out: Path, seed: int, gemma4: str | None = None) -> dict:
    """The bf16 base: tiny gemma4_unified, or tiny gemma4 (`gemma4` = "e4b" or "moe")."""
    import tempfile

    import torch
    from transformers import AutoModelForImageTextToText

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from omnicheck.models.tiny import build_tiny_gemma4_unified
    from omnicheck.models.tiny_gemma4 import build_tiny_gemma4

    with tempfile.TemporaryDirectory() as tmp:
        built = build_tiny_gemma4(Path(tmp), gemma4, seed=seed) if gemma4 else build_tiny_gemma4_unified(Path(tmp), seed=seed)
        model = AutoModelForImageTextToText.from_pretrained(built, dtype=torch.bfloat16)
        if out.exists():
            shutil.rmtree(out)
        model.save_pretrained(out)
        copy_processor(built, out)
        shutil.copy2(built / "omnicheck_build.json", out / "omnicheck_build.json")
    builder = f"build_tiny_gemma4(variant={gemma4!r}, seed={seed})" if gemma4 else f"build_tiny_gemma4_unified(seed={seed})"
    module = "omnicheck.models.tiny_gemma4.build_tiny_gemma4" if gemma4 else "omnicheck.models.tiny.build_tiny_gemma4_unified"
    recipe = {"seed": seed, "dtype": "bfloat16", **({"variant": gemma4} if gemma4 else {})}
    return record(out, out.name, module, recipe, None, f"{builder} then from_pretrained(dtype=bfloat16).save_pretrained")


# --- llmcompressor venv ---


def calibration_dataset(tokenizer):
    from datasets import Dataset

    enc = tokenizer(CALIBRATION_TEXT, padding=False)
    return Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})


def processor_dataset(samples: list[dict]):
    """Processor outputs saved by `omni_calibration`, one sample per row, as a Dataset plus a batch-of-one collator."""
    import torch
    from datasets import Dataset

    rows = [{k: v.tolist() for k, v in sample.items()} for sample in samples]
    dtypes = {k: v.dtype for sample in samples for k, v in sample.items()}

    def collate(batch: list[dict]) -> dict:
        return {k: torch.tensor(v, dtype=dtypes[k]) for k, v in batch[0].items()}

    return Dataset.from_list(rows), collate


def build_llmcompressor(base: Path, root: Path, names: list[str], calibration: Path | None = None) -> list[dict]:
    import torch
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    saved = torch.load(calibration) if calibration else {}
    records = []
    for name in names:
        spec = LLMC_VARIANTS.get(name) or RECIPE_LLMC.get(name) or OMNI_VARIANTS[name]
        source = root / spec["base"] if "base" in spec else base
        out = root / name
        if out.exists():
            shutil.rmtree(out)
        model = AutoModelForImageTextToText.from_pretrained(source, dtype=torch.bfloat16)
        recipe_words = {k: spec[k] for k in ("scheme", "config_groups", "targets", "ignore", "kv_cache_scheme")
                        if k in spec}
        recipe = QuantizationModifier(**recipe_words)
        kwargs = {}
        calibration = None
        if spec["calibrate"] in ("text", "mix"):
            cal = saved[spec["calibrate"]]
            dataset, collate = processor_dataset(cal["samples"])
            kwargs = dict(dataset=dataset, data_collator=collate, processor=tokenizer, pipeline="basic",
                          num_calibration_samples=len(dataset))
            calibration = {k: cal[k] for k in ("dataset", "samples_by_task", "modalities")}
            calibration["samples"] = len(dataset)
        elif spec["calibrate"]:
            kwargs = dict(dataset=calibration_dataset(tokenizer), processor=tokenizer, pipeline="basic",
                          num_calibration_samples=len(CALIBRATION_TEXT), max_seq_length=64)
            calibration = {"dataset": CALIBRATION_NAME, "samples": len(CALIBRATION_TEXT), "modalities": ["text"]}
        oneshot(model=model, recipe=recipe, **kwargs)
        model.save_pretrained(out, save_compressed=True)
        copy_processor(source, out)
        arguments = ", ".join(f"{k}={v!r}" for k, v in recipe_words.items())
        command = (f"oneshot(model, recipe=QuantizationModifier({arguments})"
                   + (f", dataset=<{(calibration or {}).get('dataset')}>, pipeline='basic'" if calibration else "")
                   + "); model.save_pretrained(out, save_compressed=True)")
        rec = record(out, name, "llmcompressor", recipe_words, calibration, command)
        rec["about"] = spec["about"]
        if "base" in spec:
            rec["base"] = spec["base"]
        records.append(rec)
        print(f"built {name}: {rec['bytes']} bytes", flush=True)
    return records


def omni_calibration(base: Path, out_file: Path) -> Path:
    """Calibration samples for the omni panel, made here with omni-small's own processor from freshly generated
    data (seed OMNI_CALIBRATION_SEED; any text equal to a held-out one is dropped): text-only and a mix."""
    import random

    import numpy as np
    import torch
    from PIL import Image
    from transformers import AutoProcessor

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from omnicheck.models.train.heldout import excluded_texts, make_heldout

    processor = AutoProcessor.from_pretrained(base)
    held_out = excluded_texts(make_heldout(24, with_audio=False))
    pool = make_heldout(24, seed=OMNI_CALIBRATION_SEED)
    random.Random(OMNI_CALIBRATION_SEED).shuffle(pool["gsm"])

    def encode(item) -> dict:
        messages = item.messages()
        if isinstance(item.target, str):  # caption / transcript: calibrate on the answer as well
            messages = messages + [{"role": "assistant", "content": item.target}]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=not isinstance(item.target, str))
        kwargs = {"text": [text], "return_tensors": "pt"}
        if item.task == "image":
            kwargs["images"] = [[Image.fromarray(item.image)]]
        elif item.task == "audio":
            kwargs["audio"] = [item.audio.astype(np.float32) / 32768.0]
        return dict(processor(**kwargs))

    saved = {}
    for mix, counts in OMNI_CALIBRATION_COUNTS.items():
        chosen = [it for task, n in counts.items()
                  for it in [i for i in pool[task] if i.prompt not in held_out and str(i.target) not in held_out][:n]]
        saved[mix] = {
            "samples": [encode(it) for it in chosen],
            "samples_by_task": counts,
            "modalities": sorted({"text" if t in ("gsm", "ifeval") else t for t in counts}),
            "dataset": f"generated by omnicheck.models.train.heldout.make_heldout(seed={OMNI_CALIBRATION_SEED}), "
                       f"held-out texts removed, through omni-small's processor: {counts}",
        }
    torch.save(saved, out_file)
    return out_file


def build_omni(base: Path, root: Path, names: list[str]) -> list[dict]:
    llmc = [n for n in names if n not in OMNI_MODELOPT]
    records = []
    if llmc:
        calibration = omni_calibration(base, root / ".omni-calibration.pt")
        try:
            records += run_in_venv("llmcompressor", "llmcompressor", base, root, llmc, ["--calibration", str(calibration)])
        finally:
            calibration.unlink(missing_ok=True)
    modelopt = [n for n in names if n in OMNI_MODELOPT]
    if modelopt:
        records += run_in_venv("modelopt", "modelopt", base, root, modelopt)
    for rec in records:
        rec["base"] = str(base)
    return records


# --- ModelOpt venv ---


def build_modelopt(base: Path, root: Path, names: list[str]) -> list[dict]:
    import modelopt.torch.quantization as mtq
    import torch
    from modelopt.torch.export import export_hf_checkpoint
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)

    def forward_loop(model):
        with torch.no_grad():
            for text in CALIBRATION_TEXT:
                model(**tokenizer(text, return_tensors="pt"))

    records = []
    for name in names:
        spec = MODELOPT_VARIANTS.get(name) or RECIPE_MODELOPT.get(name) or OMNI_MODELOPT[name]
        source = root / spec["base"] if "base" in spec else base
        out = root / name
        if out.exists():
            shutil.rmtree(out)
        model = AutoModelForImageTextToText.from_pretrained(source, dtype=torch.bfloat16).eval()
        config = getattr(mtq, spec["config"])
        config_words = f"mtq.{spec['config']}"
        if "kv_config" in spec:  # a KV-cache preset is a partial config: its quantizer rules join the model's
            config = {**config, "quant_cfg": list(config["quant_cfg"]) + list(getattr(mtq, spec["kv_config"])["quant_cfg"])}
            config_words = f"{config_words} + mtq.{spec['kv_config']}['quant_cfg']"
        model = mtq.quantize(model, config, forward_loop)
        export_hf_checkpoint(model, export_dir=out)
        copy_processor(source, out)
        calibration = {"dataset": CALIBRATION_NAME, "samples": len(CALIBRATION_TEXT), "modalities": ["text"]}
        command = f"mtq.quantize(model, {config_words}, forward_loop=<text-only calibration>); " \
                  "export_hf_checkpoint(model, export_dir=out)"
        recipe = {k: spec[k] for k in ("config", "kv_config") if k in spec}
        rec = record(out, name, "nvidia-modelopt", recipe, calibration, command)
        rec["about"] = spec["about"]
        if "base" in spec:
            rec["base"] = spec["base"]
        records.append(rec)
        print(f"built {name}: {rec['bytes']} bytes", flush=True)
    return records


# --- orchestration: runtime venv ---


def write_provenance(root: Path, records: list[dict]) -> None:
    (root / "provenance.json").write_text(json.dumps(records, indent=1) + "\n")
    lines = [
        "# Quantized test panel: provenance",
        "",
        "Built by `scripts/build_quant_panel.py all` (environments from `scripts/setup_quant_env.sh`). The base is the",
        "tiny random gemma4_unified model of `omnicheck.models.tiny` (seed 0) saved in bfloat16; every variant is a",
        "real output of the named tool, with the processor files of the base copied beside it. Calibration, where",
        "used, is text only (the sentences in the script), on purpose: the panel reproduces text-calibrated W4A4.",
        "Generated data, Apache-2.0 like the project. Machine-readable details: provenance.json.",
        "",
        "`scripts/build_quant_panel.py recipes` adds the recipes of the Gemma 4 write-ups (issue 14) the same way, on",
        "three bases: base-bf16, and tiny `gemma4` models of `omnicheck.models.tiny_gemma4` (seed 0, bfloat16):",
        "gemma4-e4b-bf16 (E4B layout: vision and audio towers, per-layer embeddings, MLP 4x wide so 128x128 FP8",
        "blocks tile it) and gemma4-moe-bf16 (26B-A4B layout: a router and 4 fused experts beside the dense MLP).",
        "Every recipe checkpoint here is the real tool's output on this CPU; none had to be written by hand.",
        "",
        "| variant | base | tool | versions | recipe | calibration | sha256 (model.safetensors) | bytes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rec in records:
        vers = ", ".join(f"{k}=={v}" for k, v in rec["versions"].items())
        recipe = json.dumps(rec["recipe"]).replace("|", "\\|")
        cal = rec["calibration"]["dataset"] if rec.get("calibration") else "none"
        base = rec.get("base") or ("-" if rec["tool"].startswith("omnicheck") else "base-bf16")
        lines.append(f"| {rec['name']} | {base} | {rec['tool']} | {vers} | `{recipe}` | {cal} | "
                     f"{rec['sha256']['model.safetensors'][:16]}... | {rec['bytes']} |")
    lines += ["", "## Commands", ""]
    for rec in records:
        lines.append(f"- **{rec['name']}**: {rec.get('about', '')}. `{rec['command']}`")
    lines += [
        "",
        "## Checked against ModelOpt's own CUDA fake quantization",
        "",
        "`modelopt_cuda_check.json` is the output of `scripts/check_modelopt_cuda.py NVFP4_DEFAULT_CFG` on one H100",
        "(ModelOpt fake-quantizes only on CUDA): the base quantized by ModelOpt, exported, and loaded by omnicheck's",
        "emulating loader. Weight-only logits agree (cosine 0.99992); every quantized layer's fake-quantized input",
        "agrees on >= 99.8% of elements; the mismatch examined was an exact e2m1 rounding tie (x / scale = 1.75 in",
        "exact arithmetic) that ModelOpt's triton kernel and omnicheck's IEEE fp32 division break differently. On",
        "this random tiny model those few flips grow to W4A4 logit cosine 0.973 between the two emulations.",
    ]
    (root / "PROVENANCE.md").write_text("\n".join(lines) + "\n")


def write_omni_provenance(root: Path, records: list[dict]) -> None:
    """provenance.json and PROVENANCE.md in each variant's own folder (the omni panel's variants live apart)."""
    for rec in records:
        out = root / rec["name"]
        (out / "provenance.json").write_text(json.dumps(rec, indent=1) + "\n")
        vers = ", ".join(f"{k}=={v}" for k, v in rec["versions"].items())
        cal = rec["calibration"]
        cal_words = f"{cal['dataset']} ({cal['samples']} samples)" if cal else "none"
        targets = rec["recipe"].get("targets")
        if targets and all("language_model" in t for t in targets):
            scope = ["Targets: the language model's linear layers only (`" + ", ".join(targets) + "`);",
                     "the vision and audio projections stay bf16. Apache-2.0 like the project."]
        else:
            scope = [f"Recipe as written: `{json.dumps(rec['recipe'])}` (what it quantizes: `omnicheck inspect`).",
                     "Apache-2.0 like the project."]
        lines = [
            f"# {rec['name']}: {rec['about']}",
            "",
            f"A real {rec['tool']} output of the trained omni-small (`{Path(rec['base']).name}`, fixtures/omni-small),",
            "made by `scripts/build_quant_panel.py omni`; its processor files are copied from the base.",
            *scope,
            "",
            f"- tool versions: {vers} (python {rec['python']})",
            f"- recipe: `{json.dumps(rec['recipe'])}`",
            f"- calibration: {cal_words}",
            f"- command: `{rec['command']}`",
            f"- sha256 (model.safetensors): {rec['sha256']['model.safetensors']}",
            f"- bytes: {rec['bytes']}",
        ]
        (out / "PROVENANCE.md").write_text("\n".join(lines) + "\n")


def run_in_venv(venv: str, tool: str, base: Path, root: Path, names: list[str], extra: list[str] = ()) -> list[dict]:
    python = VENVS / venv / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing -- fix: run scripts/setup_quant_env.sh {venv}")
    result_file = root / f".{tool}-records.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": ""}
    subprocess.run([str(python), __file__, tool, "--base", str(base), "--out", str(root), "--records", str(result_file),
                    *extra, "--only", *names], check=True, env=env)
    records = json.loads(result_file.read_text())
    result_file.unlink()
    return records


def build_recipes(root: Path, seed: int, only: list[str] | None) -> list[dict]:
    """The gemma4 bases and issue 14's recipe checkpoints; the records of everything else in provenance.json stay."""
    names = only or [*GEMMA4_BASES, *RECIPE_LLMC, *RECIPE_MODELOPT]
    new = [build_base(root / b, seed, GEMMA4_BASES[b]) for b in GEMMA4_BASES if b in names]
    llmc = [n for n in names if n in RECIPE_LLMC]
    modelopt = [n for n in names if n in RECIPE_MODELOPT]
    if llmc:
        new += run_in_venv("llmcompressor", "llmcompressor", root / "base-bf16", root, llmc)
    if modelopt:
        new += run_in_venv("modelopt", "modelopt", root / "base-bf16", root, modelopt)
    kept = json.loads((root / "provenance.json").read_text()) if (root / "provenance.json").exists() else []
    rebuilt = {r["name"] for r in new}
    return [r for r in kept if r["name"] not in rebuilt] + new


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["all", "base", "llmcompressor", "modelopt", "provenance", "omni", "recipes"])
    parser.add_argument("--out", type=Path, default=Path("fixtures/checkpoints"))
    parser.add_argument("--base", type=Path)
    parser.add_argument("--records", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--calibration", type=Path, help="processor-made calibration samples (written by `omni`)")
    args = parser.parse_args(argv)
    root = args.out.resolve()
    root.mkdir(parents=True, exist_ok=True)
    if args.step == "provenance":  # rewrite PROVENANCE.md from provenance.json
        write_provenance(root, json.loads((root / "provenance.json").read_text()))
        return 0
    if args.step == "base":
        print(json.dumps(build_base(root / "base-bf16", args.seed), indent=1))
        return 0
    if args.step in ("llmcompressor", "modelopt"):
        builder = build_llmcompressor if args.step == "llmcompressor" else build_modelopt
        table = ({**LLMC_VARIANTS, **RECIPE_LLMC} if args.step == "llmcompressor"
                 else {**MODELOPT_VARIANTS, **RECIPE_MODELOPT, **OMNI_MODELOPT})
        records = (build_llmcompressor(args.base, root, args.only or list(table), args.calibration)
                   if args.step == "llmcompressor" else builder(args.base, root, args.only or list(table)))
        if args.records:
            args.records.write_text(json.dumps(records))
        return 0
    if args.step == "omni":
        base = (args.base or Path("fixtures/omni-small")).resolve()
        records = build_omni(base, root, args.only or list(OMNI_VARIANTS))
        write_omni_provenance(root, records)
        print(f"omni panel: {len(records)} checkpoints, {sum(r['bytes'] for r in records) / 1e6:.1f} MB in {root}")
        return 0
    if args.step == "recipes":
        write_provenance(root, build_recipes(root, args.seed, args.only))
        return 0
    base = root / "base-bf16"
    records = [build_base(base, args.seed)]
    records += run_in_venv("llmcompressor", "llmcompressor", base, root, args.only or list(LLMC_VARIANTS))
    records += run_in_venv("modelopt", "modelopt", base, root, list(MODELOPT_VARIANTS))
    write_provenance(root, records)
    total = sum(r["bytes"] for r in records)
    print(f"panel: {len(records)} checkpoints, {total / 1e6:.1f} MB in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
