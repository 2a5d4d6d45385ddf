"""Findings about a quant card, each with a severity, shown before any probe runs.

error: the variant will not run as intended (random weights, a load that fails); warning: a known cause of
dead or degraded modalities; info: facts about what omnicheck can and cannot reproduce in-process.
"""

from __future__ import annotations

import fnmatch
from typing import Callable

from omnicheck.formats.card import Lint, ModuleFacts, QuantCard
from omnicheck.formats.compressed_tensors import group_for, target_matches
from omnicheck.formats.experts import UNFUSED_EXPERT
from omnicheck.formats.groups import is_media_group

RuntimeInfo = tuple[dict[str, str], Callable[[str], str]]


def _names(modules: list[ModuleFacts], limit: int = 4) -> str:
    shown = [m.runtime_name or m.name for m in modules[:limit]]
    return ", ".join(shown) + (f" and {len(modules) - limit} more" if len(modules) > limit else "")


def _has_media(card: QuantCard) -> bool:
    cfg_media = any(k in (card.config_json or {}) for k in ("vision_config", "audio_config", "thinker_config"))
    return cfg_media or any(is_media_group(m.group) for m in card.modules)


def activation_lints(card: QuantCard) -> list[Lint]:
    acts = [m for m in card.modules if m.activation is not None]
    if not acts or not _has_media(card):
        return []
    calibration = card.calibration or {}
    data = ", ".join(calibration.get("datasets") or []) or "data the checkpoint does not record"
    static = any(m.activation.dynamic in (False, "local") for m in acts)
    scale_words = "static scales calibrated on " + data if static else "dynamic scales"
    lints = []
    media = [m for m in acts if is_media_group(m.group)]
    if media:
        lints.append(Lint(
            "warning", "act-quant-media-module",
            f"activations of {len(media)} vision/audio module(s) are quantized ({media[0].activation.label()}): "
            f"{_names(media)}; these see only image/audio features, which {scale_words} rarely cover",
            tuple(m.runtime_name or m.name for m in media),
        ))
    text = [m for m in acts if not is_media_group(m.group)]
    if text and static:
        lints.append(Lint(
            "warning", "act-quant-media-tokens",
            f"activations of {len(text)} language-model layer(s) are quantized ({text[0].activation.label()}) and "
            f"image/audio tokens pass through them under {scale_words}; a text-only calibration can clip media "
            "activations and kill a modality (run the activation range diagnosis on a failing variant)",
            tuple(m.runtime_name or m.name for m in text[:8]),
        ))
    elif text:
        lints.append(Lint(
            "info", "act-quant-media-tokens",
            f"activations of {len(text)} language-model layer(s) are quantized ({text[0].activation.label()}); the "
            "scales are computed per call, so image/audio tokens are not clipped by a calibration range",
            tuple(m.runtime_name or m.name for m in text[:8]),
        ))
    return lints


def uncalibrated_lints(card: QuantCard) -> list[Lint]:
    """A W4A4/W8A8 export where some quantized modules carry no input scale: calibration never reached them."""
    if card.format != "modelopt" or not card.activation_quantized:
        return []
    missing = [m for m in card.quantized_modules if m.activation is None]
    if not missing:
        return []
    return [Lint(
        "warning", "uncalibrated-input-scale",
        f"{len(missing)} quantized module(s) have no input_scale while the others do: {_names(missing)}; the "
        "calibration data never reached them (a text-only calibration does not exercise image/audio paths), so "
        "omnicheck runs them weight-only and a deployment runtime has no calibrated range for their inputs",
        tuple(m.runtime_name or m.name for m in missing),
    )]


