"""What a probe is: its samples, how it asks, how it scores. One module per probe beside this one."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from omnicheck.probes.common import select
from omnicheck.types import GenerationSettings, Message, Metric, Modality, ProbeResult, Sample, SampleResult

if TYPE_CHECKING:
    from omnicheck.backends.base import Backend, Generation
    from omnicheck.probes.readers import MediaSet, Record

class Probe:
    """A generative probe: build a message per sample, generate, score each output.

    Subclasses set the class attributes and implement load_samples and score;
    probes that delegate generation (lm-eval) override run.
    """

    name: ClassVar[str]
    modality: ClassVar[Modality]
    version: ClassVar[str] = "1"
    metrics: ClassVar[list[Metric]]
    smoke_size: ClassVar[int] = 4
    settings: ClassVar[GenerationSettings] = GenerationSettings()
    renders_prompts: ClassVar[bool] = False  # a harness (lm-eval) renders its prompts; see rendered_prompts

    def __init__(self, data: Path | None = None):
        self.data = data  # a user-supplied data file or folder replacing the bundled fixtures
        self.skipped: list[dict[str, str]] = []  # samples left out by load_samples: {id, reason} (unreadable media)

    def load_samples(self, tier: str) -> list[Sample]:
        raise NotImplementedError

    def score(self, sample: Sample, output: str) -> dict[str, float]:
        raise NotImplementedError

    def select_media(self, media: "MediaSet", tier: str) -> list["Record"]:
        """The tier's records of a media probe's set. From user data only those whose media could be read, the rest
        recorded in self.skipped (bundled media are checked against the manifest instead)."""
        chosen = select(media.records, tier, self.smoke_size)
        if self.data:
            chosen = media.files(chosen)
            self.skipped = list(media.skipped)
        return chosen

    def extra(self, sample: Sample, output: str) -> dict[str, Any]:
        """Per-sample detail kept for the report (e.g. a word alignment)."""
        return {}

    def counterfactual(self, sample: Sample) -> Sample | None:
        """The same question with the media made uninformative (blank, silent, frozen), or None."""
        return None

    def rendered_prompts(self) -> dict[str, str]:
        """The prompts a harness rendered in this probe's last run, by sample id (lm-eval text probes); empty when
        the backend renders each sample's messages itself, as it does for generation."""
        return {}

    def fingerprint(self) -> dict[str, Any]:
        return {"probe": self.name, "version": self.version, "data": str(self.data) if self.data else "bundled"}

    def run(self, backend: "Backend", samples: Sequence[Sample], settings: GenerationSettings) -> ProbeResult:
        start = time.perf_counter()
        generations = backend.generate(samples, settings)
        results = [self._result(s, g) for s, g in zip(samples, generations)]
        counterfactual: list[SampleResult] = []
        info: dict[str, Any] = {}
        blanks = [c for c in (self.counterfactual(s) for s in samples) if c is not None] if settings.counterfactual else []
        if blanks:  # only the opening of the blank-media answer: enough to tell whether the answer changed
            budget = settings.counterfactual_budget()
            blank_start = time.perf_counter()
            blank_generations = backend.generate(blanks, replace(settings, max_new_tokens=budget))
            counterfactual = [self._result(s, g) for s, g in zip(blanks, blank_generations)]
            for row, generation in zip(counterfactual, blank_generations):
                if budget < settings.max_new_tokens and generation.tokens >= budget:
                    row.extra["cut_at_tokens"] = budget  # compared with the same opening of the answer
            info["counterfactual"] = {"max_new_tokens": budget, "seconds": round(time.perf_counter() - blank_start, 3),
                                      "generated_tokens": sum(g.tokens for g in blank_generations)}
        return ProbeResult(
            variant=backend.name,
            probe=self.name,
            modality=self.modality.value,
            status="ok",
            metrics=list(self.metrics),
            samples=results,
            aggregates=aggregate(results, self.metrics),
            seconds=time.perf_counter() - start,
            generated_tokens=sum(g.tokens for g in generations),
            counterfactual=counterfactual,
            info=info,
        )

    def _result(self, sample: Sample, generation: "Generation") -> SampleResult:
        prompt_message = sample.messages[-1]
        extra = dict(self.extra(sample, generation.text))
        extra.update(generation.extra)
        return SampleResult(
            sample_id=sample.id,
            prompt=prompt_message.text,
            media=[str(p.path) for m in sample.messages for p in m.media()],
            output=generation.text,
            target=sample.target,
            scores=self.score(sample, generation.text),
            extra=extra,
        )


def aggregate(results: Sequence[SampleResult], metrics: Sequence[Metric]) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in metrics:
        values = [r.scores[metric.name] for r in results if metric.name in r.scores]
        if values:
            out[metric.name] = sum(values) / len(values)
    out["n"] = float(len(results))
    return out


def user_message(*parts: Any) -> tuple[Message, ...]:
    return (Message.user(*parts),)
