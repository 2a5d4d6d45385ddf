"""The divergence passes of a run: the reference's top-k along its own answers (computed once, kept beside the
reference cache), the A/A noise floor, and each variant scored on the reference's answers.

A/A: the reference scores its own answers a second time at another batch size (other padding, other kernel
shapes), gathering the first pass's top-k. Whatever divergence that shows is what this model on this machine
produces with no change to its weights: the floor that variant divergences are read against.

Everything that cannot be scored (a served model without prompt log-probabilities, Whisper long-form, a tokenizer
that splits the answer differently, a cached reference from an older omnicheck) is recorded as "not available"
with one line saying why; the run goes on and the task scores judge as before.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from omnicheck.compare.divergence import SampleDivergence, sample_divergence
from omnicheck.tokens import Continuation, NotScored, TokenScores
from omnicheck.types import ProbeResult, Sample

SCHEMA = 1  # of the cached reference side; another number is "from another omnicheck version"
DEFAULT_TOP_K = 20
AA_BATCH_SIZE = 1  # the A/A pass runs unbatched: no padding at all, against the batched first pass


@dataclass
class ReferenceTokens:
    """The reference's side for one probe."""

    top_k: int
    scores: dict[str, TokenScores] = field(default_factory=dict)  # sample id -> its top-k along its answer
    prompts: dict[str, str | None] = field(default_factory=dict)  # sample id -> the prompt a harness rendered
    floor: dict[str, SampleDivergence] = field(default_factory=dict)  # sample id -> the A/A divergence
    unavailable: dict[str, str] = field(default_factory=dict)  # sample id -> why not scored
    reason: str = ""  # why nothing could be scored, when nothing could
    seconds: float = 0.0  # both passes
    batch_sizes: tuple[int, int] = (0, 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "top_k": self.top_k, "reason": self.reason, "seconds": self.seconds,
            "batch_sizes": list(self.batch_sizes), "unavailable": self.unavailable,
            "prompts": self.prompts,
            "scores": {sid: s.to_json() for sid, s in self.scores.items()},
            "floor": {sid: f.to_json() for sid, f in self.floor.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ReferenceTokens":
        if data.get("schema") != SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r}, this omnicheck reads {SCHEMA}")
        floor = {sid: _divergence_from_json(sid, f) for sid, f in data["floor"].items()}
        return cls(top_k=int(data["top_k"]), scores={sid: TokenScores.from_json(s) for sid, s in data["scores"].items()},
                   prompts=dict(data.get("prompts", {})), floor=floor, unavailable=dict(data.get("unavailable", {})),
                   reason=str(data.get("reason", "")), seconds=float(data.get("seconds", 0.0)),
                   batch_sizes=tuple(data.get("batch_sizes", (0, 0))))  # type: ignore[arg-type]


def _divergence_from_json(sample_id: str, data: Mapping[str, Any]) -> SampleDivergence:
    return SampleDivergence(sample_id=sample_id, kl=list(data["kl"]), agree=list(data["agree"]),
                            tokens=list(data["tokens"]), variant_top1=[], reference_top1=[],
                            variant_loglik=float(data["variant_loglik"]), reference_loglik=float(data["reference_loglik"]))


def prompt_digest(prompt: str | None) -> str | None:
    return None if prompt is None else hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def can_score(backend: Any) -> str | None:
    """None when the backend can teacher-force, else why not (one line)."""
    why = getattr(backend, "scoring_unavailable", None)
    if callable(why):
        return why()
    if not callable(getattr(backend, "score_continuations", None)):
        return f"the {type(backend).__name__} backend cannot score a given answer (no teacher forcing)"
    return None


def _continuations(samples: Sequence[Sample], result: ProbeResult, prompts: Mapping[str, str | None],
                   gather: Mapping[str, TokenScores] | None = None) -> tuple[list[str], list[Continuation]]:
    """(sample ids, requests): each sample's answer in `result`, optionally with the reference's tokens to gather."""
    answers = {s.sample_id: s.output for s in result.samples}
    ids, continuations = [], []
    for sample in samples:
        if sample.id not in answers or (gather is not None and sample.id not in gather):
            continue
        reference = gather[sample.id] if gather is not None else None
        ids.append(sample.id)
        continuations.append(Continuation(
            sample=sample, text=answers[sample.id], prompt=prompts.get(sample.id),
            token_ids=tuple(reference.token_ids) if reference is not None else None,
            gather=reference.top_ids if reference is not None else None,
        ))
    return ids, continuations


def reference_pass(backend: Any, samples: Sequence[Sample], result: ProbeResult, prompts: Mapping[str, str | None],
                   top_k: int = DEFAULT_TOP_K, batch_size: int = 8) -> ReferenceTokens:
    """The reference's top-k along each of its answers, and the A/A floor from a second, unbatched pass."""
    tokens = ReferenceTokens(top_k=top_k, prompts=dict(prompts))
    why = can_score(backend)
    if why:
        tokens.reason = why
        return tokens
    start = time.perf_counter()
    ids, continuations = _continuations(samples, result, prompts)
    first = backend.score_continuations(continuations, top_k=top_k, batch_size=batch_size)
    for sid, scored in zip(ids, first):
        if isinstance(scored, NotScored):
            tokens.unavailable[sid] = scored.reason
        else:
            tokens.scores[sid] = scored
    aa_batch = AA_BATCH_SIZE if batch_size != AA_BATCH_SIZE else 2
    aa_ids, again = _continuations(samples, result, prompts, gather=tokens.scores)
    for sid, scored in zip(aa_ids, backend.score_continuations(again, top_k=top_k, batch_size=aa_batch)):
        if isinstance(scored, NotScored):
            tokens.unavailable[sid] = scored.reason
            tokens.scores.pop(sid, None)
        else:
            tokens.floor[sid] = sample_divergence(sid, tokens.scores[sid], scored)
    tokens.seconds = time.perf_counter() - start
    tokens.batch_sizes = (batch_size, aa_batch)
    if not tokens.scores:
        tokens.reason = next(iter(tokens.unavailable.values()), "no sample could be scored")
    return tokens


@dataclass
class VariantDivergence:
    samples: dict[str, SampleDivergence] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0


def variant_pass(backend: Any, samples: Sequence[Sample], reference_result: ProbeResult, reference: ReferenceTokens,
                 prompts: Mapping[str, str | None], batch_size: int = 8) -> VariantDivergence:
    """The variant's distributions along the reference's answers, against the reference's top-k."""
    out = VariantDivergence()
    if reference.reason:
        out.reason = f"the reference's side is not available: {reference.reason}"
        return out
    why = can_score(backend)
    if why:
        out.reason = why
        return out
    asked = {}
    for sid in reference.scores:
        mine, theirs = prompt_digest(prompts.get(sid)), prompt_digest(reference.prompts.get(sid))
        if mine != theirs:
            out.unavailable[sid] = ("the variant was asked another prompt than the reference (its chat template "
                                    "differs), so the answers are not continuations of one prompt")
        else:
            asked[sid] = reference.prompts.get(sid)
    start = time.perf_counter()
    ids, continuations = _continuations(samples, reference_result, asked,
                                        gather={sid: s for sid, s in reference.scores.items() if sid not in out.unavailable})
    for sid, scored in zip(ids, backend.score_continuations(continuations, top_k=reference.top_k, batch_size=batch_size)):
        if isinstance(scored, NotScored):
            out.unavailable[sid] = scored.reason
        else:
            out.samples[sid] = sample_divergence(sid, reference.scores[sid], scored)
    out.seconds = time.perf_counter() - start
    if not out.samples:
        out.reason = next(iter(out.unavailable.values()), "no sample could be scored")
    return out


# --- what the run keeps: per-sample records on the results, one status line per result ---


def attach_reference(result: ProbeResult, tokens: ReferenceTokens, cached: bool) -> None:
    """The A/A floor onto the reference's samples; the pass's status into result.info."""
    for sample in result.samples:
        floor = tokens.floor.get(sample.sample_id)
        if floor is not None:
            sample.extra["divergence_floor"] = {"kl_mean": floor.kl_mean, "agreement": floor.agreement,
                                                "first_divergence": floor.first_divergence}
    result.info["divergence"] = {
        "status": "not available" if tokens.reason else "ok", "reason": tokens.reason, "top_k": tokens.top_k,
        "seconds": round(tokens.seconds, 3), "batch_sizes": list(tokens.batch_sizes), "from_cache": cached,
        "unavailable": tokens.unavailable,
    }


def attach_variant(result: ProbeResult, outcome: VariantDivergence, top_k: int) -> None:
    for sample in result.samples:
        divergence = outcome.samples.get(sample.sample_id)
        if divergence is not None:
            sample.extra["divergence"] = divergence.to_json()
    result.info["divergence"] = {
        "status": "not available" if outcome.reason else "ok", "reason": outcome.reason, "top_k": top_k,
        "seconds": round(outcome.seconds, 3), "unavailable": outcome.unavailable,
    }


def not_available(result: ProbeResult, reason: str) -> None:
    result.info["divergence"] = {"status": "not available", "reason": reason}
