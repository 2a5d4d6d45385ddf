"""The same tiny model in-process (transformers backend) and served (vLLM, float32): the same greedy tokens, and
the same probe gives the same verdict through both backends."""

from __future__ import annotations

import pytest

from omnicheck.backends.openai import OpenAIBackend
from omnicheck.types import GenerationSettings, Message, Sample
from omnicheck.variants import Variant

QUESTIONS = ["What is 3 plus 4?", "Describe the picture.", "Say yes or no.", "Count to five.",
             "Who reads the book?", "Which color is the sky?"]


@pytest.fixture(scope="module")
def hf_backend(text_server):
    from omnicheck.backends.hf import HFBackend

    backend = HFBackend(text_server.model_dir, name="hf", device="cpu")
    yield backend
    backend.close()


@pytest.mark.parametrize("batch_size", [1, 4])
def test_greedy_outputs_match_token_for_token(hf_backend, text_server, batch_size):
    """Texts are compared; both sides decode the same token ids with the same tokenizer, special tokens skipped."""
    samples = [Sample(id=f"q{i}", messages=(Message.user(q),)) for i, q in enumerate(QUESTIONS)]
    settings = GenerationSettings(max_new_tokens=24, batch_size=batch_size)
    served = OpenAIBackend(Variant("served", text_server.url)).generate(samples, settings)
    in_process = hf_backend.generate(samples, settings)
    assert [g.text for g in served] == [g.text for g in in_process]
    assert [g.tokens for g in served] == [g.tokens for g in in_process]


def test_same_probe_same_verdict_through_both_backends(text_server, tmp_path):
    """gsm8k (lm-eval: HFLM in-process, local-chat-completions served) on one model, judged against itself."""
    from omnicheck.session import RunConfig, Session

    path = str(text_server.model_dir)
    variants = [Variant("hf", path, is_reference=True), Variant("served", text_server.url),
                Variant("hf_again", path)]
    session = Session(RunConfig(variants=variants, probes=["gsm8k"], tier="smoke", report_dir=tmp_path,
                                max_new_tokens=48, write_html=False))
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
    assert served.message.replace("served", "X") == again.message.replace("hf_again", "X")
