"""What a run is: its configuration, resolved once, and what it learns about each variant as it goes.

Precedence, worked out in one place each: a command-line option wins over [tool.omnicheck], which wins over the
built-in default. Options that the file also has (probes, tier, inconclusive, counterfactual) are laid over the
file by Settings.with_overrides, with the file's own checks; generation settings per probe are resolved by
RunConfig.generation_settings (option, else the file's per-probe value, else the probe's own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnicheck.config import Settings
from omnicheck.probes import PROBES
from omnicheck.types import GenerationSettings
from omnicheck.variants import Variant


@dataclass
class RunConfig:
    variants: list[Variant]
    probes: list[str] = field(default_factory=lambda: list(PROBES))
    tier: str = "smoke"
    report_dir: Path = Path("reports")
    data: dict[str, Path] = field(default_factory=dict)
    settings: Settings = field(default_factory=Settings)  # thresholds, statistics, inconclusive policy
    refresh_reference: bool = False
    cache_dir: Path | None = None
    device: str | None = None
    batch_size: int | None = None  # None: each probe's own
    max_new_tokens: int | None = None  # None: the file's per-probe value, else each probe's own
    limit: int | None = None  # at most this many samples per probe, spread over the tier's set
    worker: str | None = None  # a pytest-xdist worker writes a part; the controller merges the parts
    argv: list[str] = field(default_factory=list)
    write_html: bool = True

    @property
    def reference(self) -> Variant:
        return next(v for v in self.variants if v.is_reference)

    def generation_settings(self, probe: str, defaults: GenerationSettings) -> GenerationSettings:
        """How one probe generates in this run; defaults: the probe's own settings."""
        return GenerationSettings(
            max_new_tokens=self.max_new_tokens or self.settings.max_new_tokens_for(probe, defaults.max_new_tokens),
            batch_size=self.batch_size or defaults.batch_size,
            do_sample=False,
            counterfactual=self.settings.counterfactual,
        )


@dataclass
class VariantState:
    variant: Variant
    fingerprint: str | None = None
    description: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] | None = None
    lints: list[dict[str, Any]] = field(default_factory=list)
    execution_path: dict[str, Any] | None = None
    error: str | None = None