def uncalibrated_scale_lints(card: QuantCard) -> list[Lint]:
    """Stored activation and KV-cache scales that calibration never set (zero, NaN): those modules cannot work."""
    from omnicheck.formats.stored_scales import median, read_scalars, unusable

    wanted = {f"{m.name}.{m.activation.stored_scale}": m for m in card.modules
              if m.activation is not None and m.activation.stored_scale}
    kv = list(card.kv_scale_tensors) if card.kv_cache else []
    if not wanted and not kv:
        return []
    values = read_scalars(card.path, [card.tensors[n] for n in [*wanted, *kv] if n in card.tensors])
    lints = []
    peers = median([v for n in wanted for v in values.get(n, [])])
    bad = [(wanted[n], why) for n in wanted if (why := unusable(values.get(n, [1.0]), peers))]
    if bad:
        media = any(is_media_group(m.group) for m, _ in bad)
        scale = bad[0][0].activation.stored_scale
        lints.append(Lint(
            "error", "activation-scale-uncalibrated",
            f"{len(bad)} activation-quantized module(s) store {scale} = {bad[0][1]}: {_names([m for m, _ in bad])}; "
            "calibration never reached them"
            + (" (a text-only calibration never passes image/audio through media modules)" if media else "")
            + ", so their inputs quantize to nothing or NaN -- fix: calibrate with samples that reach these modules "
            "(images/audio for media modules), or add them to the ignore list",
            tuple(m.runtime_name or m.name for m, _ in bad),
        ))
    kv_peers = median([v for n in kv for v in values.get(n, [])])
    bad_kv = [n for n in kv if unusable(values.get(n, [1.0]), kv_peers)]
    if bad_kv:
        lints.append(Lint(
            "error", "kv-scale-uncalibrated",
            f"{len(bad_kv)} KV-cache scale(s) cannot come from calibration ({unusable(values[bad_kv[0]], kv_peers)}): "
            f"{', '.join(bad_kv[:4])}; calibration never reached "
            "those attention layers -- fix: recalibrate the KV cache (or drop kv_cache_scheme)",
            tuple(bad_kv),
        ))
    return lints


def ignore_gap_lints(card: QuantCard) -> list[Lint]:
    """The ignore list protects some modules of a modality and leaves another quantized: the author meant to keep
    that modality unquantized (the 12B write-up's ['lm_head', 're:.*embedding_projection.*'] leaves the vision
    patch_dense, the first layer every image passes through, quantized)."""
    lints = []
    ignored = [m for m in card.modules if not m.weight.quantized and is_media_group(m.group)
               and any(_ignores(entry, m) for entry in card.ignore)]
    for modality in sorted({m.modality for m in ignored}):
        missed = [m for m in card.quantized_modules if is_media_group(m.group) and m.modality == modality]
        if not missed:
            continue
        kept = [m for m in ignored if m.modality == modality]
        last = (missed[0].runtime_name or missed[0].name).rsplit(".", 1)[-1]
        lints.append(Lint(
            "warning", "ignore-misses-media-module",
            f"the ignore list keeps {modality} modules unquantized ({_names(kept)}) but not {_names(missed)}, which "
            f"{'is' if len(missed) == 1 else 'are'} quantized ({missed[0].weight.format}); every {modality} input "
            f"passes through {'it' if len(missed) == 1 else 'them'} -- fix: add 're:.*{last}.*' (or the whole "
            f"{modality} branch) to the ignore list",
            tuple(m.runtime_name or m.name for m in missed),
        ))
    return lints


def _ignores(entry: str, module: ModuleFacts) -> bool:
    names = {module.name, module.runtime_name or module.name}
    if entry.startswith("re:") or "*" not in entry:
        return any(target_matches(entry, n, None) for n in names)
    return any(fnmatch.fnmatch(n, entry) for n in names)


