"""Why a modality broke: how much of each activation-quantized layer's input its stored scales cannot represent.

For every Linear whose input is quantized (compressed-tensors fake-quant modules, omnicheck's ModelOpt emulation),
a forward pre-hook sees the unquantized input and measures, per modality:
  clipped      values beyond the largest representable value under the stored global/input scale,
  saturated    NVFP4 blocks whose FP8 block scale would exceed 448 (the whole block is clipped),
  underflow    nonzero blocks (FP8: values) that the scale flushes to zero,
  rel_error    ||x - Q(x)|| / ||x||, the input's quantization error.
Rows of the language model are split by token: image/audio/video soft tokens count for their modality, the rest
for text; modules that see only media features (projectors, towers) count for the input's modality.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from omnicheck.formats import fp4

MEDIA = ("image", "audio", "video")
_TOKEN_KEYS = {"image": ("image_token_id", "image_token_index"), "audio": ("audio_token_id", "audio_token_index"),
               "video": ("video_token_id", "video_token_index")}


@dataclass
class _Tally:
    values: int = 0
    clipped: int = 0
    blocks: int = 0
    saturated: int = 0
    underflow: int = 0
    err_sq: float = 0.0
    ref_sq: float = 0.0


@dataclass(frozen=True)
class RangeRow:
    layer: str
    modality: str
    format: str
    values: int
    clipped_fraction: float
    saturated_block_fraction: float | None
    underflow_fraction: float
    relative_error: float

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class RangeDiagnosis:
    rows: list[RangeRow]
    flagged: dict[str, list[str]] = field(default_factory=dict)  # modality -> layers far worse than text
    summary: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"rows": [r.to_json() for r in self.rows], "flagged": self.flagged, "summary": self.summary}


@dataclass(frozen=True)
class _Spec:
    format: str  # nvfp4 | fp8_static | fp8_token
    scale: Any  # s2 (nvfp4) or the per-tensor scale (fp8_static); None for dynamic per-token


def quantized_inputs(model) -> dict[str, _Spec]:
    """Every Linear of the model whose input is quantized, with its stored scale."""
    specs = {}
    for name, module in model.named_modules():
        fmt = getattr(module, "activation_format", None)
        if fmt in ("nvfp4", "fp8") and getattr(module, "input_s2", None) is not None:
            specs[name] = _Spec("nvfp4" if fmt == "nvfp4" else "fp8_static", module.input_s2.detach().float())
            continue
        scheme = getattr(module, "quantization_scheme", None)
        args = getattr(scheme, "input_activations", None) if scheme is not None else None
        if args is None or getattr(module, "quantization_enabled", True) is False:
            continue
        spec = _ct_spec(module, args)
        if spec is not None:
            specs[name] = spec
    return specs


def _ct_spec(module, args) -> _Spec | None:
    kind = str(getattr(args.type, "value", args.type))
    strategy = str(getattr(args.strategy, "value", args.strategy))
    if kind == "float" and args.num_bits == 4 and getattr(module, "input_global_scale", None) is not None:
        return _Spec("nvfp4", 1.0 / module.input_global_scale.detach().float().reshape(()))
    if kind == "float" and args.num_bits == 8:
        if args.dynamic is True and strategy == "token":
            return _Spec("fp8_token", None)
        scale = getattr(module, "input_scale", None)
        if scale is not None:
            return _Spec("fp8_static", scale.detach().float().reshape(()))
    return None


def _measure(x, spec: _Spec, tally: _Tally) -> None:
    x = x.detach().float().reshape(-1, x.shape[-1])
    if x.numel() == 0:
        return
    tally.values += x.numel()
    tally.ref_sq += float((x * x).sum())
    if spec.format == "nvfp4":
        s2 = spec.scale.to(x.device)
        limit = fp4.E2M1_MAX * fp4.E4M3_MAX * s2
        tally.clipped += int((x.abs() > limit).sum())
        blocks = x.unflatten(-1, (-1, fp4.BLOCK))
        amax = blocks.abs().amax(-1)
        needed = amax / fp4.E2M1_MAX / s2
        tally.blocks += amax.numel()
        tally.saturated += int((needed > fp4.E4M3_MAX).sum())
        tally.underflow += int(((amax > 0) & (fp4.round_to_e4m3(needed) == 0)).sum())
        q = fp4.fake_quantize_nvfp4(x, s2)
    elif spec.format == "fp8_static":
        s = spec.scale.to(x.device)
        tally.clipped += int((x.abs() > fp4.E4M3_MAX * s).sum())
        q = fp4.fake_quantize_fp8_static(x, s)
        tally.underflow += int(((x != 0) & (q == 0)).sum())
    else:
        q = fp4.fake_quantize_fp8_per_token(x)
        tally.underflow += int(((x != 0) & (q == 0)).sum())
    tally.err_sq += float(((x - q) ** 2).sum())


def media_token_ids(config) -> dict[int, str]:
    """token id -> modality, from a multimodal config (image/audio/video soft-token ids)."""
    ids = {}
    for modality, keys in _TOKEN_KEYS.items():
        for key in keys:
            value = getattr(config, key, None)
            if isinstance(value, int):
                ids[value] = modality
                break
    return ids


def diagnose_activation_ranges(
    model,
    inputs_by_modality: Mapping[str, Sequence[Mapping[str, Any]]],
    worse_ratio: float = 2.0,
    worse_margin: float = 0.05,
    clip_margin: float = 0.01,
) -> RangeDiagnosis:
    """Run each modality's processor inputs through the model and measure every activation-quantized input.

    inputs_by_modality: {"text": [batch, ...], "image": [batch, ...], ...}, each batch a processor output (a
    mapping of tensors, already on the model's device). A layer is flagged for a media modality when its relative
    error exceeds worse_ratio x text's and text's + worse_margin, or it clips clip_margin more of its values.
    """
    import torch

    specs = quantized_inputs(model)
    if not specs:
        return RangeDiagnosis(rows=[], summary=["no activation-quantized layers: nothing to diagnose"])
    token_modality = media_token_ids(model.config)
    tallies: dict[tuple[str, str], _Tally] = {}
    state: dict[str, Any] = {}
    modules = dict(model.named_modules())

    def hook_for(name: str, spec: _Spec):
        def hook(_module, args):
            x = args[0]
            ids = state["input_ids"]
            if ids is not None and tuple(x.shape[:-1]) == tuple(ids.shape):
                for modality, mask in state["masks"].items():
                    if bool(mask.any()):
                        _measure(x[mask], spec, tallies.setdefault((name, modality), _Tally()))
            else:
                _measure(x, spec, tallies.setdefault((name, state["modality"]), _Tally()))

        return hook

    handles = [modules[name].register_forward_pre_hook(hook_for(name, spec)) for name, spec in specs.items()]
    try:
        with torch.no_grad():
            for modality, batches in inputs_by_modality.items():
                for batch in batches:
                    ids = batch.get("input_ids")
                    masks = {}
                    if ids is not None:
                        media_masks = {m: torch.zeros_like(ids, dtype=torch.bool) for m in MEDIA}
                        for token, m in token_modality.items():
                            media_masks[m] |= ids == token
                        attention = batch.get("attention_mask")
                        text = ~torch.stack(list(media_masks.values())).any(0)
                        if attention is not None:
                            text &= attention.bool()
                        masks = {"text": text, **media_masks}
                    state.update(input_ids=ids, masks=masks, modality=modality)
                    model(**batch)
    finally:
        for handle in handles:
            handle.remove()

    rows = []
    for (layer, modality), t in sorted(tallies.items(), key=lambda kv: (_layer_order(kv[0][0]), kv[0][1])):
        if not t.values:
            continue
        rows.append(RangeRow(
            layer=layer,
            modality=modality,
            format=specs[layer].format,
            values=t.values,
            clipped_fraction=t.clipped / t.values,
            saturated_block_fraction=(t.saturated / t.blocks) if t.blocks else None,
            underflow_fraction=(t.underflow / t.blocks) if t.blocks else t.underflow / t.values,
            relative_error=(t.err_sq / t.ref_sq) ** 0.5 if t.ref_sq > 0 else 0.0,
        ))
    flagged, summary = summarize(rows, worse_ratio, worse_margin, clip_margin)
    return RangeDiagnosis(rows=rows, flagged=flagged, summary=summary)


def summarize(rows: list[RangeRow], worse_ratio: float = 2.0, worse_margin: float = 0.05,
              clip_margin: float = 0.01) -> tuple[dict[str, list[str]], list[str]]:
    """Layers where a media modality fares far worse than text, and one sentence per modality."""
    text = {r.layer: r for r in rows if r.modality == "text"}
    flagged: dict[str, list[str]] = {}
    worst: dict[str, list[RangeRow]] = {}
    for row in rows:
        if row.modality == "text" or row.layer not in text:
            continue
        base = text[row.layer]
        worse_error = row.relative_error > max(worse_ratio * base.relative_error, base.relative_error + worse_margin)
        worse_clip = row.clipped_fraction > base.clipped_fraction + clip_margin
        if worse_error or worse_clip:
            flagged.setdefault(row.modality, []).append(row.layer)
            worst.setdefault(row.modality, []).append(row)
    summary = []
    for modality, bad in worst.items():
        base_rows = [text[r.layer] for r in bad]
        clip = sum(r.clipped_fraction for r in bad) / len(bad)
        clip_text = sum(r.clipped_fraction for r in base_rows) / len(bad)
        err = sum(r.relative_error for r in bad) / len(bad)
        err_text = sum(r.relative_error for r in base_rows) / len(bad)
        summary.append(
            f"{modality}: {len(bad)} layer(s) ({layer_span([r.layer for r in bad])}) clip {clip:.1%} of {modality} "
            f"activations vs {clip_text:.1%} of text under the stored scales; input quantization error "
            f"{err:.3f} vs {err_text:.3f} for text"
        )
    if not summary and rows:
        summary.append("no layer treats image/audio/video inputs far worse than text")
    return flagged, summary


_LAYER_INDEX = re.compile(r"layers\.(\d+)\.")


def _layer_order(name: str) -> tuple[int, str]:
    match = _LAYER_INDEX.search(name)
    return (int(match.group(1)) if match else -1, name)


def layer_span(names: list[str]) -> str:
    """'layers 0-5' for decoder layers (plus other module names), compact enough for one sentence."""
    indices = sorted({int(m.group(1)) for n in names if (m := _LAYER_INDEX.search(n))})
    others = sorted({n for n in names if not _LAYER_INDEX.search(n)})
    parts = []
    if indices:
        runs, start, prev = [], indices[0], indices[0]
        for i in indices[1:]:
            if i != prev + 1:
                runs.append((start, prev))
                start = i
            prev = i
        runs.append((start, prev))
        parts.append("layers " + ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in runs))
    parts += others[:3]
    if len(others) > 3:
        parts.append(f"{len(others) - 3} more")
    return "; ".join(parts)
