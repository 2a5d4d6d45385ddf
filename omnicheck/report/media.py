"""Sample media as small data URIs for the one-file report: image thumbnails, short audio, video key frames.

Every encoding is cached per path within one render (the reference and each variant share a sample's media),
and a byte budget keeps the whole report small: past it, media is named instead of embedded.
Pillow, av and soundfile are imported inside functions; a missing one degrades a preview, never the report.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

MediaKind = Literal["image", "audio", "video"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".ppm"})
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".sph"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".gif"})

THUMBNAIL_PX = 360  # longest side of an image thumbnail
FRAME_PX = 168  # longest side of one video key frame
FRAMES_PER_VIDEO = 5
JPEG_QUALITY = 72
AUDIO_RATE = 16_000
AUDIO_MAX_SECONDS = 10.0
OPUS_BITRATE = 24_000  # clear speech; 10 s is about 30 kB
DEFAULT_BUDGET_BYTES = 7_000_000  # leaves room under 10 MB for text, charts and CSS


@dataclass(frozen=True)
class Preview:
    """What the template shows for one media file: data URIs, or a note saying why not."""

    kind: MediaKind
    path: str
    uris: tuple[str, ...] = ()
    note: str = ""
    seconds: float | None = None  # audio: original duration
    trimmed: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.uris)

    @property
    def name(self) -> str:
        return Path(self.path).name


def media_kind(path: str, fallback: str | None = None) -> MediaKind | None:
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if fallback in ("image", "audio", "video"):
        return fallback  # type: ignore[return-value]
    return None


def data_uri(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


@dataclass
class MediaEncoder:
    """Encodes each path once per render and stops embedding once the byte budget is spent."""

    budget_bytes: int = DEFAULT_BUDGET_BYTES
    spent_bytes: int = 0
    _cache: dict[tuple[str, MediaKind], Preview] = field(default_factory=dict)

    def preview(self, path: str, kind: MediaKind) -> Preview:
        key = (path, kind)
        if key not in self._cache:
            self._cache[key] = self._encode(path, kind)
        preview = self._cache[key]
        if not preview.ok:
            return preview
        size = sum(len(u) for u in preview.uris)
        if self.spent_bytes + size > self.budget_bytes:
            return Preview(kind, path, note="not embedded: the report's media budget is spent; open the file")
        self.spent_bytes += size
        return preview

    def _encode(self, path: str, kind: MediaKind) -> Preview:
        if not Path(path).is_file():
            return Preview(kind, path, note="file not found on this machine")
        try:
            if kind == "image":
                return Preview(kind, path, uris=(image_thumbnail(Path(path)),))
            if kind == "audio":
                uri, seconds = audio_clip(Path(path))
                return Preview(kind, path, uris=(uri,), seconds=seconds, trimmed=seconds > AUDIO_MAX_SECONDS)
            return Preview(kind, path, uris=tuple(video_key_frames(Path(path))))
        except ImportError as err:
            return Preview(kind, path, note=f"preview needs {err.name or 'a missing package'}: pip install 'omnicheck[hf]'")
        except Exception as err:  # a corrupt file must not take the whole report down
            return Preview(kind, path, note=f"could not decode ({type(err).__name__}: {str(err)[:120]})")


def _jpeg(image: "object", longest_side: int) -> bytes:
    from PIL import Image

    assert isinstance(image, Image.Image)
    picture = image.convert("RGB")
    picture.thumbnail((longest_side, longest_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return out.getvalue()


def image_thumbnail(path: Path, longest_side: int = THUMBNAIL_PX) -> str:
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image)
        return data_uri("image/jpeg", _jpeg(upright, longest_side))


def _decode_audio_mono(path: Path) -> "object":
    """float32 mono at AUDIO_RATE, at most AUDIO_MAX_SECONDS plus one sample (to tell it was trimmed)."""
    import av
    import numpy as np

    chunks = []
    limit = int(AUDIO_RATE * AUDIO_MAX_SECONDS) + 1
    total = 0
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                total += chunk.size
            if total >= limit:
                break
        else:
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def audio_duration(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / 1_000_000
    return 0.0


def audio_clip(path: Path) -> tuple[str, float]:
    """A data URI of the first AUDIO_MAX_SECONDS as 16 kHz mono Ogg Opus, and the file's full duration."""
    import numpy as np

    samples = _decode_audio_mono(path)
    seconds = max(audio_duration(path), samples.size / AUDIO_RATE)
    clip = np.clip(samples[: int(AUDIO_RATE * AUDIO_MAX_SECONDS)], -1.0, 1.0).astype(np.float32)
    try:
        return data_uri("audio/ogg", encode_opus(clip)), seconds
    except ValueError:  # this av build has no libopus encoder: Vorbis through libsndfile instead
        import soundfile

        out = io.BytesIO()
        soundfile.write(out, clip, AUDIO_RATE, format="OGG", subtype="VORBIS")
        return data_uri("audio/ogg", out.getvalue()), seconds


