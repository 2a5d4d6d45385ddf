"""Which collapse detectors fired: per sample (for its flags) and per variant and probe (for the collapse chart).

The gate records what it saw in a verdict's details; where it did not, the probes' own flags on the samples count.
"""

from __future__ import annotations

from typing import Any, Mapping

DETECTOR_ORDER = ("empty", "loop", "repetition", "garbled", "media_ignored", "collapsed")
DETECTOR_LABELS = {
    "empty": "empty output",
    "loop": "repetition loop",
    "repetition": "repetition loop",
    "garbled": "garbled text",
    "media_ignored": "media ignored",
    "collapsed": "any of the first three",
}


def sample_flags(sample: Mapping[str, Any], recorded: Mapping[str, Any] | None = None) -> list[str]:
    """Detectors that fired on one sample: the gate's (details.collapse.flags[id]) if recorded, the probe's
    (extra.flags), and an empty output, which needs no detector to see."""
    extra = sample.get("extra") or {}
    flags = [str(f) for f in extra.get("flags") or [] if isinstance(f, str)]
    for name in recorded or {}:
        if str(name) not in flags:
            flags.append(str(name))
    if not str(sample.get("output") or "").strip() and "empty" not in flags:
        flags.insert(0, "empty")
    return flags


def recorded_flags(verdict: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """sample id -> {detector: reason} from the verdict's details, when the gate kept them."""
    collapse = ((verdict or {}).get("details") or {}).get("collapse")
    flags = collapse.get("flags") if isinstance(collapse, dict) else None
    if not isinstance(flags, dict):
        return {}
    out: dict[str, Mapping[str, Any]] = {}
    for sample_id, fired in flags.items():
        if isinstance(fired, dict):
            out[str(sample_id)] = fired
        elif isinstance(fired, list):
            out[str(sample_id)] = {str(name): "" for name in fired}
    return out



def collapse_counts(verdict: Mapping[str, Any] | None, result: Mapping[str, Any]) -> dict[str, int]:
    """Detector -> flagged samples of this variant, as the gate counted them; else from the samples' own flags.

    Reads the gate's details: collapse.comparisons [{detector, variant, ...}] (a variant's verdict),
    collapse_counts {detector: n} (the reference's verdict), or a flat {detector: n | [ids]} under collapse.
    """
    details = (verdict or {}).get("details") or {}
    collapse = details.get("collapse")
    counts: dict[str, int] = {}
    if isinstance(collapse, dict) and isinstance(collapse.get("comparisons"), list):
        for comparison in collapse["comparisons"]:
            if isinstance(comparison, dict) and isinstance(comparison.get("variant"), (int, float)):
                counts[str(comparison.get("detector"))] = int(comparison["variant"])
        return counts
    recorded = details.get("collapse_counts") if isinstance(details.get("collapse_counts"), dict) else collapse
    if isinstance(recorded, dict):
        for name, value in recorded.items():
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                counts[str(name)] = int(value)
            elif isinstance(value, list):
                counts[str(name)] = len(value)
        if counts:
            return counts
    for sample in result.get("samples") or []:
        for flag in sample_flags(sample):
            counts[flag] = counts.get(flag, 0) + 1
    return counts

