"""A server that is down, frozen, or answering 5xx: one line per failure, and no lost results.

The server stopped mid-run is in test_quantized.py (a server of its own, started for that test).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable, Iterator

import pytest
from vllm_server import ForwardingProxy, free_port

from omnicheck.backends.openai import OpenAIBackend
from omnicheck.errors import BackendError
from omnicheck.types import GenerationSettings, Message, Sample
from omnicheck.variants import Variant

SETTINGS = GenerationSettings(max_new_tokens=6)


def samples(n: int) -> list[Sample]:
    return [Sample(id=f"s{i}", messages=(Message.user(f"Say {i}."),)) for i in range(n)]


def test_server_down_at_start_is_one_line():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendError) as err:
        OpenAIBackend(Variant("down", url), connect_timeout=2)
    message = str(err.value)
    assert "\n" not in message
    assert f"cannot reach the server for down at {url}" in message
    assert "fix: start the server" in message


def test_frozen_server_times_out_per_sample_then_recovers(text_server, injector):
    """SIGSTOP freezes the API server: the kernel still accepts connections, nothing answers. The requests go
    through a proxy that counts them: (1 + retries) tries per sample, then the run goes on."""
    proxy = injector(failures=0)
    backend = OpenAIBackend(Variant("frozen", proxy.url), timeout=1.5, retries=1, backoff=0.1)
    os.kill(text_server.process.pid, signal.SIGSTOP)
    try:
        generations = backend.generate(samples(3), SETTINGS)
    finally:
        os.kill(text_server.process.pid, signal.SIGCONT)
    assert [g.text for g in generations] == ["", "", ""]
    for generation in generations:
        assert generation.extra["error"] == "server failed: no answer within 1.5 s (timed out)"
    assert proxy.posts == 3 * 2
    assert all(g.text and "error" not in g.extra for g in backend.generate(samples(3), SETTINGS))


class FaultInjector(ForwardingProxy):
    """A proxy in front of the real vLLM server that counts the POSTs it sees and answers 503 to the first
    `failures` of them.

    A stand-in, because vLLM cannot be made to answer 5xx on demand; everything else is forwarded unchanged.
    """

    def __init__(self, upstream_port: int, failures: int):
        self.failures = failures
        self.posts = 0
        counting = threading.Lock()  # the backend may send several requests at once

        def intercept(body: bytes) -> bytes | tuple[int, bytes]:
            with counting:
                self.posts += 1
                failing = self.posts <= self.failures
            return (503, b'{"error": {"message": "injected: server overloaded"}}') if failing else body

        super().__init__(upstream_port, intercept)


@pytest.fixture
def injector(text_server) -> Iterator[Callable[[int], "FaultInjector"]]:
    made: list[FaultInjector] = []

    def make(failures: int) -> FaultInjector:
        made.append(FaultInjector(text_server.port, failures))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


def test_5xx_is_retried_with_backoff(text_server, injector):
    proxy = injector(failures=2)
    backend = OpenAIBackend(Variant("flaky", proxy.url), concurrency=1, retries=3, backoff=0.2)
    start = time.monotonic()
    [generation] = backend.generate(samples(1), SETTINGS)
    assert "error" not in generation.extra and generation.text
    assert proxy.posts == 3
    assert time.monotonic() - start >= 0.2 + 0.4  # slept 0.2 s, then 0.4 s


def test_5xx_after_all_retries_fails_that_sample_and_the_run_goes_on(text_server, injector):
    proxy = injector(failures=3)  # the first sample's three tries; the second sample goes through
    backend = OpenAIBackend(Variant("flaky", proxy.url), concurrency=1, retries=2, backoff=0.05)
    first, second = backend.generate(samples(2), SETTINGS)
    assert first.text == ""
    assert first.extra["error"] == "server failed: HTTP 503: injected: server overloaded"
    assert second.text and "error" not in second.extra
