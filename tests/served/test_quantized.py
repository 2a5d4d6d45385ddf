"""compressed-tensors variants of the tiny text model, served by vLLM on this CPU.

The checkpoints are made with compressed-tensors' own API in the runtime venv (scripts/make_tiny_served_models.py;
no llmcompressor). FP8_DYNAMIC and W8A8 have CPU kernels and serve; W4A16 and NVFP4A16 do not, and omnicheck must
say so in one line carrying vLLM's own cause. (W4A16 even starts and answers /health: the missing kernel only
kills the engine on the first request, which is why the launcher sends one.) The last test stops the W8A8
server in the middle of a run.
"""

from __future__ import annotations

import threading
import time

import pytest

from omnicheck.backends.openai import OpenAIBackend
from omnicheck.backends.response_cache import ResponseCache
from omnicheck.errors import BackendError
from omnicheck.types import GenerationSettings, Message, Sample
from omnicheck.variants import Variant
from vllm_server import start_failure_cause

SETTINGS = GenerationSettings(max_new_tokens=12)


def samples(n: int) -> list[Sample]:
    return [Sample(id=f"s{i}", messages=(Message.user(f"Tell me about the number {i}."),)) for i in range(n)]


@pytest.fixture  # one test uses it: stopped before the W8A8 server starts
def fp8_server(serve, tiny_model):
    with serve(tiny_model("fp8_dynamic"), dev_mode=True) as server:
        yield server


@pytest.fixture(scope="module")
def w8a8_server(serve, tiny_model):
    with serve(tiny_model("w8a8")) as server:
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


def test_w8a8_serves(w8a8_server):
    backend = OpenAIBackend(Variant("w8a8", w8a8_server.url))
    generations = backend.generate(samples(3), SETTINGS)
    assert all(g.text and g.tokens > 0 and "error" not in g.extra for g in generations)
    assert backend.describe()["quantization"] == "not reported by server"


@pytest.mark.parametrize(("scheme", "cause"), [
    ("w4a16", "cpu_gemm_wna16"),  # vLLM's CPU build here lacks its int4 weight-only GEMM
    ("nvfp4a16", "fp4"),  # FP4 kernels need a GPU
])
def test_scheme_without_a_cpu_kernel_is_refused_in_one_line(serve, tiny_model, scheme, cause):
    with pytest.raises(BackendError) as err, serve(tiny_model(scheme), expect_failure=True):
        pass
    message = str(err.value)
    assert message.startswith(f"vLLM refused to serve {scheme} (")
    assert cause in message.lower()
    assert "\n" not in message
    assert "Engine core initialization failed" not in message  # the root cause, not the wrapper


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


def test_server_stopped_mid_run_keeps_what_was_done(w8a8_server, tmp_path):
    """Answers already in the cache stay; every sample after the stop fails with one line; nothing raises."""
    cache_dir = tmp_path / "cache"
    backend = OpenAIBackend(Variant("w8a8", w8a8_server.url), cache_dir=cache_dir, concurrency=1, retries=2,
                            backoff=0.1)
    cache = ResponseCache(cache_dir)
    run = samples(40)

    def stop_after_a_few() -> None:
        deadline = time.monotonic() + 120
        while len(cache) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        w8a8_server.stop()

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