def unplaced_lints(card: QuantCard, runtime: RuntimeInfo | None) -> list[Lint]:
    """Quantized tensors whose module does not exist at run time, with the cause where it can be told."""
    if runtime is None:
        return []
    names, _ = runtime
    unplaced = [m for m in card.quantized_modules if (m.runtime_name or m.name) not in names and not m.experts]
    experts = [m for m in unplaced if (hit := UNFUSED_EXPERT.match(m.runtime_name or m.name))
               and hit["experts"] in names]
    fused_ids = {id(m) for m in experts}
    others = [m for m in unplaced if id(m) not in fused_ids]
    lints = []
    if experts:
        layers = sorted({UNFUSED_EXPERT.match(m.runtime_name or m.name)["experts"] for m in experts})
        fused = f"{names[layers[0]]} holds each layer's experts as fused 3-D tensors (gate_up_proj, down_proj)"
        if card.format == "modelopt":
            lints.append(Lint(
                "info", "experts-unfused-refused-at-load",
                f"{len(experts)} quantized tensors are stored per expert ({experts[0].name}, ...), unfused; at run time "
                f"{fused}; omnicheck dequantizes each expert and re-fuses them into those tensors at load, with "
                "activation quantization emulated inside the experts", tuple(layers),
            ))
        else:
            lints.append(Lint(
                "error", "experts-unfused",
                f"{len(experts)} quantized tensors are stored per expert ({experts[0].name}, ...), unfused, but at run "
                f"time {fused}: transformers has no place for them and the experts would run on RANDOM weights -- "
                "fix: export the experts fused (as the model's own state dict names them), or load with a runtime "
                "that reads per-expert weights", tuple(layers),
            ))
    if others:
        lints.append(Lint(
            "error", "quantized-tensor-without-module",
            f"{len(others)} quantized tensor(s) match no module of {card.model_type} at run time: {_names(others)}; "
            "they would be dropped and their modules left RANDOM -- fix: check that config.json is the one the "
            "checkpoint was exported with (layer counts, model_type) and re-export with the model's own module names",
            tuple(m.name for m in others),
        ))
    return lints


def media_weight_lints(card: QuantCard) -> list[Lint]:
    media = [m for m in card.quantized_modules if is_media_group(m.group)]
    if not media:
        return []
    groups = sorted({m.group for m in media})
    return [Lint(
        "warning", "media-module-quantized",
        f"{', '.join(groups)} weights are quantized ({media[0].weight.format}): {_names(media)}; quantized "
        "vision/audio towers and projectors are a known cause of dead modalities (keep them in the ignore list)",
        tuple(m.runtime_name or m.name for m in media),
    )]


def ignore_lints(card: QuantCard, runtime: RuntimeInfo | None) -> list[Lint]:
    if runtime is None or not card.ignore:
        return []
    names, rename = runtime
    by_disk = {m.name: m for m in card.modules}
    lints = []
    for entry in card.ignore:
        if card.format == "modelopt":
            hit = any(fnmatch.fnmatch(n, entry) for n in names) or any(fnmatch.fnmatch(n, entry) for n in by_disk)
            if not hit:
                lints.append(Lint("warning", "ignore-matches-nothing",
                                  f"exclude_modules entry {entry!r} matches no module of the model "
                                  f"(neither run-time nor on-disk names): it excludes nothing", (entry,)))
            continue
        if any(target_matches(entry, n, cls) for n, cls in names.items()):
            continue
        if entry.startswith("re:"):
            lints.append(Lint("info", "ignore-matches-nothing",
                              f"ignore pattern {entry!r} matches no module at run time", (entry,)))
            continue
        runtime_name = rename(entry + ".weight").rsplit(".", 1)[0]
        if runtime_name != entry and runtime_name in names:
            if not _targeted(card, runtime_name, names[runtime_name]):
                lints.append(Lint(
                    "info", "ignore-name-mismatch-harmless",
                    f"ignore entry {entry!r} uses the on-disk name (the module is {runtime_name!r} at run time); "
                    "harmless here because no quantization target matches that module",
                    (entry, runtime_name),
                ))
                continue
            fact = by_disk.get(entry)
            stored = "stored unquantized" if fact is not None and not fact.weight.quantized else "stored"
            lints.append(Lint(
                "error", "ignore-name-mismatch",
                f"ignore entry {entry!r} uses the on-disk name; at run time the module is {runtime_name!r}, so "
                f"transformers quantizes it on load, finds no {runtime_name}.weight_packed ({stored} as "
                f"{entry}.weight) and leaves it with RANDOM weights -- fix: write the run-time name "
                f"{runtime_name!r} in the ignore list (or a 're:' pattern that matches both)",
                (entry, runtime_name),
            ))
        else:
            lints.append(Lint("warning", "ignore-matches-nothing",
                              f"ignore entry {entry!r} matches no module at run time: it protects nothing", (entry,)))
    return lints


