"""The backend registry: how a variant's model is asked. Backends are imported only when a variant loads.

A backend is one module with one class that meets base.Backend; add it with one line in BACKENDS.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omnicheck.backends.base import Backend
    from omnicheck.variants import Variant

# kind -> (module, class, what a --model location must be for it). The first kind that fits a variant takes it.
BACKENDS: dict[str, tuple[str, str, str]] = {
    "openai": ("omnicheck.backends.openai", "OpenAIBackend", "url"),  # a vLLM / SGLang server
    "hf": ("omnicheck.backends.hf", "HFBackend", "folder"),  # a checkpoint folder, in-process transformers
}


def backend_kind(variant: "Variant") -> str:
    location = "url" if variant.is_url else "folder"
    return next(kind for kind, (_, _, takes) in BACKENDS.items() if takes == location)


def open_backend(variant: "Variant", device: str | None = None, cache_dir: "Path | None" = None) -> "Backend":
    """Load the variant's model; heavy imports happen here, not at plugin import.

    device: where an in-process model runs; cache_dir: where a served model's answers are kept as they arrive,
    so a rerun resends only what is missing.
    """
    module, cls, _ = BACKENDS[backend_kind(variant)]
    return getattr(importlib.import_module(module), cls).open(variant, device=device, cache_dir=cache_dir)
