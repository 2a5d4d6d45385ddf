"""What a backend is: something that turns neutral messages into text.

Probes and the session talk to this Protocol only; they never import a concrete backend (see the registry in
__init__.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from omnicheck.types import GenerationSettings, Sample

if TYPE_CHECKING:
    from omnicheck.tokens import Continuation, NotScored, TokenScores
    from omnicheck.variants import Variant


@dataclass(frozen=True)
class Generation:
    text: str
    tokens: int = 0  # generated tokens, for throughput figures
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. how media was sent to a server


Progress = Callable[[int, int], None]  # (samples done, samples asked), called as generation goes


@runtime_checkable
class Backend(Protocol):
    name: str
    modalities: frozenset[str]  # the input modalities the model can take
    on_batch: Progress | None  # set by the session before each probe; None: no progress reports

    @classmethod
    def open(cls, variant: "Variant", *, device: str | None = None, cache_dir: Path | None = None) -> "Backend":
        """Load (or connect to) the variant's model. device: for in-process models; cache_dir: for answers kept
        on disk. A backend ignores what does not apply to it."""
        ...

    def generate(self, samples: Sequence[Sample], settings: GenerationSettings) -> list[Generation]: ...

    def lm_eval_model(self, settings: GenerationSettings | None = None) -> Any:
        """An lm-eval LM instance over the already-loaded model (no second load), batching as `settings` say."""
        ...

    def describe(self) -> dict[str, Any]:
        """Model type, dtype, device, execution path: recorded in the results."""
        ...

    def activation_ranges(self, samples: Mapping[str, Sequence[Sample]]) -> dict[str, Any]:
        """How much of each activation-quantized layer's input its stored scales clip, per modality (samples:
        modality -> a few samples), as JSON. A backend that cannot look inside its model answers
        {"available": False, "reason": ...}; one that failed, {"error": ...}."""
        ...

    def take_decoding(self) -> dict[str, Any] | None:
        """How the calls since the last take decoded and batched, recorded per probe; None where the backend does
        not decode itself (a server)."""
        ...

    def score_continuations(self, continuations: Sequence["Continuation"], top_k: int = 20,
                            batch_size: int = 8) -> list["TokenScores | NotScored"]:
        """Teacher forcing: per continuation, this model's next-token distributions along the given answer (the
        reference's), read in one forward pass; NotScored with the reason where it cannot (omnicheck/tokens.py)."""
        ...

    def close(self) -> None: ...
