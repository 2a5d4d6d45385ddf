"""Content hashes, each computed one way for the whole project (fixture manifests, cache keys, fingerprints)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (fixtures can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_json(value: Any) -> str:
    """Hex sha256 of a JSON-able value, keys sorted: equal values hash equal whatever their dict order."""
    return sha256_text(json.dumps(value, sort_keys=True))


def digest_files(paths: Iterable[Path | str]) -> str:
    """A short hash of files' names and contents (16 hex digits), order-free; a missing file counts by name.

    Part of a probe's fingerprint and of the reference cache key, so a changed fixture, reference text or
    transcript is never answered from the cache."""
    digest = hashlib.sha256()
    for path in sorted({Path(p) for p in paths}):
        digest.update(path.name.encode() + b"\0")
        if path.is_file():
            digest.update(bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()[:16]