def encode_opus(clip: "object") -> bytes:
    """float32 mono samples at AUDIO_RATE as Ogg Opus bytes (libopus through av: ~20x faster than libsndfile's)."""
    import av

    if "libopus" not in av.codecs_available:
        raise ValueError("libopus encoder not available")
    out = io.BytesIO()
    with av.open(out, mode="w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=AUDIO_RATE)
        stream.bit_rate = OPUS_BITRATE
        stream.layout = "mono"
        stream.codec_context.options = {"compression_level": "3"}
        frame = av.AudioFrame.from_ndarray(clip.reshape(1, -1), format="flt", layout="mono")  # type: ignore[attr-defined]
        frame.sample_rate = AUDIO_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def video_key_frames(path: Path, count: int = FRAMES_PER_VIDEO, longest_side: int = FRAME_PX) -> list[str]:
    """count frames evenly spread over the clip (seeking, so long clips cost no full decode), as JPEG data URIs."""
    import av

    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = _video_seconds(container, stream)
        if duration <= 0:
            frames = _frames_by_decoding(container, stream, count)
        else:
            for i in range(count):
                target = (i + 0.5) * duration / count
                frame = _frame_at(container, stream, target)
                if frame is not None:
                    frames.append(frame)
    if not frames:
        raise ValueError("no decodable video frames")
    return [data_uri("image/jpeg", _jpeg(f.to_image(), longest_side)) for f in frames]


def _video_seconds(container: "object", stream: "object") -> float:
    if getattr(stream, "duration", None) and getattr(stream, "time_base", None):
        return float(stream.duration * stream.time_base)  # type: ignore[attr-defined]
    if getattr(container, "duration", None):
        return container.duration / 1_000_000  # type: ignore[attr-defined]
    return 0.0


def _frame_at(container: "object", stream: "object", seconds: float) -> "object | None":
    time_base = stream.time_base  # type: ignore[attr-defined]
    start = stream.start_time or 0  # type: ignore[attr-defined]
    container.seek(start + int(seconds / time_base), stream=stream, backward=True)  # type: ignore[attr-defined]
    last = None
    for frame in container.decode(stream):  # type: ignore[attr-defined]
        last = frame
        if frame.time is None or frame.time >= seconds:
            return frame
    return last


def _frames_by_decoding(container: "object", stream: "object", count: int, cap: int = 5000) -> list["object"]:
    """For streams without a duration: count the frames, then decode again keeping only the chosen ones."""
    total = sum(1 for _, _ in zip(range(cap), container.decode(stream)))  # type: ignore[attr-defined]
    if total == 0:
        return []
    wanted = {min(total - 1, int((i + 0.5) * total / count)) for i in range(min(count, total))}
    container.seek(0)  # type: ignore[attr-defined]
    kept = []
    for i, frame in zip(range(total), container.decode(stream)):  # type: ignore[attr-defined]
        if i in wanted:
            kept.append(frame)
    return kept
