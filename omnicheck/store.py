"""The reference cache: a reference's per-sample results, keyed by everything that could change them.

Key = model fingerprint + probe fingerprint + sample ids + fixture hashes + generation settings + omnicheck's
result schema. A key that differs is a different file, so a stale entry is never reused and never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omnicheck.checkpoint import header_bytes
from omnicheck.digest import sha256_json
from omnicheck.errors import ModelLoadError
from omnicheck.types import ProbeResult

SCHEMA = 1
_SAMPLE_BYTES = 1 << 16


def default_cache_dir() -> Path:
    env = os.environ.get("OMNICHECK_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "omnicheck"


def fingerprint_model(path: Path) -> str:
    """Identify a checkpoint folder cheaply, also at 12B scale: config and tokenizer files whole,
    each weight file's size, safetensors header, and three 64 KiB samples of its data."""
    return _fingerprint(sorted(p for p in Path(path).iterdir() if p.is_file()))


def weights_fingerprint(path: Path) -> str | None:
    """The same for the safetensors files alone: equal for two folders holding the same weights under different
    configs (e.g. a copy with a field a serving engine needs added). None when there are none."""
    files = sorted(Path(path).glob("*.safetensors"))
    return _fingerprint(files) if files else None


def _fingerprint(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        size = file.stat().st_size
        digest.update(struct.pack("<Q", size))
        if file.suffix in (".json", ".jinja", ".txt", ".model", ".py") and size < (64 << 20):
            digest.update(file.read_bytes())
            continue
        with open(file, "rb") as handle:
            for offset in (0, max(0, size // 2 - _SAMPLE_BYTES // 2), max(0, size - _SAMPLE_BYTES)):
                handle.seek(offset)
                digest.update(handle.read(_SAMPLE_BYTES))
        if file.suffix == ".safetensors":
            try:
                digest.update(header_bytes(file))
            except ModelLoadError:  # a damaged file still fingerprints; loading it says what is wrong
                pass
    return digest.hexdigest()[:16]


def cache_key(model: str, probe: dict[str, Any], sample_ids: list[str], media: str, settings: dict[str, Any]) -> str:
    return sha256_json(
        {"schema": SCHEMA, "model": model, "probe": probe, "samples": sample_ids, "media": media, "settings": settings}
    )[:24]


class ReferenceStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else default_cache_dir() / "reference"
        self.hits = 0
        self.misses = 0

    def _path(self, probe: str, key: str) -> Path:
        return self.root / f"{probe}-{key}.json"

    def get(self, probe: str, key: str) -> ProbeResult | None:
        path = self._path(probe, key)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            self.misses += 1
            return None
        if data.get("key") != key:
            self.misses += 1
            return None
        self.hits += 1
        result = ProbeResult.from_json(data["result"])
        result.cached = True
        return result

    def put(self, probe: str, key: str, result: ProbeResult) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(probe, key)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"key": key, "result": result.to_json()}))
        os.replace(tmp, path)

    # the reference's token scores (teacher-forced top-k and A/A floor) beside its result, one file per schema,
    # so a cache written by another omnicheck version is neither read as this one's nor overwritten

    def _tokens_path(self, probe: str, key: str, schema: int) -> Path:
        return self.root / f"{probe}-{key}.tokens-v{schema}.json"

    def get_tokens(self, probe: str, key: str, schema: int) -> dict[str, Any] | None:
        try:
            data = json.loads(self._tokens_path(probe, key, schema).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) and data.get("key") == key else None

    def other_token_schemas(self, probe: str, key: str, schema: int) -> list[int]:
        """Schemas of token files other omnicheck versions left for this entry (for a one-line notice)."""
        found = []
        for path in self.root.glob(f"{probe}-{key}.tokens-v*.json"):
            suffix = path.name.rsplit("-v", 1)[-1].removesuffix(".json")
            if suffix.isdigit() and int(suffix) != schema:
                found.append(int(suffix))
        return sorted(found)

    def put_tokens(self, probe: str, key: str, schema: int, data: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._tokens_path(probe, key, schema)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({**data, "key": key}))
        os.replace(tmp, path)

    @contextmanager
    def lock(self, probe: str, key: str):
        """Held while one process computes a reference result, so parallel workers compute it once."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self._path(probe, key).with_suffix(".lock"), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
