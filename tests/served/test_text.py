"""Text through a real vLLM server: identity, determinism, per-sample refusals, lm-eval's own client."""

from __future__ import annotations

import json

import pytest

from omnicheck.backends.base import Backend
from omnicheck.backends.openai import NOT_REPORTED, OpenAIBackend
from omnicheck.errors import BackendError
from omnicheck.types import GenerationSettings, ImagePart, Message, Sample
from omnicheck.variants import Variant

SETTINGS = GenerationSettings(max_new_tokens=12)
QUESTIONS = ["What is 3 plus 4?", "Describe the picture.", "Say yes or no.", "Count to five.", "Who reads the book?"]


def text_samples(questions=QUESTIONS) -> list[Sample]:
    return [Sample(id=f"q{i}", messages=(Message.user(q),)) for i, q in enumerate(questions)]


@pytest.fixture(scope="module")
def backend(text_server) -> OpenAIBackend:
    return OpenAIBackend(Variant("served", text_server.url))


def test_backend_meets_the_protocol_and_says_what_the_server_reports(backend, text_server):
    assert isinstance(backend, Backend)
    described = backend.describe()
    assert described["model"] == str(text_server.model_dir)  # vLLM serves a folder under its path
    assert described["model_card"]["max_model_len"] == 4096
    assert described["server_version"] == "0.32.0"
    # this server is not in dev mode: vLLM exposes no quantization field, and omnicheck does not guess
    assert described["quantization"] == NOT_REPORTED
    assert described["execution_path"] == {
        "runtime": f"OpenAI-compatible server at {text_server.url}, version 0.32.0",
        "weights": f"as served; quantization: {NOT_REPORTED}",
        "activations": "whatever the server's kernels do: not reported by server",
        "kv_cache": "not reported by server",
    }
    assert described["settings"]["temperature"] == 0


def test_greedy_generation_is_deterministic(backend):
    first = backend.generate(text_samples(), SETTINGS)
    second = backend.generate(text_samples(), SETTINGS)
    assert [g.text for g in first] == [g.text for g in second]
    assert all(g.text and "error" not in g.extra for g in first)
    assert all(g.tokens == SETTINGS.max_new_tokens or g.extra["finish_reason"] == "stop" for g in first)
    assert len({g.text for g in first}) > 1  # different questions, different answers


def test_served_name_in_the_url_picks_the_model(text_server):
    named = OpenAIBackend(Variant("named", f"{text_server.url}#{text_server.model_dir}"))
    assert named.model == str(text_server.model_dir)
    with pytest.raises(BackendError) as err:
        OpenAIBackend(Variant("wrong", f"{text_server.url}#no-such-model"))
    message = str(err.value)
    assert "does not serve 'no-such-model'" in message and str(text_server.model_dir) in message
    assert "\n" not in message


def test_text_model_takes_only_text(backend):
    assert backend.modalities == frozenset({"text"})
    evidence = backend.describe()["modality_evidence"]
    assert set(evidence) == {"image", "audio", "video"}
    assert all("not a multimodal model" in reason for reason in evidence.values())


def test_refused_request_fails_that_sample_only(backend, media):
    samples = text_samples()[:2]
    samples.insert(1, Sample(id="img", messages=(Message.user(ImagePart(media["image"]), "What is this?"),)))
    generations = backend.generate(samples, SETTINGS)
    assert generations[0].text and generations[2].text
    refused = generations[1]
    assert refused.text == ""
    assert refused.extra["error"].startswith("server refused the request: HTTP 400")
    assert "\n" not in refused.extra["error"]


def test_lm_eval_chat_completions_over_the_same_server(backend, tmp_path):
    """lm-eval's own client (local-chat-completions) sends the same chat; at T=0 it gets omnicheck's answers."""
    from omnicheck.probes.lmeval import model_output, run_task

    rows = [{"question": q, "answer": "7"} for q in QUESTIONS[:3]]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "task": "served_echo",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}, "cache_dir": str(tmp_path / "datasets")},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{question}}",
        "doc_to_target": "{{answer}}",
        "generation_kwargs": {"until": ["@@@@"], "max_gen_toks": SETTINGS.max_new_tokens},
        "metric_list": [{"metric": "exact_match"}],
    }
    lm = backend.lm_eval_model()
    assert lm is backend.lm_eval_model()  # one client per backend
    run = run_task(lm, config, [0, 1, 2], max_new_tokens=SETTINGS.max_new_tokens)
    assert run.chat_template  # the server's template: prompts went as chat messages
    assert "exact_match,none" in run.aggregates
    through_lm_eval = [model_output(docs[0]).strip() for _, docs in sorted(run.by_doc().items())]
    direct = [g.text for g in backend.generate(text_samples(QUESTIONS[:3]), SETTINGS)]
    assert through_lm_eval == direct
