"""Image and video through a real vLLM server (tiny Qwen2-VL): image_url and video_url data URIs, and frames.
A random model says nothing meaningful, so each test checks that the media reached the model: a different
image or clip gives a different greedy answer."""

from __future__ import annotations

import pytest
from served_media import SETTINGS, answers, ask

from omnicheck.backends.openai import OpenAIBackend
from omnicheck.types import ImagePart, VideoPart
from omnicheck.variants import Variant


@pytest.fixture(scope="module")
def vl_server(serve, tiny_model):
    with serve(tiny_model("vl")) as server:
        yield server


@pytest.fixture(scope="module")
def vl(vl_server) -> OpenAIBackend:
    return OpenAIBackend(Variant("vl", vl_server.url))


def test_vl_server_takes_image_and_video(vl):
    assert vl.modalities == frozenset({"text", "image", "video"})
    assert vl.describe()["video_input"] == "video_url"


def test_image_reaches_the_model_as_a_data_uri(vl, media, more_media):
    first, rotated, again = answers(vl, [ask(ImagePart(media["image"])), ask(ImagePart(more_media["image"])),
                                         ask(ImagePart(media["image"]))])
    assert first == again
    assert first != rotated


def test_video_reaches_the_model_as_video_url(vl, media, more_media):
    samples = [ask(VideoPart(media["video"], num_frames=4)), ask(VideoPart(more_media["video"], num_frames=4))]
    generations = vl.generate(samples, SETTINGS)
    assert [g.extra.get("video_input") for g in generations] == ["video_url", "video_url"]
    assert all(g.text and "error" not in g.extra for g in generations)
    assert generations[0].text != generations[1].text


def test_video_as_frames_when_asked(vl_server, media, more_media):
    """The frames path on a server that takes images: the same sampled frames the transformers backend uses."""
    backend = OpenAIBackend(Variant("vl-frames", vl_server.url))
    backend._video_as_frames = True  # what a refused video_url switches on (see the audio test for the switch)
    samples = [ask(VideoPart(media["video"], num_frames=4)), ask(VideoPart(more_media["video"], num_frames=4))]
    generations = backend.generate(samples, SETTINGS)
    assert [g.extra.get("video_input") for g in generations] == ["frames", "frames"]
    assert all(g.text and "error" not in g.extra for g in generations)
    assert generations[0].text != generations[1].text
