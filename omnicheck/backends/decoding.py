"""How the transformers backend decodes: a static KV cache with a compiled decode step where the family allows it,
batches as large as the free GPU memory holds, longest samples first, halved and retried on out-of-memory.

On a CPU nothing here changes what runs: decoding stays eager and the batch is the one asked for; only the order in
which samples are batched (longest first, results given back in the caller's order) is shared by both.
torch is imported inside functions: the plugin imports the backends package without it.
"""

from __future__ import annotations

import gc
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from omnicheck.errors import BackendError, OmnicheckError, UsageError, first_line
from omnicheck.types import Sample

T = TypeVar("T")
R = TypeVar("R")

COMPILED = "static-cache-compiled"  # StaticCache; transformers compiles the decode step (torch.compile, CUDA graphs)
STATIC = "static-cache"  # StaticCache without compilation (what COMPILED becomes off CUDA): tests its outputs on a CPU
EAGER = "eager"  # transformers' default: DynamicCache, the Python forward every step
DECODING_ENV = "OMNICHECK_DECODING"  # auto (default) | eager | static
MAX_BATCH = 256  # a batch from memory never exceeds this: see BENCHMARKS.md for the batch scaling measured
HEADROOM = 0.8  # share of the free memory a batch may plan on: the compiled step's graph pool and allocator slack
SIZING_ROWS = 8  # rows of the sizing pass: enough that per-row memory dominates fixed costs
# A call with fewer decode steps runs eager. Measured at the 12B shape on an H200 (BENCHMARKS.md): the first
# compiled call costs 126 s and saves 34 ms a step at batch 32 (59 -> 25 ms), so compiling repays ~3700 steps.
MIN_COMPILED_STEPS = 4000


@dataclass
class DecodingPlan:
    """Which decoding a backend uses, and why (recorded in the run)."""

    mode: str
    reason: str
    compiler: str = "inductor"  # transformers' default compile (inductor, CUDA graphs); "cudagraphs": graphs only
    min_steps: int = MIN_COMPILED_STEPS  # a call with fewer decode steps runs eager: compiling would not pay

    def generate_kwargs(self, prompt_tokens: int, max_new_tokens: int) -> dict[str, Any]:
        if self.mode == EAGER:
            return {}
        # one cache length per bucket: every new length is a new shape, i.e. a recompile of the decode step
        kwargs: dict[str, Any] = {"cache_implementation": "static",
                                  "max_cache_len": _bucket(prompt_tokens + max_new_tokens)}
        if self.mode == COMPILED and self.compiler == "cudagraphs":
            from transformers import CompileConfig

            kwargs["compile_config"] = CompileConfig(backend="cudagraphs", mode=None)
        return kwargs

    def worth_compiling(self, steps: int) -> bool:
        return self.mode != COMPILED or steps >= self.min_steps

    def fall_back(self, err: BaseException) -> None:
        self.mode = EAGER
        self.reason = f"compiled decoding failed ({type(err).__name__}: {first_line(err)}); eager from then on"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "reason": self.reason}
        if self.mode == COMPILED:
            out.update(compiler=self.compiler, min_steps=self.min_steps)
        return out


def plan_decoding(generator: Any, device: str, speech_seq2seq: bool = False) -> DecodingPlan:
    """Static cache + compiled decode step on a CUDA GPU for a family whose forward compiles as one graph;
    eager otherwise, with the reason. OMNICHECK_DECODING=eager turns it off; =static forces a static cache anywhere
    (on a CPU transformers does not compile it: the cache alone, to check outputs against eager)."""
    choice = os.environ.get(DECODING_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "eager", "static"):
        raise UsageError(f"{DECODING_ENV}={choice!r} is not a decoding choice", f"set {DECODING_ENV} to auto, eager or static")
    if choice == "eager":
        return DecodingPlan(EAGER, f"{DECODING_ENV}=eager")
    on_cuda = str(device).startswith("cuda")
    if choice == "auto" and not on_cuda:
        return DecodingPlan(EAGER, "not on a CUDA GPU: transformers compiles decoding only there")
    if speech_seq2seq:
        return DecodingPlan(EAGER, "encoder-decoder speech model: its long-form generate keeps its own cache")
    cls = type(generator)
    if not getattr(cls, "_can_compile_fullgraph", False):
        return DecodingPlan(EAGER, f"{cls.__name__} does not declare a compilable forward (_can_compile_fullgraph)")
    quantizer = getattr(generator, "hf_quantizer", None)
    if quantizer is not None and not getattr(quantizer, "is_compileable", False):
        return DecodingPlan(EAGER, f"{type(quantizer).__name__} weights cannot be compiled by transformers")
    if on_cuda:
        return DecodingPlan(COMPILED, "static KV cache; transformers compiles the decode step (torch.compile, CUDA graphs)")
    return DecodingPlan(STATIC, f"{DECODING_ENV}=static: static KV cache, not compiled off CUDA")


