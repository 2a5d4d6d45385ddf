"""The on-disk response cache: answers are written as they arrive, and a rerun sends only what is missing.

What reached the server is counted by the server itself (its /metrics: http_requests_total per handler and status
class, from the Prometheus instrumentator vLLM mounts), not by omnicheck.
"""

from __future__ import annotations

import re
import urllib.request

import pytest

from omnicheck.backends.openai import OpenAIBackend
from omnicheck.backends.response_cache import ResponseCache
from omnicheck.types import GenerationSettings, ImagePart, Message, Sample
from omnicheck.variants import Variant

SETTINGS = GenerationSettings(max_new_tokens=8)


def served_requests(server, status: str = "2xx") -> float:
    """Chat-completion requests the server answered with this status class."""
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10).read().decode()
    total = 0.0
    for labels, value in re.findall(r"^http_requests_total\{([^}]*)\} (\S+)$", metrics, re.M):
        if 'handler="/v1/chat/completions"' in labels and f'status="{status}"' in labels:
            total += float(value)
    return total


def samples(n: int) -> list[Sample]:
    return [Sample(id=f"s{i}", messages=(Message.user(f"Question number {i}: what is {i} plus {i}?"),))
            for i in range(n)]


def backend(server, cache_dir, **kwargs) -> OpenAIBackend:
    return OpenAIBackend(Variant("served", server.url), cache_dir=cache_dir, **kwargs)


def test_rerun_after_a_crash_sends_only_what_is_missing(text_server, tmp_path):
    cache_dir = tmp_path / "cache"
    # the first run "crashed" after three of the six samples
    before = served_requests(text_server)
    partial = backend(text_server, cache_dir).generate(samples(6)[:3], SETTINGS)
    assert served_requests(text_server) - before == 3
    assert len(ResponseCache(cache_dir)) == 3

    before = served_requests(text_server)
    resumed = backend(text_server, cache_dir).generate(samples(6), SETTINGS)
    assert served_requests(text_server) - before == 3  # only the missing three went out
    assert [g.text for g in resumed[:3]] == [g.text for g in partial]
    assert all(g.extra.get("cache") == "hit" for g in resumed[:3])
    assert not any("cache" in g.extra for g in resumed[3:])

    uncached = backend(text_server, None).generate(samples(6), SETTINGS)
    assert [g.text for g in resumed] == [g.text for g in uncached]


def test_key_covers_settings_and_content_but_not_the_file_location(text_server, tmp_path, media):
    cache_dir = tmp_path / "cache"
    first = backend(text_server, cache_dir)
    first.generate(samples(2), SETTINGS)
    before = served_requests(text_server)
    first.generate(samples(2), GenerationSettings(max_new_tokens=4))  # other settings: asked again
    assert served_requests(text_server) - before == 2

    moved = tmp_path / "moved.jpg"
    moved.write_bytes(media["image"].read_bytes())
    cache = ResponseCache(cache_dir)
    model = {"id": first.model}
    same = cache.key(model, (Message.user(ImagePart(media["image"]), "q"),), {})
    assert same == cache.key(model, (Message.user(ImagePart(moved), "q"),), {})
    assert same != cache.key(model, (Message.user(ImagePart(moved), "q?"),), {})


def test_failures_are_not_cached(text_server, tmp_path, media):
    """A refused sample is asked again on the rerun: the server may take it next time (e.g. after a fix)."""
    cache_dir = tmp_path / "cache"
    refused = Sample(id="img", messages=(Message.user(ImagePart(media["image"]), "What is this?"),))
    run = [samples(1)[0], refused]
    first = backend(text_server, cache_dir).generate(run, SETTINGS)
    assert "error" in first[1].extra and len(ResponseCache(cache_dir)) == 1
    answered, refused_before = served_requests(text_server), served_requests(text_server, "4xx")
    second = backend(text_server, cache_dir).generate(run, SETTINGS)
    assert second[0].extra.get("cache") == "hit"
    assert "error" in second[1].extra
    assert served_requests(text_server) - answered == 0  # the cached one was not sent
    assert served_requests(text_server, "4xx") - refused_before == 1  # the refused one was sent again


@pytest.mark.parametrize("broken", ["", "{not json", '{"text": "x"}'])
def test_unreadable_cache_entry_is_asked_again(tmp_path, broken):
    cache = ResponseCache(tmp_path)
    key = cache.key({"id": "m"}, (Message.user("q"),), {})
    path = tmp_path / key[:2] / f"{key}.json"
    path.parent.mkdir()
    path.write_text(broken)
    assert cache.get(key) is None


def test_missing_media_fails_that_sample_with_the_cache_on(text_server, tmp_path):
    gone = Sample(id="gone", messages=(Message.user(ImagePart(tmp_path / "deleted.png"), "What is this?"),))
    first, missing = backend(text_server, tmp_path / "cache").generate([samples(1)[0], gone], SETTINGS)
    assert first.text and "error" not in first.extra
    assert missing.text == ""
    assert missing.extra["error"].startswith("cannot read the sample's media: ")
    assert "deleted.png" in missing.extra["error"] and "\n" not in missing.extra["error"]
