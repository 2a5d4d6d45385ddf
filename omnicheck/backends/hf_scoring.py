"""Teacher forcing for the transformers backend: one forward pass over prompt + media + a given answer.

Rows are padded on the right: with causal attention the padding comes after every real token, so no real token sees
it and positions count from 0 as in generation. Only the positions that predict the answer (and its end) are turned
into probabilities, so a 262k vocabulary costs [answer tokens x vocabulary] per row, not [sequence x vocabulary].
Text rows that open alike (lm-eval's few-shot examples) run their shared opening once: its KV cache serves every
row, so a batch of 8-shot GSM8K prompts costs one few-shot context, not eight.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Sequence

from omnicheck.tokens import Continuation, NotScored, TokenScores

if TYPE_CHECKING:
    from omnicheck.backends.hf import HFBackend

MAX_SPEECH_FRAMES = 3000  # Whisper's 30 s window; longer audio is transcribed window by window (long-form)
SHARED_PREFIX_MIN = 64  # tokens: a shorter shared opening saves less than the extra forward call costs


def score_continuations(backend: "HFBackend", continuations: Sequence[Continuation], top_k: int,
                        batch_size: int) -> list[TokenScores | NotScored]:
    out: list[TokenScores | NotScored] = []
    for start in range(0, len(continuations), max(1, batch_size)):
        batch = continuations[start : start + batch_size]
        if backend.is_speech_seq2seq:
            out.extend(_score_speech(backend, batch, top_k))
        else:
            out.extend(_score_batch(backend, batch, top_k))
    return out


def _answer_ids(backend: "HFBackend", continuation: Continuation, text: str | None = None) -> list[int] | NotScored:
    text = continuation.text if text is None else text
    ids = list(backend.tokenizer(text, add_special_tokens=False)["input_ids"])
    if continuation.token_ids is not None and tuple(ids) != tuple(continuation.token_ids):
        return NotScored(
            f"{backend.name}'s tokenizer splits the reference's answer into {len(ids)} tokens where the reference's "
            f"made {len(continuation.token_ids)} (or other ones): the distributions cannot be compared position by "
            "position -- fix: compare variants that share the reference's tokenizer"
        )
    return ids


def _prompt_rows(backend: "HFBackend", batch: Sequence[Continuation]) -> tuple[list[list[int]], dict[str, Any], list[str]]:
    """Each row's real prompt token ids, the media tensors, and the names of the per-token tensors to extend."""
    rendered = [c.prompt for c in batch]
    if all(p is not None for p in rendered):
        # a text probe's harness rendered the prompt (lm-eval's context): tokenize it exactly as its HFLM did
        lm = backend.lm_eval_model()
        rows = []
        for prompt in rendered:
            ids, _ = lm.tok_batch_encode([prompt])
            rows.append(ids[0].tolist())
        return rows, {}, []
    if any(p is not None for p in rendered):
        raise ValueError("a batch mixes rendered prompts and messages")
    inputs = backend._inputs([c.sample for c in batch])
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    per_token = [k for k, v in inputs.items() if hasattr(v, "shape") and tuple(v.shape) == tuple(ids.shape)]
    rows = [ids[i][mask[i].bool()].tolist() for i in range(ids.shape[0])]
    extras = {k: v for k, v in inputs.items() if k not in per_token}
    extras["_per_token"] = {k: [inputs[k][i][mask[i].bool()] for i in range(ids.shape[0])] for k in per_token
                            if k not in ("input_ids", "attention_mask")}
    return rows, extras, per_token


def _score_batch(backend: "HFBackend", batch: Sequence[Continuation], top_k: int) -> list[TokenScores | NotScored]:
    import torch

    answers = [_answer_ids(backend, c) for c in batch]
    live = [i for i, a in enumerate(answers) if not isinstance(a, NotScored)]
    results: list[TokenScores | NotScored] = [a if isinstance(a, NotScored) else NotScored("") for a in answers]
    if not live:
        return results
    sub = [batch[i] for i in live]
    rows, extras, _ = _prompt_rows(backend, sub)
    per_token = extras.pop("_per_token", {})
    answer_rows = [answers[i] for i in live]
    full = [p + a for p, a in zip(rows, answer_rows)]
    width = max(len(r) for r in full)
    pad = backend.tokenizer.pad_token_id if backend.tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(full), width), pad, dtype=torch.long)
    attention = torch.zeros((len(full), width), dtype=torch.long)
    for i, row in enumerate(full):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
    inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention}
    for key, values in per_token.items():
        tensor = torch.zeros((len(full), width), dtype=values[0].dtype)
        for i, value in enumerate(values):
            tensor[i, : value.shape[0]] = value
        inputs[key] = tensor
    inputs.update(extras)
    inputs = {k: (v.to(backend.device) if hasattr(v, "to") else v) for k, v in inputs.items()}
    # the earliest position any row needs: the one that predicts its first answer token
    first_needed = min(len(p) for p in rows) - 1
    keep = width - first_needed
    shared = _shared_prefix(rows) if len(rows) > 1 and not extras and not per_token else 0
    with torch.inference_mode():
        try:
            if shared >= SHARED_PREFIX_MIN:
                logits = _forward_after_shared_prefix(backend, inputs, shared, keep)
            else:
                logits = backend.generator(**inputs, logits_to_keep=keep, use_cache=False).logits
        except TypeError:  # a model whose forward has no logits_to_keep: all positions, in one pass
            logits = backend.generator(**inputs, use_cache=False).logits[:, -keep:]
    offset = width - logits.shape[1]
    for row_index, (prompt, answer) in enumerate(zip(rows, answer_rows)):
        start = len(prompt) - 1 - offset
        positions = logits[row_index, start : start + len(answer) + 1].float()
        results[live[row_index]] = _token_scores(backend, positions, answer, sub[row_index].gather, top_k, len(prompt))
    return results


