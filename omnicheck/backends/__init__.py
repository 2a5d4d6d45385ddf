"""Backends turn neutral messages into text: hf (in-process transformers), openai (a served model)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omnicheck.backends.base import Backend
    from omnicheck.variants import Variant


def open_backend(variant: "Variant", device: str | None = None) -> "Backend":
    """Load the variant's model; heavy imports happen here, not at plugin import."""
    if variant.is_url:
        from omnicheck.backends.openai import OpenAIBackend

        return OpenAIBackend(variant)
    from omnicheck.backends.hf import HFBackend

    return HFBackend(variant.path, name=variant.name, device=device)
