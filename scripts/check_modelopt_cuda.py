"""On a CUDA machine: omnicheck's ModelOpt emulation against ModelOpt's own fake-quantized model.

ModelOpt's fake quantization runs only on CUDA, so this cannot be a CI test. It quantizes the panel's base model
with a ModelOpt config and the panel's text calibration, records ModelOpt's own logits (its CUDA/triton NVFP4
kernels), exports the checkpoint, loads the export with omnicheck.formats.modelopt, and compares:
  - every quantized layer's fake-quantized input, ModelOpt's input_quantizer vs omnicheck's fp4 functions;
  - the logits, with activations quantized and with input quantizers off (weight-only).
Writes $OUT/modelopt_cuda_check.json. Needs nvidia-modelopt (wheels carried to the device).

    python3 scripts/check_modelopt_cuda.py [NVFP4_DEFAULT_CFG FP8_DEFAULT_CFG ...]
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(os.environ.get("OMNICHECK_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))


def _calibration_text() -> list[str]:
    spec = importlib.util.spec_from_file_location("panel", ROOT / "scripts" / "build_quant_panel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CALIBRATION_TEXT


def check(config_name: str, device: str = "cuda") -> dict:
    import modelopt.torch.quantization as mtq
    import torch
    from modelopt.torch.export import export_hf_checkpoint
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    from omnicheck.formats import fp4
    from omnicheck.formats.modelopt import emulated_linear_class, load_modelopt_model

    base = ROOT / "fixtures" / "checkpoints" / "base-bf16"
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.bfloat16).to(device).eval()
    texts = _calibration_text()

    def forward_loop(m):
        with torch.no_grad():
            for text in texts:
                m(**tokenizer(text, return_tensors="pt").to(device))

    model = mtq.quantize(model, getattr(mtq, config_name), forward_loop)
    # The export unifies the global scales of layers that share an input (q/k/v, gate/up), as fused deployment
    # kernels need; apply ModelOpt's own step to the fake-quant model too, then export a copy (export packs weights).
    import copy

    from modelopt.torch.export.quant_utils import preprocess_linear_fusion

    for layer in model.model.language_model.layers:
        for group in ([layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj],
                      [layer.mlp.gate_proj, layer.mlp.up_proj]):
            if all(m.weight_quantizer.is_enabled for m in group):
                preprocess_linear_fusion(group)
    export_dir = tempfile.TemporaryDirectory()
    tmp = export_dir.name
    export_hf_checkpoint(copy.deepcopy(model), export_dir=tmp)
    for name in ("tokenizer.json", "tokenizer_config.json", "processor_config.json", "chat_template.jinja"):
        if (base / name).exists():
            (Path(tmp) / name).write_bytes((base / name).read_bytes())
    ids = tokenizer(["A photo of a cat sitting on a wooden table next to a cup of coffee.",
                     "How many clips did Natalia sell altogether in April and May?"],
                    return_tensors="pt", padding=True).to(device)

    layer_inputs: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in model.named_modules():
        quantizer = getattr(module, "input_quantizer", None)
        if quantizer is not None and getattr(quantizer, "is_enabled", False) and isinstance(module, torch.nn.Linear):
            def capture(mod, args, name=name):
                layer_inputs[name] = args[0].detach()
            hooks.append(module.register_forward_pre_hook(capture))
    with torch.no_grad():
        theirs = model(**ids).logits.float()
    for hook in hooks:
        hook.remove()

    layers = {}
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, x in layer_inputs.items():
            quantizer = modules[name].input_quantizer
            theirs_x = quantizer(x.clone()).float()
            amax = quantizer.amax.float()
            if config_name.startswith("NVFP4"):
                ours_x = fp4.fake_quantize_nvfp4(x, amax / (6 * 448)).float()
            else:
                ours_x = fp4.fake_quantize_fp8_static(x, amax / 448).float()
            differ = (ours_x != theirs_x).reshape(-1, x.shape[-1])
            if differ.any() and "mismatch_example" not in layers:
                row = int(differ.any(-1).nonzero()[0])
                torch.save({"x": x.reshape(-1, x.shape[-1])[row].cpu(), "ours": ours_x.reshape(-1, x.shape[-1])[row].cpu(),
                            "theirs": theirs_x.reshape(-1, x.shape[-1])[row].cpu(), "amax": amax.cpu(), "layer": name},
                           Path(os.environ.get("OUT", ".")) / f"mismatch_{config_name}.pt")
            layers[name] = {
                "max_abs_diff": float((ours_x - theirs_x).abs().max()),
                "equal_fraction": float((ours_x == theirs_x).float().mean()),
                "relative_quant_error": float((theirs_x - x.float()).norm() / x.float().norm()),
            }
        mtq.disable_quantizer(model, "*input_quantizer*")
        theirs_weight_only = model(**ids).logits.float()
        mtq.enable_quantizer(model, "*input_quantizer*")

    ours_model, info = load_modelopt_model(tmp, device=device)
    with torch.no_grad():
        ours = ours_model(**ids).logits.float()
        for module in ours_model.modules():
            if isinstance(module, emulated_linear_class()):
                module.activation_format = None
        ours_weight_only = ours_model(**ids).logits.float()
    export_dir.cleanup()

    def compare(a, b):
        return {"max_abs_diff": float((a - b).abs().max()),
                "cosine": float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)),
                "argmax_agreement": float((a.argmax(-1) == b.argmax(-1)).float().mean())}

    return {
        "config": config_name,
        "emulated_modules": len(info["emulated_modules"]),
        "layers": layers,
        "logits_w4a4": compare(ours, theirs),
        "logits_weight_only": compare(ours_weight_only, theirs_weight_only),
        "activation_effect_theirs": float((theirs - theirs_weight_only).abs().max()),
        "activation_effect_ours": float((ours - ours_weight_only).abs().max()),
    }


def main() -> int:
    import modelopt
    import torch
    import transformers

    configs = sys.argv[1:] or ["NVFP4_DEFAULT_CFG", "FP8_DEFAULT_CFG"]
    results = {
        "device": torch.cuda.get_device_name(0),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "modelopt": modelopt.__version__},
        "checks": [check(name) for name in configs],
    }
    out = Path(os.environ.get("OUT", ".")) / "modelopt_cuda_check.json"
    out.write_text(json.dumps(results, indent=1))
    for c in results["checks"]:
        worst = max(v["max_abs_diff"] for v in c["layers"].values()) if c["layers"] else None
        print(c["config"], "layers", len(c["layers"]), "worst input diff", worst, "logits", c["logits_w4a4"],
              "weight-only", c["logits_weight_only"], "act effect", c["activation_effect_theirs"],
              c["activation_effect_ours"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