def _bucket(tokens: int, step: int = 256) -> int:
    return step * math.ceil(tokens / step)


# --- order: longest first, results back in the caller's order ---


def length_key(sample: Sample) -> tuple[tuple[str, ...], int, int]:
    """Which media, how many bytes of it, how much text: samples with close keys pad little when batched together.
    File sizes stand in for duration and pixels (one codec per probe's set); nothing is decoded here."""
    parts = [p for m in sample.messages for p in m.media()]
    media_bytes = 0
    for part in parts:
        try:
            media_bytes += Path(part.path).stat().st_size
        except OSError:
            pass  # the loader reports a missing file in one line
    return tuple(sorted(p.kind for p in parts)), media_bytes, sum(len(m.text) for m in sample.messages)


def longest_first(items: Sequence[T], key: Callable[[T], Any]) -> list[int]:
    """Indices of items, longest first; ties keep the caller's order (a stable sort)."""
    return sorted(range(len(items)), key=lambda i: key(items[i]), reverse=True)


# --- memory ---


@dataclass
class BatchRecord:
    """How one generate call was batched (recorded in the run, per probe)."""

    size: int  # the batch used at the end (after any halving)
    source: str  # "given" (--omnicheck-batch-size or the probe's), "memory" (sized on the GPU), "reference"
    rows: int = 0  # samples generated
    free_gib: float | None = None  # free GPU memory when the batch was sized
    per_row_mib: float | None = None  # measured by the sizing pass
    decoding: str = ""  # how this call decoded (the plan's mode, or eager for a call too short to compile)
    padded_rows: int = 0  # rows repeated to keep one compiled shape (compiled decoding only)
    halvings: list[str] = field(default_factory=list)  # each out-of-memory retry, in words

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in (None, [], 0, "") or k in ("size", "source", "rows")}


