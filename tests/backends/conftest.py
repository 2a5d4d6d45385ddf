from __future__ import annotations

import pytest

from omnicheck.types import AudioPart, ImagePart, Message, Sample, VideoPart


@pytest.fixture
def modality_samples(media) -> list[Sample]:
    """One question per modality, in the order text, image, audio, video."""
    return [
        Sample("text", (Message.user("What is two plus two?"),)),
        Sample("image", (Message.user(ImagePart(media["image"]), "Describe this image in one sentence."),)),
        Sample("audio", (Message.user(AudioPart(media["audio"]), "Transcribe this audio."),)),
        Sample("video", (Message.user(VideoPart(media["video"], num_frames=4), "Describe this video."),)),
    ]
