"""Backends turn neutral messages into text: hf (in-process transformers), openai (a served model)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omnicheck.backends.base import Backend
    from omnicheck.variants import Variant


def open_backend(variant: "Variant", device: str | None = None, cache_dir: "Path | None" = None) -> "Backend":
    """Load the variant's model; heavy imports happen here, not at plugin import.

    cache_dir: where a served model's answers are kept as they arrive, so a rerun resends only what is missing.
    """
    if variant.is_url:
        from omnicheck.backends.openai import OpenAIBackend

        return OpenAIBackend(variant, cache_dir=cache_dir)
    from omnicheck.backends.hf import HFBackend

    return HFBackend(variant.path, name=variant.name, device=device)