def _targeted(card: QuantCard, name: str, class_name: str) -> bool:
    groups = card.config.get("config_groups") or {}
    return any(target_matches(t, name, class_name) for g in groups.values() for t in g.get("targets") or [])


def load_mismatch_lints(card: QuantCard, runtime: RuntimeInfo | None, already: set[str]) -> list[Lint]:
    """compressed-tensors applies its scheme by run-time name; a targeted module stored unquantized loads random."""
    if runtime is None or card.format != "compressed-tensors":
        return []
    names, rename = runtime
    groups = card.config.get("config_groups") or {}
    broken = []
    for fact in card.modules:
        if fact.weight.quantized or fact.group == "embeddings":
            continue
        rt = rename(fact.name + ".weight").rsplit(".", 1)[0]
        cls = names.get(rt)
        if cls is None or rt in already or fact.name in already:
            continue
        ignored = any(target_matches(e, rt, cls) for e in card.ignore)
        if not ignored and group_for(rt, groups) is not None and any(
            target_matches(t, rt, cls) for g in groups.values() for t in g.get("targets") or []
        ):
            broken.append(fact)
    if not broken:
        return []
    return [Lint(
        "error", "quantized-on-load-stored-unquantized",
        f"{len(broken)} module(s) are targeted by the quantization config and not ignored at run time, but stored "
        f"unquantized: {_names(broken)}; transformers will look for packed weights and leave them RANDOM",
        tuple(m.runtime_name or m.name for m in broken),
    )]


def deployment_lints(card: QuantCard) -> list[Lint]:
    if card.model_type != "gemma4_unified":
        return []
    bad = [m for m in card.quantized_modules if m.group == "lm_head" or "embedding_projection" in m.name]
    if not bad:
        return []
    return [Lint(
        "warning", "vllm-gemma4-unified-unquantized",
        f"vLLM will not load gemma4_unified with these quantized: {_names(bad)}; lm_head and both "
        "embedding_projection layers (vision and audio) must stay unquantized (add them to the ignore list)",
        tuple(m.runtime_name or m.name for m in bad),
    )]


def info_lints(card: QuantCard, runtime: RuntimeInfo | None, checked: bool) -> list[Lint]:
    lints = []
    if card.kv_cache:
        from omnicheck.formats.kvcache import emulated

        if emulated(card):
            lints.append(Lint("info", "kv-cache-emulated",
                              f"KV cache is quantized in deployment ({card.kv_cache.get('format')}, "
                              f"{card.kv_cache.get('scales')}); omnicheck quantizes and dequantizes K and V the same "
                              "way before every attention, so damage done by the KV format shows in the verdicts"))
        else:
            lints.append(Lint("info", "kv-cache-not-emulated",
                              f"KV cache is quantized in deployment ({card.kv_cache.get('format')}); omnicheck's "
                              "in-process run keeps it in the model dtype"))
    if card.format == "modelopt":
        lints.append(Lint("info", "modelopt-emulated",
                          "transformers cannot load ModelOpt checkpoints; omnicheck dequantizes the weights and "
                          "fake-quantizes activations with the stored scales"))
    if card.format not in ("compressed-tensors", "modelopt", "unquantized"):
        lints.append(Lint("warning", "format-not-inspected",
                          f"quantization method {card.format!r} is read from config only; per-module facts may be "
                          "incomplete"))
    if checked and runtime is None and card.format != "unquantized":
        lints.append(Lint("info", "runtime-names-unchecked",
                          "transformers could not build this architecture on the meta device here, so ignore lists "
                          "were not checked against run-time module names"))
    return lints


def lint_card(card: QuantCard, runtime: RuntimeInfo | None, checked: bool = True) -> list[Lint]:
    ignore = ignore_lints(card, runtime)
    already = {n for lint in ignore if lint.code == "ignore-name-mismatch" for n in lint.modules}
    return (
        ignore
        + load_mismatch_lints(card, runtime, already)
        + unplaced_lints(card, runtime)
        + deployment_lints(card)
        + media_weight_lints(card)
        + ignore_gap_lints(card)
        + activation_lints(card)
        + uncalibrated_lints(card)
        + uncalibrated_scale_lints(card)
        + info_lints(card, runtime, checked)
    )
