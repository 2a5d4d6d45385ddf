"""Audio through a real vLLM server (tiny Qwen2-Audio): input_audio as base64 16 kHz WAV. A different sound
gives a different greedy answer, so the audio reached the model."""

from __future__ import annotations

import pytest
from served_media import SETTINGS, answers, ask

from omnicheck.backends.openai import OpenAIBackend
from omnicheck.types import AudioPart, VideoPart
from omnicheck.variants import Variant


@pytest.fixture(scope="module")
def audio_server(serve, tiny_model):
    with serve(tiny_model("audio")) as server:
        yield server


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