def is_out_of_memory(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def release_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def free_bytes() -> int:
    """Memory a new batch can take: free on the device plus what torch holds but does not use."""
    import torch

    free, _ = torch.cuda.mem_get_info()
    return int(free + torch.cuda.memory_reserved() - torch.cuda.memory_allocated())


def peak_bytes_of(run: Callable[[], Any]) -> int:
    """GPU memory a call takes above what was allocated before it (its peak)."""
    import torch

    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    return max(0, torch.cuda.max_memory_allocated() - base)


def batch_for_memory(free: int, per_row: float, rows: int, cap: int = MAX_BATCH) -> int:
    """The largest batch whose rows fit HEADROOM of the free memory, at most `cap` and no more than needed for
    `rows` samples; a power of two, so that few shapes are ever compiled."""
    fits = int(free * HEADROOM // max(per_row, 1.0))
    size = max(1, min(fits, cap))
    size = 1 << (size.bit_length() - 1)  # round down to a power of two
    return min(size, 1 << max(0, rows - 1).bit_length())  # no more than the power of two that covers the rows


def memory_detail(err: BaseException) -> str:
    """'tried to allocate 2.00 GiB; 1.20 GiB free of 139.81 GiB' from torch's message, or its first line."""
    text = str(err)
    asked = re.search(r"[Tt]ried to allocate ([\d.]+ [KMGT]iB)", text)
    free = re.search(r"of which ([\d.]+ [KMGT]iB) is free", text)
    total = re.search(r"total capacity of ([\d.]+ [KMGT]iB)", text)
    if asked:
        return f"needed {asked.group(1)} more" + (f", {free.group(1)} free" if free else "") + (
            f" of {total.group(1)}" if total else "")
    return first_line(err)


# --- the loop every generate call goes through ---


def run_batched(
    items: Sequence[T],
    run: Callable[[list[T]], list[R]],
    size: int,
    record: BatchRecord,
    *,
    key: Callable[[T], Any],
    label: str,
    pad: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[R]:
    """run() over items in batches of `size`, longest first, results in the caller's order.

    Out of memory: free it, halve the batch, retry the same samples (each retry recorded); at batch 1 it is one
    BackendError line. pad: repeat a short batch's last sample up to `size` (no new shape to compile)."""
    order = longest_first(items, key)
    out: list[R | None] = [None] * len(items)
    done = 0
    while done < len(order):
        chunk = order[done : done + size]
        batch = [items[i] for i in chunk]
        extra = size - len(batch) if pad else 0
        failure = None
        try:
            results = run(batch + [batch[-1]] * extra)[: len(batch)]
        except Exception as err:
            if not is_out_of_memory(err):
                raise
            failure = memory_detail(err)
        if failure is not None:  # outside the except block: the traceback no longer pins the batch's tensors
            release_memory()
            if size == 1:
                raise BackendError(
                    f"{label} ran out of GPU memory at batch size 1 ({failure})",
                    "free the GPU of other processes, lower --omnicheck-max-new-tokens, or use a GPU with more "
                    "memory; the other variants and probes still run",
                )
            record.halvings.append(f"batch {size} out of memory ({failure}): retried at {size // 2}")
            size = record.size = size // 2
            continue
        for index, result in zip(chunk, results):
            out[index] = result
        record.padded_rows += extra
        done += len(chunk)
        if progress is not None:
            progress(done, len(order))
    record.rows = len(items)
    return out  # type: ignore[return-value]  # every index was filled


# --- one backend's decoding: the plan, the batch, the record of both ---


class Decoder:
    """The decoding of one loaded model: its plan, and how each call was batched (`calls`, for the run)."""

    def __init__(self, generator: Any, device: str, label: str, speech_seq2seq: bool = False):
        self.plan = plan_decoding(generator, device, speech_seq2seq)
        self.sizable = str(device).startswith("cuda") and not speech_seq2seq
        self.label = label
        self.calls: list[dict[str, Any]] = []  # how each generate / lm-eval call was batched, until taken
        self._reserve = 0  # during a sizing pass: new tokens the cache must hold although one is generated
        self._eager_call = False  # this call is too short to repay compiling

    def generate(self, model_generate: Callable[..., Any], inputs: Any, kwargs: dict[str, Any], new_tokens: int) -> Any:
        """One batch through a generate() under the plan; a compiled step that fails once means eager from then on."""
        if self._reserve:  # a static cache at full length measures the memory a whole generation needs
            length = _bucket(int(inputs["input_ids"].shape[1]) + self._reserve)
            plan = {"cache_implementation": "static", "max_cache_len": length, "disable_compile": True}
        elif self.plan.mode != EAGER and not self._eager_call:
            plan = self.plan.generate_kwargs(int(inputs["input_ids"].shape[1]), new_tokens)
        else:
            plan = {}
        if not plan:
            return model_generate(**inputs, **kwargs)
        try:
            return model_generate(**inputs, **kwargs, **plan)
        except Exception as err:
            if is_out_of_memory(err) or self._reserve:
                raise
            self.plan.fall_back(err)
        return model_generate(**inputs, **kwargs)

    def batch_size(self, settings: Any, rows: int, sizing: Callable[[int], Any]) -> BatchRecord:
        """The batch for `rows` samples: the one asked for, or on a GPU the largest the free memory holds, measured
        by sizing(n): one token for the n longest samples with a cache sized for the whole generation."""
        if not (settings.batch_from_memory and self.sizable and rows > 1):
            return BatchRecord(size=max(1, settings.batch_size), source="given")
        probe_rows = min(SIZING_ROWS, rows)
        self._reserve = settings.max_new_tokens
        failure = None
        try:
            peak = peak_bytes_of(lambda: sizing(probe_rows))
        except OmnicheckError:
            raise
        except Exception as err:
            failure = (is_out_of_memory(err), memory_detail(err) if is_out_of_memory(err) else first_line(err))
        finally:
            self._reserve = 0
        release_memory()
        if failure is not None:
            oom, detail = failure
            if oom:
                return BatchRecord(size=max(1, probe_rows // 2), source="memory",
                                   halvings=[f"sizing pass at {probe_rows} rows out of memory ({detail})"])
            return BatchRecord(size=max(1, settings.batch_size), source="given",
                               halvings=[f"could not size from memory ({detail})"])
        free = free_bytes()
        per_row = peak / probe_rows
        return BatchRecord(size=batch_for_memory(free, per_row, rows), source="memory",
                           free_gib=round(free / 2**30, 2), per_row_mib=round(per_row / 2**20, 1))

    def run(self, items: Sequence[T], run: Callable[[list[T]], list[R]], record: BatchRecord,
            key: Callable[[T], Any], new_tokens: int, progress: Callable[[int, int], None] | None = None) -> list[R]:
        """run() over items in the record's batches, longest first, under the plan; recorded in `calls`."""
        compiled = self.begin_call(record, len(items), new_tokens)
        try:
            return run_batched(items, run, record.size, record, key=key, label=self.label, pad=compiled,
                               progress=progress)
        finally:
            self._eager_call = False
            self.calls.append(record.to_json())

    def begin_call(self, record: BatchRecord, rows: int, new_tokens: int) -> bool:
        """Whether this call decodes compiled: a call with fewer decode steps than the plan's minimum runs eager."""
        steps = math.ceil(rows / max(record.size, 1)) * max(new_tokens, 1)
        self._eager_call = not self.plan.worth_compiling(steps)
        record.decoding = (f"eager: {steps} decode steps, fewer than the {self.plan.min_steps} that repay compiling"
                           if self._eager_call else self.plan.mode)
        return self.plan.mode == COMPILED and not self._eager_call

    def take_calls(self) -> dict[str, Any]:
        """The plan and the calls since the last take: what one probe's run used."""
        calls, self.calls = self.calls, []
        return {**self.plan.to_json(), "calls": calls}


def out_of_memory_at_load(label: str, folder: Path, err: BaseException) -> OmnicheckError:
    from omnicheck.errors import ModelLoadError

    weights = sum(f.stat().st_size for f in Path(folder).glob("*.safetensors")) / 2**30
    size = f"its weights take {weights:.1f} GiB on disk; " if weights else ""
    return ModelLoadError(
        f"{label} does not fit in GPU memory ({size}{memory_detail(err)})",
        "free the GPU of other processes or use one with more memory; the other variants still run",
    )


# --- lm-eval's HFLM over the same model, batched the same way ---


def decoding_lm(generator: Any, tokenizer: Any, device: str, decoder: Decoder) -> Any:
    """lm-eval's HFLM whose generate_until takes the probe's batch (set `omnicheck_settings` before each task):
    sized from memory on the longest prompt where asked, halved on out-of-memory, decoded under the plan."""
    import torch
    from lm_eval.models.huggingface import HFLM

    from omnicheck.types import GenerationSettings

    class DecodingHFLM(HFLM):
        omnicheck_settings = GenerationSettings()

        def generate_until(self, requests, disable_tqdm: bool = False):
            settings = self.omnicheck_settings
            contexts = [self.tok_encode(request.args[0]) for request in requests] if requests else [[]]
            longest = torch.tensor([max(contexts, key=len)], device=self.device)
            new_tokens = int((requests[0].args[1] or {}).get("max_gen_toks", self.max_gen_toks)) if requests else 1
            sizing_settings = GenerationSettings(max_new_tokens=new_tokens, batch_size=settings.batch_size,
                                                 batch_from_memory=settings.batch_from_memory)
            record = decoder.batch_size(sizing_settings, len(requests), lambda n: self._sizing_pass(longest, n))
            self.batch_size_per_gpu = record.size
            self._omnicheck_record = record
            self._omnicheck_pad = decoder.begin_call(record, len(requests), new_tokens)
            try:
                return super().generate_until(requests, disable_tqdm)
            finally:
                decoder._eager_call = False
                record.rows = len(requests)
                decoder.calls.append(record.to_json())

        def _sizing_pass(self, longest, rows: int) -> None:
            ids = longest.repeat(rows, 1)
            decoder.generate(self.model.generate, {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                             {"max_new_tokens": 1, "pad_token_id": self.tokenizer.pad_token_id}, 1)

        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            mask = generation_kwargs.pop("attention_mask", None)
            record = getattr(self, "_omnicheck_record", None) or BatchRecord(size=len(context), source="given")
            rows = list(range(len(context)))

            def run(batch: list[int]) -> list[Any]:
                index = torch.tensor(batch, device=context.device)
                inputs = {"input_ids": context[index]}
                if mask is not None:
                    inputs["attention_mask"] = mask[index]
                out = decoder.generate(lambda **a: HFLM._model_generate(self, a.pop("input_ids"), max_length, stop, **a),
                                       inputs, dict(generation_kwargs), max_length - context.shape[1])
                return list(out)

            # lm-eval cut this chunk at the batch it was given; after a halving the record's smaller batch splits it
            pieces = run_batched(rows, run, record.size, record, key=lambda i: -i, label=decoder.label,
                                 pad=getattr(self, "_omnicheck_pad", False))
            width = max(len(p) for p in pieces)
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
            return torch.stack([torch.nn.functional.pad(p, (0, width - len(p)), value=pad) for p in pieces])

    return DecodingHFLM(pretrained=generator, tokenizer=tokenizer, batch_size=1, device=device)
