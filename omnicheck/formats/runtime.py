"""Run-time module names: what transformers will call each module, from config.json alone.

The model is built on the meta device (no memory, no weights), so even a 12B config costs about a second.
transformers renames some stored keys on load (gemma4_unified: `vision_embedder.patch_dense` ->
`embed_vision.patch_dense`); the same renamings map on-disk module names to run-time ones here.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable

from omnicheck.checkpoint import model_class


def runtime_renamer(model) -> Callable[[str], str]:
    """On-disk key -> run-time key, using the renamings transformers applies when loading this model."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightRenaming

        renamings = [t for t in get_model_conversion_mapping(model) if type(t) is WeightRenaming]
    except Exception:  # an older or newer transformers without this API: names are used as stored
        renamings = []

    def rename(key: str) -> str:
        for transform in renamings:
            try:
                key = transform.rename_source_key(key)[0]
            except Exception:
                continue
        return key

    return rename


@functools.lru_cache(maxsize=8)
def _meta_model(config_text: str):
    import torch
    from transformers import AutoConfig, logging

    logging.set_verbosity_error()
    data = json.loads(config_text)
    data.pop("quantization_config", None)
    model_type = data.pop("model_type")
    config = AutoConfig.for_model(model_type, **data)
    with torch.device("meta"):
        return model_class({**data, "model_type": model_type}).from_config(config)


def runtime_modules(path: Path) -> tuple[dict[str, str], Callable[[str], str]] | None:
    """(run-time module name -> class name, on-disk -> run-time key renamer), or None if transformers cannot build
    this architecture here."""
    try:
        model = _meta_model((Path(path) / "config.json").read_text())
    except Exception:  # unknown architecture, missing extra dependency: the card still stands without this check
        return None
    names = {name: type(module).__name__ for name, module in model.named_modules() if name}
    return names, runtime_renamer(model)
