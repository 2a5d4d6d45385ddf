"""The same tiny model in-process (transformers backend) and served (vLLM, float32): the same greedy tokens, and
the same probe gives the same verdict through both backends.

One known difference, in text only: the tiny byte-level BPE model can stop in the middle of a multi-byte UTF-8
character. transformers' decode() turns the dangling bytes into U+FFFD; vLLM's incremental detokenizer holds
incomplete bytes back and drops them when the request ends. The token ids are the same.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from omnicheck.backends.openai import OpenAIBackend
from omnicheck.types import GenerationSettings, Message, Sample
from omnicheck.variants import Variant

QUESTIONS = ["What is 3 plus 4?", "Describe the picture.", "Say yes or no.", "Count to five.",
             "Who reads the book?", "Which color is the sky?"]
MAX_NEW_TOKENS = 24


@pytest.fixture(scope="module")
def hf_backend(text_server):
    from omnicheck.backends.hf import HFBackend

    backend = HFBackend(text_server.model_dir, name="hf", device="cpu")
    yield backend
    backend.close()


def served_token_ids(server, question: str) -> list[int]:
    """vLLM's own generated ids (its return_tokens_as_token_ids extension), for this comparison only."""
    body = {"model": str(server.model_dir), "messages": [{"role": "user", "content": question}],
            "max_tokens": MAX_NEW_TOKENS, "temperature": 0, "logprobs": True, "return_tokens_as_token_ids": True}
    request = urllib.request.Request(f"{server.url}/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    answer = json.load(urllib.request.urlopen(request, timeout=60))
    return [int(entry["token"].removeprefix("token_id:")) for entry in answer["choices"][0]["logprobs"]["content"]]


def in_process_token_ids(hf_backend, question: str) -> list[int]:
    import torch

    ids = hf_backend.tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                                   add_generation_prompt=True, return_tensors="pt",
                                                   return_dict=True)["input_ids"]
    with torch.inference_mode():
        out = hf_backend.model.generate(ids, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                                        pad_token_id=hf_backend.tokenizer.pad_token_id)
    generated = out[0, ids.shape[1]:].tolist()
    eos = hf_backend.tokenizer.convert_tokens_to_ids("<|im_end|>")
    return generated[: generated.index(eos)] if eos in generated else generated


@pytest.mark.parametrize("question", QUESTIONS)
def test_greedy_token_ids_match(hf_backend, text_server, question):
    assert served_token_ids(text_server, question) == in_process_token_ids(hf_backend, question)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_backends_give_the_same_text(hf_backend, text_server, batch_size):
    """Through both backends' own generate(); batch 4 pads on the left in-process and must not change a token."""
    samples = [Sample(id=f"q{i}", messages=(Message.user(q),)) for i, q in enumerate(QUESTIONS)]
    settings = GenerationSettings(max_new_tokens=MAX_NEW_TOKENS, batch_size=batch_size)
    served = OpenAIBackend(Variant("served", text_server.url)).generate(samples, settings)
    in_process = hf_backend.generate(samples, settings)
    assert [g.tokens for g in served] == [g.tokens for g in in_process]
    assert [g.text for g in served] == [g.text.rstrip("\ufffd") for g in in_process]


def test_same_probe_same_verdict_through_both_backends(text_server, tmp_path):
    """gsm8k (lm-eval: HFLM in-process, local-chat-completions served) on one model, judged against itself."""
    from omnicheck.session import RunConfig, Session

    path = str(text_server.model_dir)
    variants = [Variant("hf", path, is_reference=True), Variant("served", text_server.url),
                Variant("hf_again", path)]
    from omnicheck.config import Settings

    # task-score verdicts only: teacher-forced divergence through both backends is tests/served/test_served_divergence.py's
    settings = Settings(divergence=False)
    session = Session(RunConfig(variants=variants, probes=["gsm8k"], tier="smoke", report_dir=tmp_path,
                                max_new_tokens=48, write_html=False, settings=settings))
    try:
        served, again = session.verdict("served", "gsm8k"), session.verdict("hf_again", "gsm8k")
    finally:
        session.close()
    reference = session.results[("hf", "gsm8k")]
    served_result = session.results[("served", "gsm8k")]
    assert reference.status == served_result.status == "ok", served_result.reason
    assert [s.output for s in served_result.samples] == [s.output for s in reference.samples]
    assert [s.scores for s in served_result.samples] == [s.scores for s in reference.samples]
    assert served.status == again.status
    # the served variant ran on another engine than the reference: its message says so after the same verdict
    judged, note = served.message.split(" -- compared across engines: ", 1)
    assert judged.replace("served", "X") == again.message.replace("hf_again", "X")
    assert note.startswith("the reference hf ran on transformers ") and "this variant on vLLM 0.32.0 (served)" in note
    assert served.details["engines"]["cross_engine"] and not again.details["engines"]["cross_engine"]
