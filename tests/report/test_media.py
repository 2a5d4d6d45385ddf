"""Media previews: real photos, real read speech and encoded video, turned into small data URIs."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest

from omnicheck.report import media


def _payload(uri: str) -> bytes:
    header, _, data = uri.partition(",")
    assert header.endswith(";base64")
    return base64.b64decode(data)


def _sample_media(document: dict[str, Any], suffix: str) -> Path:
    return next(Path(m) for r in document["results"] for s in r["samples"] for m in s["media"] if m.endswith(suffix))


def test_image_thumbnail_is_a_small_jpeg(sample_document_master: dict[str, Any]) -> None:
    from PIL import Image

    photo = Path(sample_document_master["results"][1]["samples"][0]["media"][0])
    uri = media.image_thumbnail(photo)
    assert uri.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(_payload(uri))) as thumb:
        assert thumb.format == "JPEG"
        assert max(thumb.size) == media.THUMBNAIL_PX
    assert len(uri) < 60_000


def test_audio_clip_is_16k_mono_and_trimmed_to_10_seconds(sample_document_master: dict[str, Any]) -> None:
    import soundfile

    long_file = _sample_media(sample_document_master, "long_read_speech.flac")
    uri, seconds = media.audio_clip(long_file)
    assert uri.startswith("data:audio/ogg;base64,")
    data, rate = soundfile.read(io.BytesIO(_payload(uri)))
    assert rate == media.AUDIO_RATE and data.ndim == 1
    assert 9.9 <= data.size / rate <= media.AUDIO_MAX_SECONDS + 0.05
    assert seconds > 14, "the full duration is reported, not the clip's"
    assert abs(data).max() > 0.01, "the clip carries the speech, not silence"
    assert len(uri) < 60_000


def test_video_key_frames_spread_over_the_clip(sample_document_master: dict[str, Any]) -> None:
    import numpy as np
    from PIL import Image

    clip = _sample_media(sample_document_master, ".mp4")
    uris = media.video_key_frames(clip)
    assert len(uris) == media.FRAMES_PER_VIDEO
    frames = []
    for uri in uris:
        with Image.open(io.BytesIO(_payload(uri))) as frame:
            assert max(frame.size) == media.FRAME_PX
            frames.append(np.asarray(frame.convert("L"), dtype=float))
    assert np.abs(frames[0] - frames[-1]).mean() > 5, "first and last frames differ: the clip pans"


def test_encoder_caches_each_path_and_respects_its_budget(sample_document_master: dict[str, Any]) -> None:
    photo = str(Path(sample_document_master["results"][1]["samples"][0]["media"][0]))
    encoder = media.MediaEncoder()
    first = encoder.preview(photo, "image")
    second = encoder.preview(photo, "image")
    assert first is second and len(encoder._cache) == 1
    assert encoder.spent_bytes == 2 * len(first.uris[0]), "each embedding is counted: both end up in the page"
    tight = media.MediaEncoder(budget_bytes=len(first.uris[0]) + 10)
    assert tight.preview(photo, "image").ok
    refused = tight.preview(photo, "image")
    assert not refused.ok and "budget" in refused.note


@pytest.mark.parametrize(
    ("name", "fallback", "kind"),
    [("a.JPG", None, "image"), ("a.flac", None, "audio"), ("a.mp4", None, "video"), ("a.gif", None, "video"),
     ("a.bin", "audio", "audio"), ("a.bin", "text", None)],
)
def test_media_kind_by_suffix_then_modality(name: str, fallback: str | None, kind: str | None) -> None:
    assert media.media_kind(name, fallback) == kind
