"""diagnose(): why a variant's modalities fail, in words, from its verdicts and its quant card."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from omnicheck.types import Status, Verdict

MEDIA_MODALITIES = ("image", "audio", "video")
# verdicts on quality; a reference, a skip or an error says nothing about why a modality fails
JUDGED = frozenset({Status.PASS, Status.INCONCLUSIVE, Status.DEGRADED, Status.BROKEN})


def diagnose(verdicts: Sequence[Verdict], quant_card: Mapping[str, Any] | None) -> list[str]:
    """Findings in words about why a variant's modalities fail, from its verdicts and its quant card.

    Reads these keys of quant_card (all optional; a missing card or key says less, never errs):
      activation_quantized: bool -- some layers quantize their input activations (W4A4 / NVFP4 / W8A8 / FP8 dynamic).
      scheme: str -- the scheme's name as the card writes it (e.g. "NVFP4", "NVFP4A16", "FP8_DYNAMIC"), quoted.
      activations_ran_quantized: bool -- from the execution path: False when this run did not quantize
        activations (e.g. a weight-only kernel ran a W4A4 checkpoint), so activation clipping cannot be the cause.
      calibration_datasets: list[str] -- recipe calibration sets, named when present.
    """
    judged = [v for v in verdicts if v.status in JUDGED]
    by_modality: dict[str, list[Verdict]] = {}
    for v in judged:
        by_modality.setdefault(v.modality, []).append(v)
    text = by_modality.get("text", [])
    text_ok = bool(text) and all(v.status == "PASS" for v in text)
    broken = [m for m in MEDIA_MODALITIES if any(v.status == "BROKEN" for v in by_modality.get(m, []))]
    degraded = [m for m in MEDIA_MODALITIES if m not in broken and any(v.status == "DEGRADED" for v in by_modality.get(m, []))]
    card = quant_card or {}
    scheme = card.get("scheme")
    scheme_words = f" (scheme {scheme})" if scheme else ""
    findings: list[str] = []

    all_modalities = [m for m in ("text", *MEDIA_MODALITIES) if m in by_modality]
    if len(all_modalities) > 1 and all(any(v.status == "BROKEN" for v in by_modality[m]) for m in all_modalities):
        findings.append(
            "every modality is BROKEN, text included: the model as a whole is damaged (weights, load, tokenizer or "
            "chat template), not one modality's path"
        )
        return findings
    if not text_ok or not (broken or degraded):
        return findings
    failing = broken or degraded
    names = _join(failing)
    state = "BROKEN" if broken else "DEGRADED"
    if card.get("activation_quantized") is True:
        if card.get("activations_ran_quantized") is False:
            findings.append(
                f"text passes while {names} {'is' if len(failing) == 1 else 'are'} {state}, but this run did not quantize "
                f"activations{scheme_words}, so clipped activation scales are not the cause here: look at the "
                f"{names} towers and projectors (their weights, and MISSING keys in the load report)"
            )
            return findings
        calibration = card.get("calibration_datasets")
        calibrated_on = f" (calibration data: {', '.join(map(str, calibration))})" if calibration else ""
        likely = "likely" if broken else "possible"
        findings.append(
            f"text passes while {names} {'is' if len(failing) == 1 else 'are'} {state} and this variant quantizes "
            f"activations{scheme_words}: the {likely} cause is activation scales calibrated on text{calibrated_on}, "
            f"which clip the {names} activations whose ranges text never showed. Fixes: use a weight-only scheme "
            f"(e.g. W4A16 / NVFP4A16) for these layers or the whole model; calibrate with {names} samples in the "
            f"calibration data; or keep the layers that consume {names} embeddings (towers, projectors, embedding "
            f"projections) unquantized."
        )
    elif card.get("activation_quantized") is False:
        findings.append(
            f"text passes while {names} {'is' if len(failing) == 1 else 'are'} {state} under weight-only quantization"
            f"{scheme_words}: the damage is in the {names} path itself: check whether the {names} towers or "
            f"projectors were quantized or loaded wrong (MISSING/UNEXPECTED keys, an ignore list that names no module)"
        )
    else:
        findings.append(
            f"text passes while {names} {'is' if len(failing) == 1 else 'are'} {state}: the damage is in the {names} "
            f"path (towers, projectors, or activation ranges); a quant card would say which"
        )
    return findings


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
