"""Which thresholds, confidence, bootstrap resamples and seed judge one probe: given here, else the run's
settings, else the built-in defaults."""

from __future__ import annotations

from dataclasses import dataclass

from omnicheck.compare.paired import DEFAULT_RESAMPLES
from omnicheck.config import Settings, Thresholds


@dataclass(frozen=True)
class GateSettings:
    thresholds: Thresholds
    confidence: float  # one-sided: how sure a PASS or a DEGRADED must be
    resamples: int
    seed: int

    @property
    def level(self) -> float:
        """The two-sided level of an interval whose each bound holds at `confidence`."""
        return 2.0 * self.confidence - 1.0

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence


def gate_settings(
    thresholds: Thresholds | Settings | None,
    probe: str,
    modality: str,
    *,
    confidence: float | None = None,
    resamples: int | None = None,
    seed: int | None = None,
) -> GateSettings:
    """thresholds: a Thresholds, or the run's Settings (its thresholds for this probe and modality, confidence,
    resamples and seed, unless given here), or None for the defaults."""
    if isinstance(thresholds, Settings):
        settings = thresholds
        thresholds = settings.thresholds_for(probe, modality)
        confidence = settings.confidence if confidence is None else confidence
        resamples = settings.bootstrap_resamples if resamples is None else resamples
        seed = settings.seed if seed is None else seed
    confidence = 0.95 if confidence is None else confidence
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    return GateSettings(
        thresholds=thresholds or Thresholds(),
        confidence=confidence,
        resamples=DEFAULT_RESAMPLES if resamples is None else resamples,
        seed=0 if seed is None else seed,
    )
