"""What a backend is: something that turns neutral messages into text.

Probes talk to this Protocol only; they never import a concrete backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from omnicheck.types import GenerationSettings, Sample


@dataclass(frozen=True)
class Generation:
    text: str
    tokens: int = 0  # generated tokens, for throughput figures
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. how media was sent to a server


@runtime_checkable
class Backend(Protocol):
    name: str
    modalities: frozenset[str]  # the input modalities the model can take

    def generate(self, samples: Sequence[Sample], settings: GenerationSettings) -> list[Generation]: ...

    def lm_eval_model(self, settings: GenerationSettings | None = None) -> Any:
        """An lm-eval LM instance over the already-loaded model (no second load), batching as `settings` say."""
        ...

    def describe(self) -> dict[str, Any]:
        """Model type, dtype, device, execution path: recorded in the results."""
        ...

    def close(self) -> None: ...
