"""Training examples as token ids and media arrays, built without the processor but equal to what it produces.

The gemma4_unified processor handles one 384x384 image in tens of milliseconds on a CPU; training needs thousands
a minute. For the inputs the generators make (384x384 RGB frames, 16 kHz mono audio) the processor's work is a
reshape and a placeholder expansion, done here in numpy. tests/models/test_trained.py checks that both paths give
identical ids, pixel values, positions and audio frames, so the model trains on exactly what it is later shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from omnicheck.models import tiny
from omnicheck.models.tiny import MEDIA_TOKENS

PATCH = 48
GRID = 8  # 384 / 48
SOFT_TOKENS = GRID * GRID
MAX_SOFT_TOKENS = 70
AUDIO_FRAME = 640
PAD_LABEL = -100


def train_tokenizer(corpus: Sequence[str], vocab_size: int):
    """omnicheck.models.tiny's tokenizer trained on the generated corpus, digits one per token (arithmetic needs
    them apart)."""
    return tiny.train_tokenizer(corpus, vocab_size, split_digits=True)


def patchify(frame: np.ndarray) -> np.ndarray:
    """(384, 384, 3) uint8 -> (64, 6912) uint8 in the processor's merged-patch order (row-major 48x48 blocks, each
    block's pixels row-major, channels last)."""
    if frame.shape != (GRID * PATCH, GRID * PATCH, 3):
        raise ValueError(f"expected a 384x384x3 frame, got {frame.shape}")
    return frame.reshape(GRID, PATCH, GRID, PATCH, 3).transpose(0, 2, 1, 3, 4).reshape(SOFT_TOKENS, -1)


def patch_positions() -> np.ndarray:
    """(70, 2) (x, y) block positions, -1 for the padding rows."""
    ys, xs = np.divmod(np.arange(SOFT_TOKENS), GRID)
    positions = np.full((MAX_SOFT_TOKENS, 2), -1, dtype=np.int64)
    positions[:SOFT_TOKENS, 0], positions[:SOFT_TOKENS, 1] = xs, ys
    return positions


def audio_frames(waveform: np.ndarray) -> np.ndarray:
    """(n, 640) float32: the waveform zero-padded to whole 40 ms frames."""
    pad = (-len(waveform)) % AUDIO_FRAME
    return np.pad(waveform.astype(np.float32), (0, pad)).reshape(-1, AUDIO_FRAME)


def video_timestamps(num_frames: int, fps: float) -> list[str]:
    return [f"{int(s // 60):02d}:{int(s % 60):02d}" for s in (i / fps for i in range(num_frames))]


@dataclass
class Example:
    """One conversation: prompt ids, response ids, media. `task` names the loss it counts towards."""

    task: str
    input_ids: list[int]
    labels: list[int]
    images: list[np.ndarray] = field(default_factory=list)  # (64, 6912) uint8 each
    audio: list[np.ndarray] = field(default_factory=list)  # (n, 640) float32 each
    videos: list[np.ndarray] = field(default_factory=list)  # (frames, 64, 6912) uint8 each


