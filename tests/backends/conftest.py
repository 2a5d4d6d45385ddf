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


@pytest.fixture
def photo_and_black_image(media, tmp_path) -> tuple[Sample, Sample]:
    """The same caption question about a real photo and about an all-black image: a model that sees answers
    them differently."""
    from PIL import Image

    black = tmp_path / "black.jpg"
    Image.new("RGB", (240, 160), (0, 0, 0)).save(black)
    prompt = "Describe this image in one sentence."
    return (Sample("photo", (Message.user(ImagePart(media["image"]), prompt),)),
            Sample("black", (Message.user(ImagePart(black), prompt),)))
