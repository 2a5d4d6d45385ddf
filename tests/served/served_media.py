"""Helpers shared by the media tests: one question per media file, answers that must not be errors."""

from __future__ import annotations

from pathlib import Path

from omnicheck.backends.openai import OpenAIBackend
from omnicheck.types import GenerationSettings, Message, Sample

SETTINGS = GenerationSettings(max_new_tokens=10)


def ask(part, question: str = "What is in it?") -> Sample:
    return Sample(id=f"{part.kind}-{Path(part.path).stem}", messages=(Message.user(part, question),))


def answers(backend: OpenAIBackend, samples: list[Sample]) -> list[str]:
    generations = backend.generate(samples, SETTINGS)
    for generation in generations:
        assert "error" not in generation.extra, generation.extra["error"]
        assert generation.text
    return [g.text for g in generations]


