"""The served backend's resume cache: one JSON file per request, written as each answer arrives.

A request's key is the served model's identity, the messages (text verbatim, media by content: the same question
from a moved file is the same question) and the generation settings. Errors are never cached, so a rerun after a
crash or a refusal sends only what is missing.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from omnicheck.backends.base import Generation
from omnicheck.digest import sha256_file, sha256_json
from omnicheck.types import Message, TextPart, VideoPart


def messages_digest(messages: Sequence[Message]) -> str:
    """Text verbatim, media by content."""
    neutral = []
    for message in messages:
        parts = []
        for part in message.parts:
            if isinstance(part, TextPart):
                parts.append(["text", part.text])
            else:
                entry: list[Any] = [part.kind, sha256_file(Path(part.path))]
                if isinstance(part, VideoPart):
                    entry.append(part.num_frames)
                parts.append(entry)
        neutral.append([message.role, parts])
    return sha256_json(neutral)


class ResponseCache:
    """One JSON file per request, written atomically as each answer arrives; errors are never cached."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def key(self, model: dict[str, Any], messages: Sequence[Message], settings: dict[str, Any]) -> str:
        return sha256_json({"model": model, "messages": messages_digest(messages), "settings": settings})

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Generation | None:
        try:
            data = json.loads(self._path(key).read_text())
            return Generation(text=str(data["text"]), tokens=int(data["tokens"]), extra=dict(data["extra"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or unreadable (a crash mid-write leaves only a .tmp file): ask again

    def put(self, key: str, generation: Generation) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump({"text": generation.text, "tokens": generation.tokens, "extra": generation.extra}, handle)
        os.replace(tmp, path)

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.json"))
