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
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from omnicheck.compare.divergence import SampleDivergence, sample_divergence
from omnicheck.tokens import Continuation, NotScored, TokenScores
from omnicheck.types import ProbeResult, Sample

if TYPE_CHECKING:
    from omnicheck.backends.base import Backend
    from omnicheck.config import Settings
    from omnicheck.store import ReferenceStore

SCHEMA = 1  # of the cached reference side; another number is "from another omnicheck version"
DEFAULT_TOP_K = 20
AA_BATCH_SIZE = 1  # the A/A pass runs unbatched: no padding at all, against the batched first pass
AA_SAMPLES = 8  # the floor is a noise level, an order of magnitude: a few samples measure it; all would double
#   the reference's scoring time on a large run


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


def reference_pass(backend: "Backend", samples: Sequence[Sample], result: ProbeResult, prompts: Mapping[str, str | None],
                   top_k: int = DEFAULT_TOP_K, batch_size: int = 8) -> ReferenceTokens:
    """The reference's top-k along each of its answers, and the A/A floor from a second, unbatched pass over the
    first AA_SAMPLES of them."""
    tokens = ReferenceTokens(top_k=top_k, prompts=dict(prompts))
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
    aa_ids, again = aa_ids[:AA_SAMPLES], again[:AA_SAMPLES]
    for sid, scored in zip(aa_ids, backend.score_continuations(again, top_k=top_k, batch_size=aa_batch)):
        if not isinstance(scored, NotScored):
            tokens.floor[sid] = sample_divergence(sid, tokens.scores[sid], scored)
    if tokens.scores and not tokens.floor:
        tokens.reason = "the A/A pass scored no sample, so there is no noise floor to read divergence against"
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


def variant_pass(backend: "Backend", samples: Sequence[Sample], reference_result: ProbeResult, reference: ReferenceTokens,
                 prompts: Mapping[str, str | None], batch_size: int = 8) -> VariantDivergence:
    """The variant's distributions along the reference's answers, against the reference's top-k."""
    out = VariantDivergence()
    if reference.reason:
        out.reason = f"the reference's side is not available: {reference.reason}"
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


# --- the run's passes, as the session asks for them ---


class DivergencePasses:
    """Per probe, the reference's side (from beside the cache, else computed once); per variant result, its pass.
    Every failure becomes "not available" with one progress line; nothing here can cost a result."""

    def __init__(self, settings: "Settings", store: "ReferenceStore", progress: Callable[[str], None]):
        self.enabled = settings.divergence
        self.top_k = settings.divergence_top_k
        self.store = store
        self.progress = progress
        self.tokens: dict[str, ReferenceTokens] = {}  # probe -> the reference's side

    def reference(self, result: ProbeResult, key: str | None, probe: Any, samples: Sequence[Sample],
                  load: Callable[[], "Backend"], batch_size: int, refresh: bool) -> None:
        """result: the reference's, fresh or cached; key: its cache key (None: not cached); load: its backend."""
        if not self.enabled or result.status != "ok":
            return
        where = f"{result.variant} {result.probe}"
        tokens = self._cached(result, key, where) if key is not None and not refresh else None
        if tokens is None and result.cached and probe.renders_prompts:
            tokens = ReferenceTokens(top_k=self.top_k, reason=(
                "the cached reference predates token scores and lm-eval's prompts are not kept with it -- fix: "
                "--omnicheck-refresh-reference once"))
        elif tokens is None:
            try:
                tokens = reference_pass(load(), samples, result, probe.rendered_prompts(), self.top_k, batch_size)
            except Exception as err:  # a scoring failure must not cost the results already made
                tokens = ReferenceTokens(top_k=self.top_k, reason=_one_line(err))
            if not tokens.reason and key is not None:
                self.store.put_tokens(result.probe, key, SCHEMA, tokens.to_json())
        if tokens.reason:
            self.progress(f"{where}: divergence not available: {tokens.reason}")
        self.tokens[result.probe] = tokens
        attach_reference(result, tokens, cached=result.cached)

    def _cached(self, result: ProbeResult, key: str, where: str) -> ReferenceTokens | None:
        data = self.store.get_tokens(result.probe, key, SCHEMA)
        if data is not None:
            try:
                return ReferenceTokens.from_json(data)
            except (KeyError, ValueError, TypeError) as err:
                self.progress(f"{where}: cached token scores unreadable ({err}): scoring again")
        elif result.cached:
            older = self.store.other_token_schemas(result.probe, key, SCHEMA)
            made_by = f"token scores of schema {older} only" if older else "no token scores"
            self.progress(f"{where}: the cached reference has {made_by} (cached by another omnicheck version): "
                          "scoring its cached answers once with the reference model; its answers are kept")
        return None

    def variant(self, backend: "Backend", result: ProbeResult, reference: ProbeResult | None, probe: Any,
                samples: Sequence[Sample], batch_size: int) -> None:
        if not self.enabled or result.status != "ok":
            return
        tokens = self.tokens.get(result.probe)
        if tokens is None or reference is None:
            not_available(result, "the reference's token scores are not there (the reference has not run)")
            return
        try:
            outcome = variant_pass(backend, samples, reference, tokens, probe.rendered_prompts(), batch_size)
        except Exception as err:  # a scoring failure must not cost the variant's results
            outcome = VariantDivergence(reason=_one_line(err))
        if outcome.reason and not tokens.reason:
            self.progress(f"{result.variant} {result.probe}: divergence not available: {outcome.reason}")
        attach_variant(result, outcome, tokens.top_k)


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}".splitlines()[0]
