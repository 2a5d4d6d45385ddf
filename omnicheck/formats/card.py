"""The quant card: what a checkpoint's quantization is, read from config files and safetensors headers only.

Sources, in order of trust: the tensors actually stored (dtype and shape per module), then the quantization
config that tells how they will be used (config.json `quantization_config`, ModelOpt's hf_quant_config.json),
then the recipe (calibration facts). No tensor data is read, so a 12B checkpoint takes milliseconds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from omnicheck.errors import ModelLoadError
from omnicheck.formats.groups import GROUPS, classify, is_media_group, tower_part
from omnicheck.formats.headers import TensorInfo, read_metadata, read_tensor_table, weight_files
from omnicheck.formats.stored_layout import (
    FUSED_EXPERTS,
    fp8_group,
    fp8_scale_words,
    kv_scale_facts,
    logical_numel,
)

Severity = Literal["error", "warning", "info"]
_UNQUANTIZED_BITS = {"F32": 32, "BF16": 16, "F16": 16, "F64": 64}
_TEXT_LINEAR_GROUPS = ("attention_q", "attention_k", "attention_v", "attention_o", "mlp", "moe_experts")


@dataclass(frozen=True)
class Lint:
    severity: Severity
    code: str
    message: str
    modules: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"severity": self.severity, "code": self.code, "message": self.message, "modules": list(self.modules)}


@dataclass(frozen=True)
class WeightQuant:
    format: str  # nvfp4, fp8, int4, int8, or the stored dtype (bf16, f16, f32) when unquantized
    bits: int
    quantized: bool
    group_size: int | None = None
    scales: str = ""  # in words: how the scales are stored
    block: tuple[int, int] | None = None  # 2-D weight blocks (rows x columns) sharing one scale

    def label(self) -> str:
        if not self.quantized:
            return f"{self.format} (unquantized)"
        group = f", group {self.group_size}" if self.group_size else ""
        if self.block:
            group = f", block {self.block[0]}x{self.block[1]}"
        return f"{self.format}{group}: {self.scales}" if self.scales else f"{self.format}{group}"


@dataclass(frozen=True)
class ActQuant:
    format: str  # nvfp4, fp8, int8, ...
    bits: int
    strategy: str  # tensor_group, token, tensor, group, channel
    group_size: int | None
    dynamic: bool | str  # True: scale per call; False: stored static scale; "local": static global, dynamic blocks
    stored_scale: str | None  # the tensor that holds the calibrated scale, when there is one

    def label(self) -> str:
        how = {True: "dynamic", False: "static", "local": "dynamic per-block scales under a static global scale"}
        text = f"{self.format} {self.strategy}"
        if self.group_size:
            text += f" {self.group_size}"
        text += f", {how.get(self.dynamic, str(self.dynamic))}"
        if self.stored_scale:
            text += f" (stored {self.stored_scale})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "bits": self.bits,
            "strategy": self.strategy,
            "group_size": self.group_size,
            "dynamic": self.dynamic,
            "stored_scale": self.stored_scale,
        }


@dataclass
class ModuleFacts:
    name: str  # as stored on disk
    group: str
    modality: str
    weight: WeightQuant
    activation: ActQuant | None = None
    runtime_name: str | None = None  # filled in when run-time names are known
    parameters: int = 0  # weight elements as the model uses them (unpacked)
    experts: int | None = None  # a fused 3-D expert tensor: how many experts it holds


@dataclass
class QuantCard:
    path: Path
    format: str  # compressed-tensors, modelopt, unquantized, or another quant_method
    scheme: str  # NVFP4, NVFP4A16, FP8_DYNAMIC, FP8_BLOCK, W4A16, W8A8, W4A16_NVFP4, FP8, BF16, ...
    model_type: str
    modules: list[ModuleFacts]
    producer: dict[str, Any] = field(default_factory=dict)
    kv_cache: dict[str, Any] | None = None
    kv_scale_tensors: list[str] = field(default_factory=list)  # stored k_scale / v_scale tensors, by name
    calibration: dict[str, Any] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # the quantization config as stored
    sources: list[str] = field(default_factory=list)
    lm_head_tied: bool = False
    lints: list[Lint] = field(default_factory=list)
    runtime_names: dict[str, str] | None = None  # run-time module name -> class name, from a meta-device build
    notes: list[str] = field(default_factory=list)
    config_json: dict[str, Any] = field(default_factory=dict, repr=False)  # config.json itself, not reported
    tensors: dict[str, TensorInfo] = field(default_factory=dict, repr=False)  # the stored tensors, by name

    # --- derived facts ---

    @property
    def quantized_modules(self) -> list[ModuleFacts]:
        return [m for m in self.modules if m.weight.quantized]

    @property
    def activation_quantized(self) -> bool:
        return any(m.activation is not None for m in self.modules)

    @property
    def weight_bits(self) -> int | None:
        quantized = self.quantized_modules
        if quantized:
            return min(m.weight.bits for m in quantized)
        bits = [m.weight.bits for m in self.modules]
        return max(set(bits), key=bits.count) if bits else None

    @property
    def scope(self) -> str:
        quantized = {m.group for m in self.quantized_modules}
        if not quantized:
            return "nothing quantized"
        present = {m.group for m in self.modules}
        text_linear = [g for g in _TEXT_LINEAR_GROUPS if g in present]
        if quantized & set(text_linear) and quantized & set(text_linear) <= {"mlp", "moe_experts"}:
            parts = ["MLP only"]
        elif set(text_linear) <= quantized:
            parts = ["all language-model linear layers"]
        else:
            parts = ["language model: " + ", ".join(g for g in text_linear if g in quantized)]
        media = sorted(g for g in quantized if is_media_group(g))
        parts.append(f"media modules quantized: {', '.join(media)}" if media else "media modules unquantized")
        if "lm_head" in quantized:
            parts.append("lm_head quantized")
        return "; ".join(parts)

    def groups(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for group in GROUPS:
            members = [m for m in self.modules if m.group == group]
            if group == "lm_head" and not members and self.lm_head_tied:
                out[group] = {"modules": 1, "quantized_modules": 0, "weight": "tied to the token embeddings",
                              "weight_bits": None, "activation": None, "activation_quantized_modules": 0,
                              "names": ["lm_head"]}
                continue
            if not members:
                continue
            weights = _count_labels(m.weight.label() for m in members)
            acts = [m.activation for m in members if m.activation is not None]
            quantized = [m for m in members if m.weight.quantized]
            out[group] = {
                "modules": len(members),
                "quantized_modules": len(quantized),
                "parameters": sum(m.parameters for m in members),
                "quantized_parameters": sum(m.parameters for m in quantized),
                "weight": weights,
                "weight_bits": min((m.weight.bits for m in quantized), default=None),
                "activation": _count_labels(a.label() for a in acts) if acts else None,
                "activation_quantized_modules": len(acts),
                "names": [m.runtime_name or m.name for m in members[:4]],
            }
            fused = [m for m in members if m.experts]
            if fused:  # 3-D tensors holding every expert of a layer: count experts, not tensors
                out[group]["fused_expert_tensors"] = len(fused)
                out[group]["experts_per_layer"] = max(m.experts or 0 for m in fused)
            if group.endswith("_tower"):
                parts: dict[str, list[int]] = {}
                for m in members:
                    counts = parts.setdefault(tower_part(m.name), [0, 0])
                    counts[0] += 1
                    counts[1] += m.weight.quantized
                out[group]["parts"] = {p: {"modules": n, "quantized_modules": q} for p, (n, q) in parts.items()}
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "scheme": self.scheme,
            "scope": self.scope,
            "activation_quantized": self.activation_quantized,
            "weight_bits": self.weight_bits,
            "model_type": self.model_type,
            "producer": self.producer,
            "groups": self.groups(),
            "kv_cache": self.kv_cache,
            "calibration": self.calibration,
            "calibration_datasets": list(self.calibration.get("datasets") or []) or None,
            "activations_ran_quantized": self.activations_ran_quantized,
            "ignore": self.ignore,
            "quantization_config": self.config,
            "sources": self.sources,
            "execution_path": self.execution_path(),
            "lints": [lint.to_json() for lint in self.lints],
            "runtime_names_checked": self.runtime_names is not None,
            "notes": self.notes,
        }

    def execution_path(self) -> dict[str, str]:
        """What runs in-process (transformers / omnicheck) for this checkpoint, in words."""
        from omnicheck.formats.execution import execution_path

        return execution_path(self)

    @property
    def activations_ran_quantized(self) -> bool | None:
        """In-process (transformers / omnicheck's loader) activation quantization runs whenever the checkpoint asks
        for it; None where omnicheck does not know the integration. A server run sets its own record."""
        if self.format in ("compressed-tensors", "modelopt", "unquantized"):
            return self.activation_quantized
        return None

    def errors(self) -> list[Lint]:
        return [lint for lint in self.lints if lint.severity == "error"]


def _count_labels(labels) -> str:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    if len(counts) == 1:
        return next(iter(counts))
    return "; ".join(f"{label} x{n}" for label, n in counts.items())


# --- reading ---


def read_card(path: Path) -> QuantCard:
    """The card from static files only: config.json, hf_quant_config.json, recipe.yaml, safetensors headers."""
    path = Path(path)
    config = _read_json(path / "config.json", required=True)
    sources = ["config.json"]
    table = read_tensor_table(path)
    sources += sorted({t.file for t in table.values()})
    qcfg = config.get("quantization_config") or {}
    hf_quant = _read_json(path / "hf_quant_config.json", required=False)
    if hf_quant is not None:
        sources.append("hf_quant_config.json")
    recipe_file = next((path / n for n in ("recipe.yaml", "recipe.yml") if (path / n).exists()), None)
    if recipe_file is not None:
        sources.append(recipe_file.name)

    method = str(qcfg.get("quant_method", "")).lower()
    modules_by_name = _modules_from_table(table)
    if method == "compressed-tensors":
        from omnicheck.formats.compressed_tensors import describe

        card = describe(path, config, qcfg, modules_by_name, table)
    elif hf_quant is not None or method == "modelopt":
        from omnicheck.formats.modelopt import describe

        card = describe(path, config, hf_quant or {}, qcfg, modules_by_name, table)
    else:
        card = _describe_other(path, config, qcfg, modules_by_name, table)
    card.sources = sources
    card.config_json = config
    card.tensors = table
    for fact in card.modules:
        params = modules_by_name.get(fact.name) or {}
        fact.parameters = logical_numel(params, fact.weight.bits)
        main = params.get("weight_packed") or params.get("weight")
        if main is not None and len(main.shape) == 3:
            fact.experts = main.shape[0]
    if card.kv_cache is not None:
        card.kv_scale_tensors = sorted(n for n in table if n.endswith((".k_scale", ".v_scale")))
        card.kv_cache = {**card.kv_cache, **kv_scale_facts(card.kv_scale_tensors)}
    card.lm_head_tied = _tied(config) and not any(m.group == "lm_head" for m in card.modules)
    card.calibration = read_calibration(recipe_file)
    if not card.producer.get("version"):
        card.producer = {**card.producer, **_producer_from_metadata(path)}
    return card


def _read_json(file: Path, required: bool) -> dict[str, Any] | None:
    if not file.exists():
        if required:
            raise ModelLoadError(f"{file.parent} has no config.json", "pass a checkpoint folder (config.json + weights)")
        return None
    try:
        return json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{file} is not valid JSON ({err})", f"restore {file.name} from the original checkpoint") from err


def _tied(config: dict[str, Any]) -> bool:
    text = config.get("text_config") or {}
    return bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False)))


def _modules_from_table(table: dict[str, TensorInfo]) -> dict[str, dict[str, TensorInfo]]:
    """module name -> {parameter name: tensor}, for modules that hold a 2-D weight (linear or embedding), plus one
    entry per fused 3-D expert tensor (`...experts.gate_up_proj` [experts, out, in]) with that tensor as its weight."""
    params: dict[str, dict[str, TensorInfo]] = {}
    out = {}
    for name, info in table.items():
        module, _, param = name.rpartition(".")
        params.setdefault(module, {})[param] = info
        if len(info.shape) == 3 and FUSED_EXPERTS.search(name):
            out[name] = {"weight": info}
    for module, members in params.items():
        weight = members.get("weight_packed") or members.get("weight")
        if weight is not None and len(weight.shape) == 2:
            out[module] = members
    return out


def stored_weight(params: dict[str, TensorInfo], int_bits: int | None = None) -> WeightQuant:
    """What the stored tensors of one module say about its weight format."""
    packed = params.get("weight_packed")
    weight = params.get("weight")
    scale = params.get("weight_scale")
    main = packed or weight
    assert main is not None
    if main.dtype == "U8" and scale is not None and scale.dtype == "F8_E4M3":
        in_features = main.shape[1] * 2
        group = in_features // scale.shape[-1] if scale.shape and scale.shape[-1] else None
        second = "weight_global_scale" if "weight_global_scale" in params else "weight_scale_2"
        return WeightQuant("nvfp4", 4, True, group, f"e2m1 packed, fp8 e4m3 scale per {group}, fp32 {second}")
    if main.dtype == "F8_E4M3":
        return WeightQuant("fp8", 8, True, fp8_group(main, scale), fp8_scale_words(main, scale))
    if packed is not None and packed.dtype == "I32":
        bits = int_bits or 4
        group = None
        if scale is not None and len(scale.shape) == 2 and scale.shape[1] > 1:
            group = (packed.shape[1] * 32 // bits) // scale.shape[1]
        return WeightQuant(f"int{bits}", bits, True, group, "packed in int32, per-group scales")
    if main.dtype == "I8":
        return WeightQuant("int8", 8, True, None, "per-channel scales" if scale is not None else "")
    bits = _UNQUANTIZED_BITS.get(main.dtype, 16)
    return WeightQuant(main.dtype.lower(), bits, False)


def module_facts(name: str, weight: WeightQuant, activation: ActQuant | None) -> ModuleFacts:
    group, modality = classify(name)
    return ModuleFacts(name=name, group=group, modality=modality, weight=weight, activation=activation)


def _describe_other(path, config, qcfg, modules_by_name, table) -> QuantCard:
    modules = [module_facts(n, stored_weight(p), None) for n, p in modules_by_name.items()]
    method = str(qcfg.get("quant_method", "")).lower()
    if method:
        fmt, scheme = method, method.upper()
    else:
        fmt = "unquantized"
        bits = [m.weight.format for m in modules]
        scheme = max(set(bits), key=bits.count).upper() if bits else "UNKNOWN"
    return QuantCard(path=path, format=fmt, scheme=scheme, model_type=str(config.get("model_type", "unknown")),
                     modules=modules, config=dict(qcfg), ignore=list(qcfg.get("modules_to_not_convert") or []))


# --- calibration facts ---

_DATASET_KEYS = re.compile(r"^(dataset|datasets|dataset_name|calibration_dataset|calib_dataset|dataset_path)$", re.I)
_SAMPLE_KEYS = re.compile(r"^(num_calibration_samples|calib_size|num_samples|n_samples)$", re.I)


def read_calibration(recipe_file: Path | None) -> dict[str, Any]:
    """Dataset names and sample counts where the recipe records them; modifiers otherwise."""
    if recipe_file is None:
        return {"recorded": False, "datasets": [], "source": None}
    import yaml

    try:
        recipe = yaml.safe_load(recipe_file.read_text())
    except (OSError, yaml.YAMLError) as err:
        return {"recorded": False, "datasets": [], "source": recipe_file.name, "error": str(err)}
    datasets: list[str] = []
    samples: list[int] = []
    modifiers: list[str] = []
    observers: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                k = str(k)
                if _DATASET_KEYS.match(k):
                    datasets.extend([str(x) for x in v] if isinstance(v, list) else [str(v)])
                elif _SAMPLE_KEYS.match(k) and isinstance(v, int):
                    samples.append(v)
                elif k.endswith("Modifier"):
                    modifiers.append(k)
                elif k == "observer" and isinstance(v, str):
                    observers.add(v)
                walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)

    walk(recipe)
    return {
        "recorded": bool(datasets),
        "datasets": datasets,
        "samples": samples[0] if samples else None,
        "modifiers": modifiers,
        "observers": sorted(observers),
        "source": recipe_file.name,
    }


def _producer_from_metadata(path: Path) -> dict[str, Any]:
    files = weight_files(path)
    if not files:
        return {}
    try:
        meta = read_metadata(files[0])
    except (OSError, ValueError):
        return {}
    meta.pop("format", None)  # "pt" in every torch-written file: says nothing about the producer
    return {"safetensors_metadata": meta} if meta else {}
