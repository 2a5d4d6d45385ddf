"""Model folders built once into omnicheck's cache from packaged weights, shared by every later run."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

SOURCE_FILE = "omnicheck-source.json"  # where a folder came from; its builder writes it last, so it marks a whole folder


def is_complete(folder: Path) -> bool:
    return (folder / SOURCE_FILE).is_file()


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """target, built by build(staging folder) unless a complete one is there. The staging folder is renamed into
    place in one step, so another process sees the whole folder or none; if one finishes first, its folder stays."""
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(staging)
        if not is_complete(staging):
            raise RuntimeError(f"the builder of {target.name} did not write {SOURCE_FILE}")
        for path in (staging, *staging.iterdir()):  # mkdtemp and safetensors make owner-only modes; a shared cache must read them
            path.chmod(0o755 if path.is_dir() else 0o644)
        try:
            os.rename(staging, target)
        except OSError:
            if not is_complete(target):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