class Encoder:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        t = tokenizer
        self.image_token = MEDIA_TOKENS["image_token"]
        self.audio_token = MEDIA_TOKENS["audio_token"]
        self.video_token = "<|video|>"
        self.boi, self.eoi = MEDIA_TOKENS["boi_token"], MEDIA_TOKENS["eoi_token"]
        self.boa, self.eoa = MEDIA_TOKENS["boa_token"], MEDIA_TOKENS["eoa_token"]
        self.image_id = t.convert_tokens_to_ids(self.image_token)
        self.video_id = t.convert_tokens_to_ids(self.video_token)
        self.audio_id = t.convert_tokens_to_ids(self.audio_token)
        self.pad_id = t.pad_token_id
        self.end_of_turn = t.convert_tokens_to_ids("<end_of_turn>")

    def prompt(self, messages: list[dict[str, Any]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def expand(self, text: str, audio_lengths: Sequence[int] = (), video_frames: Sequence[tuple[int, float]] = ()) -> str:
        """Placeholders -> soft-token runs, as Gemma4UnifiedProcessor writes them."""
        image_run = f"{self.boi}{self.image_token * SOFT_TOKENS}{self.eoi}"
        pieces = text.split(self.image_token)
        text = image_run.join(pieces)
        for n in audio_lengths:
            text = text.replace(self.audio_token, f"{self.boa}\0{self.eoa}", 1).replace("\0", self.audio_token * n, 1)
        for frames, fps in video_frames:
            run = " ".join(f"{ts} {self.boi}\1{self.eoi}" for ts in video_timestamps(frames, fps))
            text = text.replace(self.video_token, run, 1).replace("\1", self.video_token * SOFT_TOKENS)
        return text

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def example(
        self,
        task: str,
        messages: list[dict[str, Any]],
        response: str,
        images: Sequence[np.ndarray] = (),
        audio: Sequence[np.ndarray] = (),
        videos: Sequence[tuple[np.ndarray, float]] = (),
    ) -> Example:
        """messages: the chat so far (user turn last, media as {"type": ...} parts); response: the model's answer."""
        frames = [audio_frames(a) for a in audio]
        text = self.expand(self.prompt(messages), [len(f) for f in frames], [(len(v), fps) for v, fps in videos])
        prompt_ids = self.ids(text)
        answer_ids = self.ids(response) + [self.end_of_turn]
        return Example(
            task=task,
            input_ids=prompt_ids + answer_ids,
            labels=[PAD_LABEL] * len(prompt_ids) + answer_ids,
            images=[patchify(i) for i in images],
            audio=frames,
            videos=[np.stack([patchify(f) for f in v]) for v, _ in videos],
        )

    def collate(self, examples: Sequence[Example]) -> dict[str, Any]:
        """Right-padded numpy batch with the processor's keys (pixels stay uint8; the trainer scales them)."""
        length = max(len(e.input_ids) for e in examples)
        n = len(examples)
        input_ids = np.full((n, length), self.pad_id, dtype=np.int64)
        labels = np.full((n, length), PAD_LABEL, dtype=np.int64)
        attention = np.zeros((n, length), dtype=np.int64)
        for row, e in enumerate(examples):
            input_ids[row, : len(e.input_ids)] = e.input_ids
            labels[row, : len(e.labels)] = e.labels
            attention[row, : len(e.input_ids)] = 1
        types = np.zeros_like(input_ids)
        types[input_ids == self.image_id] = 1
        types[input_ids == self.video_id] = 2
        types[input_ids == self.audio_id] = 3
        batch: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention,
            "mm_token_type_ids": types,
            "labels": labels,
        }
        images = [i for e in examples for i in e.images]
        if images:
            batch["pixel_values"] = _pad_patches(np.stack(images))
            batch["image_position_ids"] = np.broadcast_to(patch_positions(), (len(images), MAX_SOFT_TOKENS, 2)).copy()
        audio = [a for e in examples for a in e.audio]
        if audio:
            frames = max(len(a) for a in audio)
            features = np.zeros((len(audio), frames, AUDIO_FRAME), dtype=np.float32)
            mask = np.zeros((len(audio), frames), dtype=bool)
            for i, a in enumerate(audio):
                features[i, : len(a)] = a
                mask[i, : len(a)] = True
            batch["input_features"], batch["input_features_mask"] = features, mask
        videos = [v for e in examples for v in e.videos]
        if videos:
            batch["pixel_values_videos"] = _pad_patches(np.concatenate(videos))
            total = sum(len(v) for v in videos)
            batch["video_position_ids"] = np.broadcast_to(patch_positions(), (total, MAX_SOFT_TOKENS, 2)).copy()
            batch["num_frames_per_video"] = np.array([len(v) for v in videos], dtype=np.int64)
        return batch


def _pad_patches(patches: np.ndarray) -> np.ndarray:
    out = np.zeros((patches.shape[0], MAX_SOFT_TOKENS, patches.shape[2]), dtype=patches.dtype)
    out[:, :SOFT_TOKENS] = patches
    return out


def to_model_inputs(batch: dict[str, Any], device: str) -> dict[str, Any]:
    """Numpy (or already converted) batch -> tensors on device; uint8 pixels scaled to [0, 1] in float32 exactly as the processors do."""
    import torch

    out = {}
    for key, value in batch.items():
        if key in ("labels", "task_ids"):
            continue
        tensor = torch.as_tensor(value).to(device, non_blocking=True)
        if key == "pixel_values":
            tensor = tensor.to(torch.float32) * (1 / 255)
        elif key == "pixel_values_videos":  # the video processor divides; the two differ in the last bit
            tensor = tensor.to(torch.float32) / 255
        out[key] = tensor
    return out

