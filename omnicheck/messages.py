"""The neutral message (types.Message) as each runtime takes it, and its media read the one way both backends use.

- to_hf: one chat-template message for a transformers processor (media as {"type": kind} placeholders; the
  decoded media go to the processor beside the text, see media_inputs).
- to_openai: chat-completions messages with media as data URIs (images, video) and `input_audio` WAV, or a
  video as the frames the transformers backend would sample, for servers that take no video.
- load_image / load_audio / load_video: decoded media, or one FixtureError line naming the file.

Nothing heavy is imported at module import: PIL, librosa, soundfile, av and transformers load on first use.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any, Sequence

from omnicheck.errors import FixtureError, first_line
from omnicheck.types import AudioPart, ImagePart, Message, Part, Sample, TextPart, VideoPart

SAMPLING_RATE = 16_000  # Hz: what every speech front end omnicheck feeds takes

_IMAGE_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
               ".gif": "image/gif", ".bmp": "image/bmp"}
_VIDEO_MIME = {".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime", ".avi": "video/x-msvideo",
               ".mkv": "video/x-matroska"}


# --- media loading: one clear line when a file is missing or corrupt ---


def load_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError) as err:
        raise FixtureError(f"image {path} cannot be read ({first_line(err)})", "restore or replace the file") from None


def load_audio(path: Path):
    """Mono float32 at SAMPLING_RATE."""
    import warnings

    import librosa
    import soundfile

    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        if rate != SAMPLING_RATE:
            audio = librosa.resample(audio, orig_sr=rate, target_sr=SAMPLING_RATE)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError):
        try:  # formats libsndfile cannot read (mp3, m4a) go through librosa's fallback decoder
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                audio, _ = librosa.load(str(path), sr=SAMPLING_RATE, mono=True)
        except Exception as err:  # the fallback raises several unrelated types for unreadable files
            raise FixtureError(f"audio {path} cannot be decoded ({first_line(err)})", "restore or replace the file") from None
    if audio.size == 0:
        raise FixtureError(f"audio {path} is empty", "restore or replace the file")
    return audio


def load_video(path: Path, num_frames: int):
    """(frames, metadata): num_frames frames sampled evenly, as transformers' video processors take them."""
    from transformers.video_utils import load_video as hf_load_video

    try:
        return hf_load_video(str(path), num_frames=num_frames, backend="pyav")
    except Exception as err:  # av raises its own error family for broken containers
        raise FixtureError(f"video {path} cannot be decoded ({first_line(err)})", "restore or replace the file") from None


# --- transformers: chat-template messages, media decoded beside them ---


def to_hf(message: Message, as_string: bool = False) -> dict[str, Any]:
    """One message for apply_chat_template. as_string: a text-only message as a plain string, for chat
    templates that take content only that way (SmolLM2's does)."""
    if as_string and not message.media():
        return {"role": message.role, "content": message.text}
    content = []
    for part in message.parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        else:
            content.append({"type": part.kind})
    return {"role": message.role, "content": content}


def media_inputs(messages: Sequence[Message]) -> tuple[list[Any], list[Any], list[Any]]:
    """(images, audios, videos) of one sample's messages, decoded in the order they appear."""
    images, audios, videos = [], [], []
    for message in messages:
        for part in message.media():
            if isinstance(part, ImagePart):
                images.append(load_image(part.path))
            elif isinstance(part, AudioPart):
                audios.append(load_audio(part.path))
            elif isinstance(part, VideoPart):
                videos.append(load_video(part.path, part.num_frames))
    return images, audios, videos


# --- OpenAI chat completions: content parts, media inline ---


def to_openai(messages: Sequence[Message], video_as_frames: bool = False) -> list[dict[str, Any]]:
    return [{"role": m.role, "content": content_parts(m.parts, video_as_frames)} for m in messages]


def content_parts(parts: Sequence[Part], video_as_frames: bool) -> str | list[dict[str, Any]]:
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    content: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            content.append(image_part(Path(part.path)))
        elif isinstance(part, AudioPart):
            content.append(audio_part(Path(part.path)))
        elif isinstance(part, VideoPart):
            if video_as_frames:
                content.extend(video_frame_parts(Path(part.path), part.num_frames))
            else:
                content.append(video_part(Path(part.path)))
    return content


def has_video(sample: Sample) -> bool:
    return any(isinstance(p, VideoPart) for m in sample.messages for p in m.parts)


def data_uri(mime: str, raw: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def image_part(path: Path) -> dict[str, Any]:
    mime = _IMAGE_MIME.get(path.suffix.lower())
    raw = path.read_bytes() if mime else _to_png(path)
    return {"type": "image_url", "image_url": {"url": data_uri(mime or "image/png", raw)}}


def _to_png(path: Path) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    with Image.open(path) as image:
        image.convert("RGB").save(out, format="PNG")
    return out.getvalue()


def audio_part(path: Path) -> dict[str, Any]:
    """Any audio file -> 16 kHz mono 16-bit WAV, read the way the transformers backend reads it."""
    import numpy as np

    pcm = (np.clip(load_audio(path), -1.0, 1.0) * 32767).astype("<i2").tobytes()
    return wav_part(wav_bytes(pcm, SAMPLING_RATE))


def wav_part(wav: bytes) -> dict[str, Any]:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode("ascii"), "format": "wav"}}


def wav_bytes(pcm16: bytes, rate: int) -> bytes:
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm16)
    return out.getvalue()


def video_part(path: Path) -> dict[str, Any]:
    mime = _VIDEO_MIME.get(path.suffix.lower(), "video/mp4")
    return {"type": "video_url", "video_url": {"url": data_uri(mime, path.read_bytes())}}


def video_frame_parts(path: Path, num_frames: int) -> list[dict[str, Any]]:
    """The frames the transformers backend would sample, as JPEG image parts, for servers that take no video."""
    from PIL import Image

    frames, _ = load_video(path, num_frames)
    parts = []
    for frame in frames:
        out = io.BytesIO()
        Image.fromarray(frame).convert("RGB").save(out, format="JPEG", quality=90)
        parts.append({"type": "image_url", "image_url": {"url": data_uri("image/jpeg", out.getvalue())}})
    return parts
