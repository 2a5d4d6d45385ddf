"""Resuming an interrupted probe run: each batch's generations are journaled on disk as they come, and a rerun
with the same model, probe, samples and settings generates only what the journal lacks.

The journal of a run that finishes is deleted, so a normal rerun generates afresh (the reference has its own
cache in store.py); only a run that was stopped part-way leaves one. A served model needs none: its requests
are cached by the OpenAI backend itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

from omnicheck.digest import sha256_file
from omnicheck.types import GenerationSettings, Sample


def sample_key(sample: Sample) -> str:
    """What the model is asked: every text and every media file's content (not its name)."""
    digest = hashlib.sha256()
    for message in sample.messages:
        digest.update(message.role.encode() + b"\0")
        for part in message.parts:
            digest.update(part.kind.encode() + b"\0")
            if part.kind == "text":
                digest.update(part.text.encode())
            else:
                digest.update(sha256_file(Path(part.path)).encode())
                digest.update(str(getattr(part, "num_frames", "")).encode())
            digest.update(b"\0")
    return digest.hexdigest()[:32]


class Journal:
    """One JSON line per finished sample in `folder/generations.jsonl`, appended a batch at a time."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / "generations.jsonl"

    def load(self) -> dict[str, dict[str, Any]]:
        done: dict[str, dict[str, Any]] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return done
        for line in lines:
            try:
                row = json.loads(line)
                done[row["key"]] = row
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by the interruption
        return done

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(row) + "\n" for row in rows))
            handle.flush()
            os.fsync(handle.fileno())

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class Resumable:
    """A backend whose generate() skips the samples the journal already holds and journals each new batch.
    Everything else is the wrapped backend's."""

    def __init__(self, backend: Any, journal: Journal):
        self._backend, self._journal = backend, journal
        self.resumed = 0  # generations taken from the journal in this run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def finish(self) -> None:
        """The probe finished: drop its journal, so a rerun starts afresh."""
        self._journal.clear()

    def generate(self, samples: Sequence[Sample], settings: GenerationSettings) -> list[Any]:
        from omnicheck.backends.base import Generation

        keys = [sample_key(s) for s in samples]
        done = self._journal.load()
        todo = [i for i, k in enumerate(keys) if k not in done]
        self.resumed += len(samples) - len(todo)
        progress: Callable[[int, int], None] | None = getattr(self._backend, "on_batch", None)
        if progress is not None:
            self._backend.on_batch = None  # reported here, over the whole call
        try:
            step = max(1, settings.batch_size)
            for start in range(0, len(todo), step):
                chunk = todo[start : start + step]
                made = self._backend.generate([samples[i] for i in chunk], settings)
                rows = [{"key": keys[i], "text": g.text, "tokens": g.tokens, "extra": g.extra} for i, g in zip(chunk, made)]
                self._journal.append(rows)
                done.update((row["key"], row) for row in rows)
                if progress is not None:
                    progress(len(samples) - len(todo) + start + len(chunk), len(samples))
        finally:
            if progress is not None:
                self._backend.on_batch = progress
        return [Generation(text=done[k]["text"], tokens=int(done[k].get("tokens", 0)), extra=dict(done[k].get("extra") or {}))
                for k in keys]


def journal_folder(root: Path, model_fingerprint: str, probe: dict[str, Any], settings: dict[str, Any]) -> Path:
    blob = json.dumps({"model": model_fingerprint, "probe": probe, "settings": settings}, sort_keys=True, default=str)
    return Path(root) / hashlib.sha256(blob.encode()).hexdigest()[:24]
