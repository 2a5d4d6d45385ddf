"""--model NAME=PATH|URL and --reference NAME|PATH -> an ordered list of Variants, reference first."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from omnicheck.errors import UsageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_URL = re.compile(r"^https?://", re.I)


@dataclass(frozen=True)
class Variant:
    name: str
    location: str  # a folder path, or a server URL (optionally URL#served-name)
    is_reference: bool = False

    @property
    def is_url(self) -> bool:
        return bool(_URL.match(self.location))

    @property
    def path(self) -> Path:
        return Path(self.location)

    @property
    def served_name(self) -> str | None:
        return self.location.split("#", 1)[1] if self.is_url and "#" in self.location else None

    @property
    def url(self) -> str:
        return self.location.split("#", 1)[0]


def _split(spec: str) -> tuple[str | None, str]:
    if _URL.match(spec):
        return None, spec
    name, sep, location = spec.partition("=")
    if sep and _NAME.match(name) and not _URL.match(name):
        return name, location
    return None, spec


def _default_name(location: str) -> str:
    if _URL.match(location):
        base = location.split("#", 1)
        if len(base) == 2 and base[1]:
            return re.sub(r"[^A-Za-z0-9_.+-]", "_", base[1].split("/")[-1])
        host = re.sub(r"^https?://", "", base[0], flags=re.I).split("/")[0]
        return re.sub(r"[^A-Za-z0-9_.+-]", "_", host)
    return Path(location.rstrip("/\\")).name or "model"


def parse_variants(specs: Sequence[str], reference: str | None = None) -> list[Variant]:
    """Parse repeated --model options. The reference comes first; the rest keep their order."""
    if not specs:
        return []
    parsed: list[tuple[str, str]] = []
    for spec in specs:
        name, location = _split(spec.strip())
        if not location:
            raise UsageError(f"--model {spec!r} has no path", "write --model NAME=PATH or --model PATH")
        location = location if _URL.match(location) else os.path.expanduser(location)
        parsed.append((name or _default_name(location), location))
    names = [n for n, _ in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(
            f"two --model options share the name {duplicates[0]!r}",
            f"name them apart: --model {duplicates[0]}_a=PATH --model {duplicates[0]}_b=PATH",
        )
    ref_index = 0
    if reference:
        matches = [i for i, (n, loc) in enumerate(parsed) if reference in (n, loc)]
        if not matches:
            ref_path = os.path.expanduser(reference)
            matches = [i for i, (_, loc) in enumerate(parsed) if not _URL.match(loc) and _same_path(loc, ref_path)]
        if not matches:
            raise UsageError(
                f"--reference {reference!r} names no --model",
                f"use one of: {', '.join(names)}, or add --model {reference}",
            )
        ref_index = matches[0]
    variants = [Variant(n, loc, is_reference=(i == ref_index)) for i, (n, loc) in enumerate(parsed)]
    return [variants[ref_index]] + [v for i, v in enumerate(variants) if i != ref_index]


def _same_path(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def variant_label(name: str, model_type: str | None) -> str:
    """'w4a4 (gemma4_unified)' in messages, or just 'whisper' when a variant is named after its architecture."""
    return name if not model_type or model_type == name else f"{name} ({model_type})"
