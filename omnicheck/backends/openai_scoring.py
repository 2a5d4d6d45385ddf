"""Teacher forcing through an OpenAI-compatible server: vLLM's prompt log-probabilities.

One chat-completions request per continuation: the question, then the reference's answer as an assistant message
the model continues (continue_final_message), prompt_logprobs = k (vLLM's extension: the top-k at every prompt
position, plus the prompt token itself), max_tokens 1 with top_logprobs = k for the position after the answer,
return_token_ids for the prompt's token ids. The answer's tokens are found at the end of the prompt: the
reference's own tokens when it gave them, else the server's tokenization of the answer (POST /tokenize).
A server that returns no prompt log-probabilities (SGLang, OpenAI, an older vLLM) says so in one line.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Sequence

from omnicheck.tokens import Continuation, NotScored, TokenScores

if TYPE_CHECKING:
    from omnicheck.backends.openai import OpenAIBackend


def score_continuations(backend: "OpenAIBackend", continuations: Sequence[Continuation], top_k: int
                        ) -> list[TokenScores | NotScored]:
    results: list[TokenScores | NotScored] = [NotScored("not sent")] * len(continuations)

    def run(index: int) -> None:
        try:
            results[index] = _score_one(backend, continuations[index], top_k)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
            results[index] = NotScored(f"the server's answer could not be read ({type(err).__name__}: {err})")

    with ThreadPoolExecutor(max_workers=backend.concurrency, thread_name_prefix="omnicheck-score") as pool:
        list(pool.map(run, range(len(continuations))))
    return results


def _messages(backend: "OpenAIBackend", continuation: Continuation) -> list[dict[str, Any]]:
    from omnicheck.messages import has_video, to_openai

    if continuation.prompt is not None:  # lm-eval's chat-completions client logs the messages it sent as JSON
        messages = json.loads(continuation.prompt)
        if not isinstance(messages, list):
            raise ValueError("the rendered prompt is not a list of chat messages")
        return messages
    as_frames = has_video(continuation.sample) and backend._video_as_frames
    return to_openai(continuation.sample.messages, as_frames)


def _answer_ids(backend: "OpenAIBackend", continuation: Continuation) -> list[int] | NotScored:
    """The answer's tokens: the reference's, or the server's split of it inside the chat template."""
    from omnicheck.backends.http import http_json
    from omnicheck.errors import one_line

    if continuation.token_ids is not None:
        return list(continuation.token_ids)
    stub = [{"role": "user", "content": "x"}]
    full = http_json(f"{backend.root}/tokenize", {"model": backend.model, "add_generation_prompt": False,
                                                  "continue_final_message": True,
                                                  "messages": [*stub, {"role": "assistant", "content": continuation.text}]},
                     backend.timeout, backend._key)
    prompt = http_json(f"{backend.root}/tokenize", {"model": backend.model, "messages": stub,
                                                    "add_generation_prompt": True}, backend.timeout, backend._key)
    if not (full.ok and prompt.ok):
        return NotScored(f"the server has no /tokenize for chat messages ({one_line(full.problem or prompt.problem)}), "
                         "so the answer's tokens cannot be located -- fix: serve with vLLM")
    ids, head = list(full.body["tokens"]), list(prompt.body["tokens"])
    if ids[: len(head)] != head:
        return NotScored("the chat template renders the answer's turn differently from the generation prompt, so "
                         "the answer's tokens cannot be located")
    return ids[len(head):]


def _score_one(backend: "OpenAIBackend", continuation: Continuation, top_k: int) -> TokenScores | NotScored:
    from omnicheck.errors import one_line

    answer = _answer_ids(backend, continuation)
    if isinstance(answer, NotScored):
        return answer
    messages = [*_messages(backend, continuation), {"role": "assistant", "content": continuation.text}]
    payload = {"model": backend.model, "messages": messages, "max_tokens": 1, "temperature": 0, "seed": backend.seed,
               "continue_final_message": True, "add_generation_prompt": False, "prompt_logprobs": top_k,
               "logprobs": True, "top_logprobs": top_k, "return_tokens_as_token_ids": True, "return_token_ids": True}
    reply = backend._send(payload)
    if not reply.ok:
        return NotScored(f"the server refused a prompt-log-probability request ({one_line(reply.problem)}) -- fix: "
                         f"serve with vLLM, --max-logprobs {top_k} or more")
    body = reply.body
    prompt_logprobs, prompt_ids = body.get("prompt_logprobs"), body.get("prompt_token_ids")
    if not prompt_logprobs or not prompt_ids:
        return NotScored("the server returns no prompt log-probabilities (vLLM's prompt_logprobs extension), so "
                         "this variant cannot be teacher-forced; the task scores judge it alone")
    if not answer or prompt_ids[-len(answer):] != answer:
        return NotScored(f"the server split the reference's answer into other tokens than {len(answer)} ids at the end "
                         "of the prompt (another tokenizer or chat template)")
    start = len(prompt_ids) - len(answer)
    rows = [_row(prompt_logprobs[i]) for i in range(start, len(prompt_ids))]
    last = body["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    rows.append({int(str(e["token"]).removeprefix("token_id:")): float(e["logprob"]) for e in last})
    top = [sorted(row.items(), key=lambda kv: -kv[1])[:top_k] for row in rows]
    gathered = None
    if continuation.gather is not None:
        gathered = [[row.get(int(i), math.nan) for i in ids] for row, ids in zip(rows, continuation.gather)]
    return TokenScores(
        token_ids=answer,
        tokens=[_decoded(prompt_logprobs[start + i], t) for i, t in enumerate(answer)],
        top_ids=[[i for i, _ in row] for row in top],
        top_logprobs=[[v for _, v in row] for row in top],
        token_logprobs=[rows[i][t] for i, t in enumerate(answer)],
        gathered=gathered,
        prompt_tokens=start,
    )


def _row(entry: dict[str, Any] | None) -> dict[int, float]:
    return {int(token): float(info["logprob"]) for token, info in (entry or {}).items()}


def _decoded(entry: dict[str, Any] | None, token: int) -> str:
    info = (entry or {}).get(str(token)) or {}
    return str(info.get("decoded_token") or "")
