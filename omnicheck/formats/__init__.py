"""Quantized checkpoint formats: the quant card, its lints, and loaders transformers lacks.

`inspect_checkpoint(path)` reads config files and safetensors headers (never tensor data) and checks ignore lists
against the run-time module names of a meta-device build. Nothing heavy is imported here.
"""

from __future__ import annotations

from pathlib import Path

from omnicheck.formats.card import ActQuant, Lint, ModuleFacts, QuantCard, WeightQuant, read_card

__all__ = ["ActQuant", "Lint", "ModuleFacts", "QuantCard", "WeightQuant", "inspect_checkpoint", "read_card"]


def inspect_checkpoint(path: Path | str, runtime_check: bool = True, vllm_version: str | None = None) -> QuantCard:
    """The quant card of a checkpoint folder, with its lints.

    runtime_check builds the model on the meta device (imports transformers) to compare ignore lists with the
    names modules have at run time; without it only the static card and its static lints are produced.
    vllm_version: the vLLM that will serve it (default: one installed here), for the served-path lints.
    """
    from omnicheck.formats.lints import lint_card
    from omnicheck.formats.serving import served_lints

    card = read_card(Path(path))
    runtime = None
    if runtime_check and card.format != "unquantized":
        from omnicheck.formats.runtime import runtime_modules

        runtime = runtime_modules(Path(path))
        if runtime is not None:
            names, rename = runtime
            card.runtime_names = names
            for fact in card.modules:
                fact.runtime_name = rename(fact.name + ".weight").rsplit(".", 1)[0]
    card.lints = lint_card(card, runtime, checked=runtime_check) + served_lints(path, card.config_json, vllm_version)
    return card
