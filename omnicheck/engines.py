"""Which engine ran each variant, and what a comparison across engines means.

An engine is transformers in-process (with its version) or a server (vLLM, SGLang, or one that does not say which)
with the version it reports. The same weights give different outputs on two engines (other kernels, other image
preprocessing, other rounding), so a variant judged against a reference that ran on another engine carries the
engine's difference in its verdict. The session flags such verdicts; the document's "engines" block (built here
from the document's own variants and verdicts, so a merged pytest-xdist document gets the same) says which
variants were compared across engines, how to compare like with like, and, when the run holds the reference's own
weights on the other engine (an A/A across engines), how much the engine alone changes on each probe.

Plain data only: nothing here runs a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

TRANSFORMERS = "transformers"
SERVER_NAMES = {"vllm": "vLLM", "sglang": "SGLang"}  # /v1/models owned_by -> the engine's name


@dataclass(frozen=True)
class Engine:
    name: str  # transformers, vLLM, SGLang, or "an OpenAI-compatible server"
    version: str | None
    served: bool

    @property
    def label(self) -> str:
        version = f" {self.version}" if self.version else " (version not reported)"
        return f"{self.name}{version} ({'served' if self.served else 'in-process'})"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "served": self.served, "label": self.label}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "Engine | None":
        if not isinstance(data, Mapping) or not data.get("name"):
            return None
        return cls(str(data["name"]), data.get("version"), bool(data.get("served")))


def in_process_engine() -> Engine:
    """transformers in this process, with its installed version."""
    from importlib import metadata

    try:
        version: str | None = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        version = None
    return Engine(TRANSFORMERS, version, served=False)


def served_engine(owned_by: Any, version: Any) -> Engine:
    """A server's engine from what it says: the owner in its /v1/models card and the version it reports."""
    name = SERVER_NAMES.get(str(owned_by or "").lower(), "an OpenAI-compatible server")
    return Engine(name, str(version) if version else None, served=True)


def serve_hint(reference: str, engine: Engine) -> str:
    """How to compare like with like: the reference on the variant's engine."""
    if engine.served:
        return (f"serve the reference's weights on {engine.name}{' ' + engine.version if engine.version else ''} too "
                f"and pass --model {reference}=http://HOST:PORT/v1")
    return f"run the reference in-process too: --model {reference}=/path/to/its/checkpoint"


def cross_engine_note(reference: str, reference_engine: Engine, variant_engine: Engine) -> str | None:
    """The sentence a verdict carries when its variant and the reference ran on different engines, else None."""
    if reference_engine == variant_engine:
        return None
    return (f"compared across engines: the reference {reference} ran on {reference_engine.label}, this variant on "
            f"{variant_engine.label}; the engine alone changes outputs, so part of any difference is not the "
            f"quantization's -- fix: {serve_hint(reference, variant_engine)}")


def flag_cross_engine(verdict: Any, reference: str, reference_engine: Mapping[str, Any] | None,
                      variant_engine: Mapping[str, Any] | None) -> None:
    """Mark a verdict (types.Verdict) whose variant ran on another engine than the reference: the note ends its
    message (what a failing test prints) and joins its findings; details["engines"] names both engines."""
    ours, theirs = Engine.from_json(reference_engine), Engine.from_json(variant_engine)
    if ours is None or theirs is None:
        return
    verdict.details["engines"] = {"reference": ours.label, "variant": theirs.label, "cross_engine": ours != theirs}
    note = cross_engine_note(reference, ours, theirs)
    if note:
        verdict.message = f"{verdict.message} -- {note}"
        verdict.findings.append(note)


# --- the document's "engines" block ---


def engines_block(variants: Iterable[Mapping[str, Any]], verdicts: Iterable[Mapping[str, Any]],
                  reference: str) -> dict[str, Any]:
    """variants, verdicts: as in omnicheck.json. Which engine ran what, which variants were judged across engines,
    and their agreement with the reference per probe, the A/A across engines (a variant holding the reference's own
    weights, by their safetensors) apart from the others."""
    variants = {str(v["name"]): v for v in variants}
    engines = {name: Engine.from_json(v.get("engine")) for name, v in variants.items()}
    ours = engines.get(reference)
    cross = {name: engine for name, engine in engines.items()
             if name != reference and ours is not None and engine is not None and engine != ours}
    weights = (variants.get(reference) or {}).get("weights")
    figures: dict[str, dict[str, Any]] = {name: {} for name in cross}
    for verdict in verdicts:
        if verdict.get("variant") in figures:
            figures[verdict["variant"]][verdict["probe"]] = _agreement_figures(verdict)
    same_weights = [name for name in cross if weights and variants[name].get("weights") == weights]
    by_engine: dict[str, list[str]] = {}
    for name, engine in engines.items():
        by_engine.setdefault(engine.label if engine else "not recorded", []).append(name)
    return {
        "reference": reference,
        "reference_engine": ours.label if ours else None,
        "by_engine": by_engine,
        "cross_engine": list(cross),
        "same_weights_as_reference": same_weights,
        "engine_alone": {name: figures[name] for name in same_weights},
        "variant_figures": {name: probes for name, probes in figures.items() if name not in same_weights},
        "hint": serve_hint(reference, next(iter(cross.values()))) if cross else None,
    }


def _agreement_figures(verdict: Mapping[str, Any]) -> dict[str, Any]:
    agreement = (verdict.get("details") or {}).get("agreement") or {}
    return {
        "status": verdict.get("status"),
        "n": agreement.get("n"),
        "identical_share": agreement.get("identical_share"),
        "mean_similarity": agreement.get("mean_similarity"),
        "metric": verdict.get("metric"),
        "difference": verdict.get("difference"),
    }


def engine_lines(block: Mapping[str, Any] | None) -> list[str]:
    """The engines block in words, for the terminal and the report: empty when every variant ran on one engine."""
    if not block or not block.get("cross_engine"):
        return []
    cross = set(block["cross_engine"])
    others = {label: [n for n in names if n in cross] for label, names in block["by_engine"].items()}
    others = {label: names for label, names in others.items() if names}
    lines = [f"engines: the reference {block['reference']} ran on {block['reference_engine']}; "
             + "; ".join(f"{', '.join(names)} on {label}" for label, names in others.items())
             + f": compared across engines (* in the matrix) -- fix: {block['hint']}"]
    for name, probes in block["engine_alone"].items():
        lines.append(f"the engine alone ({name}: the reference's weights on another engine): "
                     + _figures_text(probes))
    if block["engine_alone"]:
        for name, probes in block["variant_figures"].items():
            lines.append(f"{name} against the reference: {_figures_text(probes)}")
    else:
        lines.append("how much of a difference the engine alone makes is not measured in this run: add the "
                     "reference's own weights on the variants' engine as one more variant (an A/A across engines, "
                     "docs/experiment-served.md)")
    return lines


def _figures_text(probes: Mapping[str, Mapping[str, Any]]) -> str:
    parts = []
    for probe, figures in probes.items():
        share = figures.get("identical_share")
        if share is None:
            parts.append(f"{probe} {figures.get('status')}")
            continue
        text = f"{probe} {100 * share:.0f}% identical outputs of {figures.get('n')}"
        if figures.get("metric") and isinstance(figures.get("difference"), (int, float)):
            text += f" ({figures['metric']} {figures['difference']:+.3g})"
        parts.append(text)
    return "; ".join(parts) or "no verdicts"
