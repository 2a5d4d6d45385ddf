"""What a run is: its configuration, and what it learns about each variant as it goes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnicheck.probes import PROBES
from omnicheck.variants import Variant


@dataclass
class RunConfig:
    variants: list[Variant]
    probes: list[str] = field(default_factory=lambda: list(PROBES))
    tier: str = "smoke"
    report_dir: Path = Path("reports")
    data: dict[str, Path] = field(default_factory=dict)
    settings: Any = None  # omnicheck.config.Settings: thresholds, statistics, inconclusive policy
    refresh_reference: bool = False
    cache_dir: Path | None = None
    device: str | None = None
    batch_size: int | None = None
    max_new_tokens: int | None = None
    limit: int | None = None  # at most this many samples per probe, spread over the tier's set
    worker: str | None = None  # a pytest-xdist worker writes a part; the controller merges the parts
    argv: list[str] = field(default_factory=list)
    write_html: bool = True

    @property
    def reference(self) -> Variant:
        return next(v for v in self.variants if v.is_reference)


@dataclass
class VariantState:
    variant: Variant
    fingerprint: str | None = None
    description: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] | None = None
    lints: list[dict[str, Any]] = field(default_factory=list)
    execution_path: dict[str, Any] | None = None
    error: str | None = None