def _shared_prefix(rows: Sequence[list[int]]) -> int:
    """How many leading prompt tokens every row shares, stopping before any row's last prompt token (the position
    that predicts its first answer token is computed in the scored pass)."""
    return min(len(os.path.commonprefix(list(rows))), min(len(r) for r in rows) - 1)


def _forward_after_shared_prefix(backend: "HFBackend", inputs: dict[str, Any], shared: int, keep: int):
    """The logits of the last `keep` positions, the first `shared` tokens (the same in every row) run once."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    opening = backend.generator(input_ids=ids[:1, :shared], attention_mask=mask[:1, :shared], use_cache=True,
                                logits_to_keep=1)
    cache = opening.past_key_values
    cache.batch_repeat_interleave(ids.shape[0])
    return backend.generator(input_ids=ids[:, shared:], attention_mask=mask, past_key_values=cache,
                             logits_to_keep=keep, use_cache=True).logits


def _token_scores(backend: "HFBackend", logits, answer: list[int], gather, top_k: int, prompt_tokens: int) -> TokenScores:
    import torch

    logprobs = torch.log_softmax(logits, dim=-1)
    k = min(top_k, logprobs.shape[-1])
    top = torch.topk(logprobs, k, dim=-1)
    answer_tensor = torch.tensor(answer, dtype=torch.long, device=logprobs.device)
    token_logprobs = logprobs[torch.arange(len(answer), device=logprobs.device), answer_tensor] if answer else logprobs[:0, 0]
    gathered = None
    if gather is not None:
        gathered = []
        for position, ids in enumerate(gather):
            if position >= logprobs.shape[0]:
                break
            valid = [i for i in ids if 0 <= i < logprobs.shape[-1]]
            values = logprobs[position, torch.tensor(valid, dtype=torch.long, device=logprobs.device)].tolist() if valid else []
            lookup = dict(zip(valid, values))
            gathered.append([lookup.get(i, math.nan) for i in ids])
    return TokenScores(
        token_ids=list(answer),
        tokens=[backend.tokenizer.decode([t]) for t in answer],
        top_ids=top.indices.tolist(),
        top_logprobs=top.values.tolist(),
        token_logprobs=token_logprobs.tolist(),
        gathered=gathered,
        prompt_tokens=prompt_tokens,
    )


def _score_speech(backend: "HFBackend", batch: Sequence[Continuation], top_k: int) -> list[TokenScores | NotScored]:
    """Whisper: the decoder is fed the reference's transcript after the tokens it starts every transcript with
    (start of transcript, language, task, no timestamps), read from one greedy step of this model; a variant that
    detects another language starts from its own prefix, so that difference shows as divergence."""
    import torch

    from omnicheck.messages import SAMPLING_RATE, load_audio
    from omnicheck.types import AudioPart

    results: list[TokenScores | NotScored] = []
    for continuation in batch:
        audio = [load_audio(p.path) for p in continuation.sample.messages[-1].media() if isinstance(p, AudioPart)]
        if len(audio) != 1:
            results.append(NotScored(f"sample {continuation.sample.id} has {len(audio)} audio parts; Whisper takes one"))
            continue
        if len(audio[0]) > backend.processor.feature_extractor.n_samples:
            results.append(NotScored(
                f"{backend.name} transcribes audio over 30 s window by window (Whisper long-form), so no single "
                "forward pass scores the whole transcript -- fix: none needed; the task scores still judge this sample"
            ))
            continue
        # a Whisper transcript starts with a space token (" He"); the stripped text would be fed as "He"
        answer = _answer_ids(backend, continuation, " " + continuation.text)
        if isinstance(answer, NotScored):
            results.append(answer)
            continue
        features = backend.processor(audio, sampling_rate=SAMPLING_RATE, return_tensors="pt")["input_features"]
        features = features.to(backend.device, backend.model.dtype)
        kwargs = {"max_new_tokens": 1, "do_sample": False, "return_dict_in_generate": True, **backend._speech_task()}
        with torch.inference_mode():
            first = backend.model.generate(features, **kwargs)
        prefix = first.sequences[0, :-1].tolist()  # the start, language and task tokens, before the one new token
        decoder = torch.tensor([prefix + answer], dtype=torch.long, device=backend.device)
        with torch.inference_mode():
            logits = backend.model(input_features=features, decoder_input_ids=decoder, use_cache=False).logits[0]
        positions = logits[len(prefix) - 1 : len(prefix) + len(answer)].float()
        results.append(_token_scores(backend, positions, answer, continuation.gather, top_k, len(prefix)))
    return results
