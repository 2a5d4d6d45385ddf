"""Image, video and audio through real vLLM servers: tiny Qwen2-VL (image_url, video_url) and Qwen2-Audio
(input_audio). A random model says nothing meaningful, so each test checks that the media reached the model: a
different image, clip or sound gives a different greedy answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnicheck.backends.openai import OpenAIBackend
from omnicheck.types import AudioPart, GenerationSettings, ImagePart, Message, Sample, VideoPart
from omnicheck.variants import Variant

SETTINGS = GenerationSettings(max_new_tokens=10)


@pytest.fixture(scope="module")
def vl_server(serve, tiny_model):
    server = serve(tiny_model("vl"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def audio_server(serve, tiny_model):
    server = serve(tiny_model("audio"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def more_media(media, tmp_path_factory) -> dict[str, Path]:
    """A second image, clip and sound unlike the shared ones: the image mirrored, the clip reversed, a chirp."""
    import av
    import numpy as np
    import soundfile as sf
    from PIL import Image

    root = tmp_path_factory.mktemp("more-media")
    with Image.open(media["image"]) as image:
        image.transpose(Image.Transpose.ROTATE_90).save(root / "rotated.png")
    with av.open(str(media["video"])) as source:
        frames = [f.to_ndarray(format="rgb24") for f in source.decode(video=0)]
    with av.open(str(root / "reversed.mp4"), "w") as out:
        stream = out.add_stream("mpeg4", rate=6)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for frame in reversed(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(255 - frame, format="rgb24")))
        out.mux(stream.encode())
    t = np.arange(32000) / 16000
    sf.write(root / "chirp.wav", 0.3 * np.sin(2 * np.pi * (200 + 900 * t) * t), 16000)
    return {"image": root / "rotated.png", "video": root / "reversed.mp4", "audio": root / "chirp.wav"}


def ask(part, question: str = "What is in it?") -> Sample:
    return Sample(id=f"{part.kind}-{Path(part.path).stem}", messages=(Message.user(part, question),))


def answers(backend: OpenAIBackend, samples: list[Sample]) -> list[str]:
    generations = backend.generate(samples, SETTINGS)
    for generation in generations:
        assert "error" not in generation.extra, generation.extra["error"]
        assert generation.text
    return [g.text for g in generations]


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


@pytest.fixture(scope="module")
def audio(audio_server) -> OpenAIBackend:
    return OpenAIBackend(Variant("audio", audio_server.url))


def test_audio_server_takes_only_audio(audio):
    assert audio.modalities == frozenset({"text", "audio"})
    evidence = audio.describe()["modality_evidence"]
    assert evidence["audio"] == "accepted"
    assert evidence["image"].startswith("HTTP 400")


def test_audio_reaches_the_model_as_input_audio(audio, media, more_media):
    tone, chirp, again = answers(audio, [ask(AudioPart(media["audio"])), ask(AudioPart(more_media["audio"])),
                                         ask(AudioPart(media["audio"]))])
    assert tone == again
    assert tone != chirp


def test_refused_video_switches_to_frames_and_says_so(audio_server, media):
    """A server that refuses video_url gets frames; this one takes no images either, so the sample fails, in one
    line that names what was tried, and the backend keeps sending frames from then on."""
    backend = OpenAIBackend(Variant("audio-video", audio_server.url))
    [generation] = backend.generate([ask(VideoPart(media["video"], num_frames=4))], SETTINGS)
    assert generation.text == ""
    assert generation.extra["video_input"] == "frames"
    assert generation.extra["error"].startswith("server refused the request: HTTP 400")
    assert backend.describe()["video_input"] == "frames"
