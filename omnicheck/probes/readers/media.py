"""Media that a dataset holds as bytes (an HF Image/Audio/Video cell) or names by a path, turned into files the
backends open per batch; and whether a file can be read at all, so one broken file costs one sample, not the run."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from omnicheck.errors import first_line
from omnicheck.probes.common import write_once

# leading bytes -> file suffix, for cells whose `path` is empty (datasets drops it for in-memory media)
_MAGIC = (
    (b"\xff\xd8\xff", ".jpg"), (b"\x89PNG", ".png"), (b"GIF8", ".gif"), (b"BM", ".bmp"),
    (b"fLaC", ".flac"), (b"OggS", ".ogg"), (b"ID3", ".mp3"), (b"\xff\xfb", ".mp3"), (b"\xff\xf3", ".mp3"),
    (b"\x1aE\xdf\xa3", ".webm"),
)


def media_dir() -> Path:
    from omnicheck.store import default_cache_dir

    return default_cache_dir() / "media"


def suffix_for(data: bytes, name: str | None) -> str:
    suffix = Path(name or "").suffix.lower()
    if suffix and len(suffix) <= 6:
        return suffix
    if data[:4] == b"RIFF":
        return {b"WAVE": ".wav", b"WEBP": ".webp", b"AVI ": ".avi"}.get(data[8:12], ".bin")
    if data[4:8] == b"ftyp":
        return ".mp4"
    return next((s for magic, s in _MAGIC if data.startswith(magic)), ".bin")


def store_bytes(data: bytes, name: str | None = None) -> Path:
    """The bytes as a file named by their hash (written once, shared by runs and workers)."""
    digest = hashlib.sha256(data).hexdigest()[:24]
    folder = media_dir() / digest[:2]
    folder.mkdir(parents=True, exist_ok=True)
    return write_once(folder / f"{digest}{suffix_for(data, name)}", lambda tmp: tmp.write_bytes(data))


def find_file(name: str, roots: Sequence[Path]) -> Path | None:
    """A path written in a dataset row, absolute or relative to one of the folders the data came with."""
    path = Path(name).expanduser()
    if path.is_absolute():
        return path if path.is_file() else None
    for root in roots:
        for candidate in (root / path, root / path.name):
            if candidate.is_file():
                return candidate
    return None


def cell_file(value: Any, roots: Sequence[Path]) -> tuple[Path | None, str]:
    """An Image/Audio/Video cell ({bytes, path}) or a plain path -> (file, '') or (None, why not)."""
    if isinstance(value, dict):
        data, name = value.get("bytes"), value.get("path")
        if data:
            return store_bytes(bytes(data), name), ""
        value = name
    if isinstance(value, str) and value:
        found = find_file(value, roots)
        return (found, "") if found else (None, f"no file {value} under {', '.join(map(str, roots)) or 'the data folder'}")
    return None, "the row holds no media (empty cell)"


def unreadable(path: Path, kind: str) -> str:
    """Why a media file cannot be used ('' when it can): decoded as the backends will decode it."""
    if kind not in ("image", "audio", "video"):
        raise ValueError(f"unknown media kind {kind!r}")
    try:
        if kind == "image":
            from PIL import Image

            with Image.open(path) as image:
                image.load()
        elif kind == "audio":
            import soundfile

            try:
                with soundfile.SoundFile(str(path)) as sound:
                    if sound.frames == 0 or not len(sound.read(frames=min(sound.frames, 16000))):
                        return "no audio frames"
            except soundfile.LibsndfileError:  # mp3/m4a: the backends fall back to librosa, so check with it
                import warnings

                import librosa

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    audio, _ = librosa.load(str(path), sr=None, mono=True, duration=1.0)
                if not len(audio):
                    return "no audio frames"
        elif kind == "video":
            import av

            with av.open(str(path)) as container:
                if not container.streams.video:
                    return "no video stream"
                next(container.decode(video=0))
    except StopIteration:
        return "no decodable frame"
    except Exception as err:  # each library has its own error family for a broken file
        return first_line(err, 200)
    return ""
