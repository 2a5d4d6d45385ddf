"""The data that flows through omnicheck, as frozen dataclasses.

options -> Variant -> (Probe builds Sample with a neutral Message) -> backend output ->
SampleResult / ProbeResult -> Comparison -> Verdict -> report.
Nothing here imports anything heavy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Union


class Modality(str, enum.Enum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"


MODALITIES = tuple(m.value for m in Modality)


# --- the neutral chat message (converted to HF processor input or OpenAI content parts) ---


@dataclass(frozen=True)
class TextPart:
    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class ImagePart:
    path: Path
    kind: Literal["image"] = "image"


@dataclass(frozen=True)
class AudioPart:
    path: Path
    kind: Literal["audio"] = "audio"


@dataclass(frozen=True)
class VideoPart:
    path: Path
    num_frames: int = 8
    kind: Literal["video"] = "video"


Part = Union[TextPart, ImagePart, AudioPart, VideoPart]


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    parts: tuple[Part, ...]

    @classmethod
    def user(cls, *parts: Part | str) -> "Message":
        return cls("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    def media(self) -> list[Part]:
        return [p for p in self.parts if not isinstance(p, TextPart)]


# --- what a probe asks a model ---


COUNTERFACTUAL_TOKENS = 16  # how much of the blank-media answer is generated: enough to see whether it changed


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 64
    batch_size: int = 8
    do_sample: bool = False  # greedy: outputs are comparable run to run
    counterfactual: bool = True  # media probes also generate on blanked media
    counterfactual_tokens: int = COUNTERFACTUAL_TOKENS  # the opening of the blank-media answer; 0: all of it
    batch_from_memory: bool = False  # on a GPU: the largest batch the free memory holds instead of batch_size

    def key(self) -> dict[str, Any]:
        key = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample, "counterfactual": self.counterfactual}
        if self.counterfactual and self.counterfactual_budget() < self.max_new_tokens:
            key["counterfactual_tokens"] = self.counterfactual_budget()
        return key

    def counterfactual_budget(self) -> int:
        """New tokens for the blank-media answer: its opening tells whether the answer changed."""
        if self.counterfactual_tokens <= 0:
            return self.max_new_tokens
        return min(self.max_new_tokens, self.counterfactual_tokens)


@dataclass(frozen=True)
class Sample:
    id: str
    messages: tuple[Message, ...]
    target: Any = None  # a transcript, reference captions, a numeric answer...
    meta: dict[str, Any] = field(default_factory=dict)


# --- what came back ---


@dataclass
class SampleResult:
    sample_id: str
    prompt: str
    media: list[str]
    output: str
    target: Any
    scores: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.sample_id,
            "prompt": self.prompt,
            "media": self.media,
            "output": self.output,
            "target": self.target,
            "scores": self.scores,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SampleResult":
        return cls(
            sample_id=data["id"],
            prompt=data["prompt"],
            media=list(data["media"]),
            output=data["output"],
            target=data["target"],
            scores=dict(data["scores"]),
            extra=dict(data.get("extra", {})),
        )


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    kind: Literal["binary", "continuous"]  # binary: 0/1 per sample (McNemar); continuous: bootstrap
    chance: float | None = None  # what an answer carrying no information scores (an empty one); None: unknown


ProbeStatus = Literal["ok", "skipped", "error"]


@dataclass
class ProbeResult:
    variant: str
    probe: str
    modality: str
    status: ProbeStatus
    metrics: list[Metric]
    samples: list[SampleResult] = field(default_factory=list)
    aggregates: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # why skipped / what went wrong (one line: cause and fix)
    seconds: float = 0.0
    generated_tokens: int = 0
    cached: bool = False
    counterfactual: list[SampleResult] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def primary(self) -> Metric:
        return self.metrics[0]

    def column(self, metric: str) -> dict[str, float]:
        return {s.sample_id: s.scores[metric] for s in self.samples if metric in s.scores}

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "probe": self.probe,
            "modality": self.modality,
            "status": self.status,
            "reason": self.reason,
            "metrics": [vars(m) for m in self.metrics],
            "aggregates": self.aggregates,
            "seconds": self.seconds,
            "generated_tokens": self.generated_tokens,
            "cached": self.cached,
            "info": self.info,
            "samples": [s.to_json() for s in self.samples],
            "counterfactual": [s.to_json() for s in self.counterfactual],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ProbeResult":
        return cls(
            variant=data["variant"],
            probe=data["probe"],
            modality=data["modality"],
            status=data["status"],
            reason=data.get("reason", ""),
            metrics=[Metric(**m) for m in data["metrics"]],
            aggregates=dict(data.get("aggregates", {})),
            seconds=data.get("seconds", 0.0),
            generated_tokens=data.get("generated_tokens", 0),
            cached=data.get("cached", False),
            info=dict(data.get("info", {})),
            samples=[SampleResult.from_json(s) for s in data.get("samples", [])],
            counterfactual=[SampleResult.from_json(s) for s in data.get("counterfactual", [])],
        )


class Status(str, enum.Enum):
    """A verdict's status. Members are in the project's one severity order, least severe first: a matrix cell
    shows the worst of its probes' statuses. In JSON a status is its plain name."""

    REFERENCE = "REFERENCE"  # the baseline itself
    PASS = "PASS"
    SKIPPED = "SKIPPED"  # the probe does not apply (the model takes no such input)
    INCONCLUSIVE = "INCONCLUSIVE"  # too few samples, or the interval straddles the threshold
    DEGRADED = "DEGRADED"
    ERROR = "ERROR"  # the probe or the load failed: nothing was judged
    BROKEN = "BROKEN"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {status: rank for rank, status in enumerate(Status)}


class DecidedBy(str, enum.Enum):
    """Which evidence decided a verdict (Verdict.details["decided_by"]); the terminal matrix marks each cell."""

    TASK_SCORES = "task scores"
    DIVERGENCE = "divergence"  # teacher-forced divergence, where the task scores could not decide
    COLLAPSE = "collapse"
    DIVERGENCE_AND_COLLAPSE = "divergence and collapse"
    OUTPUT_AGREEMENT = "output agreement"
    UNDECIDED = "undecided"

    def __str__(self) -> str:
        return self.value

    @property
    def mark(self) -> str:
        return {"task scores": "s", "divergence": "d", "collapse": "c", "divergence and collapse": "dc",
                "output agreement": "a", "undecided": ""}[self.value]


def worst(statuses: Iterable[Status | str | None]) -> Status | None:
    """The most severe of the statuses (names or members; None is skipped), or None when there are none."""
    ranked = [Status(s) for s in statuses if s is not None]
    return max(ranked, key=_SEVERITY.__getitem__) if ranked else None


@dataclass
class Verdict:
    variant: str
    probe: str
    modality: str
    status: Status
    message: str  # the whole story in words: metric, reference, variant, difference, interval, threshold
    metric: str = ""
    reference_value: float | None = None
    variant_value: float | None = None
    difference: float | None = None
    interval: tuple[float, float] | None = None
    threshold: float | None = None
    retention: float | None = None
    n: int = 0
    findings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["status"] = str(self.status)
        data["interval"] = list(self.interval) if self.interval else None
        return data
