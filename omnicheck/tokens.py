"""What a backend returns when it scores a given answer instead of writing its own (teacher forcing).

The reference's greedy answer is fed after the same prompt and media; the model's next-token distribution is read
at every position of it: before each answer token, and after the last one (where the reference's answer ended).
Nothing heavy is imported here: these are plain lists, serialised as JSON into the reference cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from omnicheck.types import Sample


@dataclass(frozen=True)
class Continuation:
    """One request: score `text` as the answer to `sample`.

    prompt: the prompt exactly as a text probe's harness rendered it (lm-eval's context string); None means the
      backend renders the sample's messages through its chat template, as it does for generation.
    token_ids: the reference's tokens of `text`; a backend whose tokenizer splits the text differently says
      "not available" (the distributions would be over different positions).
    gather: per position, token ids whose log-probabilities to return (the reference's top-k), or None.
    """

    sample: Sample
    text: str
    prompt: str | None = None
    token_ids: tuple[int, ...] | None = None
    gather: Sequence[Sequence[int]] | None = None


@dataclass(frozen=True)
class TokenScores:
    """A model's distributions along one continuation: len(token_ids) + 1 positions (the last predicts the end)."""

    token_ids: list[int]  # the continuation as this model's tokenizer split it
    tokens: list[str]  # each token decoded alone, for people reading the report
    top_ids: list[list[int]]  # per position, the model's top-k token ids, most likely first
    top_logprobs: list[list[float]]  # their natural-log probabilities
    token_logprobs: list[float]  # per answer token, the model's log-probability of it (len(token_ids) entries)
    gathered: list[list[float]] | None = None  # per position, log-probabilities of the asked ids (NaN: not known)
    prompt_tokens: int = 0

    @property
    def positions(self) -> int:
        return len(self.top_ids)

    def to_json(self) -> dict[str, Any]:
        return {"token_ids": self.token_ids, "tokens": self.tokens, "top_ids": self.top_ids,
                "top_logprobs": [[round(x, 6) for x in row] for row in self.top_logprobs],
                "token_logprobs": [round(x, 6) for x in self.token_logprobs], "prompt_tokens": self.prompt_tokens}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TokenScores":
        return cls(token_ids=list(data["token_ids"]), tokens=list(data["tokens"]), top_ids=data["top_ids"],
                   top_logprobs=data["top_logprobs"], token_logprobs=list(data["token_logprobs"]),
                   prompt_tokens=int(data.get("prompt_tokens", 0)))


@dataclass(frozen=True)
class NotScored:
    """Why a continuation could not be scored, in one line (cause and fix)."""

    reason: str
