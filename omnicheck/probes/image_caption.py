"""image_caption: does the model still see? One-sentence captions of real photos.

Data: fixtures/images/ -- ten photos from scikit-image, scikit-learn and matplotlib, downscaled, each with
reference captions and key objects written for omnicheck (captions.jsonl; provenance in the manifest).
A user set in the same schema replaces it: --omnicheck-data image_caption=DIR_OR_JSONL.
Scores: object_recall (share of key objects named, synonyms and word forms accepted), similarity (best
MiniLM cosine to a reference), empty (no words at all). Counterfactual: the same question about a blank
grey picture of the same size, which a model that really looks must answer differently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from omnicheck.digest import digest_files
from omnicheck.fixtures import fixture_dir, verify_manifest
from omnicheck.probes import common
from omnicheck.probes.base import Probe, user_message
from omnicheck.types import GenerationSettings, ImagePart, Metric, Modality, Sample

PROMPT = "Describe this image in one sentence."
GREY = (128, 128, 128)


class ImageCaption(Probe):
    name = "image_caption"
    modality = Modality.IMAGE
    version = "1"
    metrics = [
        Metric("object_recall", higher_is_better=True, kind="continuous"),
        Metric("similarity", higher_is_better=True, kind="continuous"),
        Metric("empty", higher_is_better=False, kind="binary"),
    ]
    smoke_size: ClassVar[int] = 4
    settings = GenerationSettings(max_new_tokens=48)

    def load_samples(self, tier: str) -> list[Sample]:
        if not self.data:
            verify_manifest("images")
        items = common.read_described(self.references_file(), "key_objects")
        chosen = common.select(items, tier, self.smoke_size)
        if self.data:
            for item in chosen:
                common.check_media(item.path, "image")
        return [self._sample(item) for item in chosen]

    @staticmethod
    def _sample(item: common.Described) -> Sample:
        return Sample(
            id=item.id,
            messages=user_message(ImagePart(item.path), PROMPT),
            target=item.references,
            meta={"key_objects": item.key_terms},
        )

    def score(self, sample: Sample, output: str) -> dict[str, float]:
        return common.description_scores(output, sample.target, sample.meta["key_objects"], "object_recall")

    def extra(self, sample: Sample, output: str) -> dict[str, Any]:
        return common.term_report(output, sample.meta["key_objects"])

    def counterfactual(self, sample: Sample) -> Sample:
        image = next(p for p in sample.messages[-1].parts if isinstance(p, ImagePart))
        blank = grey_image_like(image.path)
        return Sample(
            id=sample.id,
            messages=user_message(ImagePart(blank), PROMPT),
            target=sample.target,
            meta={**sample.meta, "counterfactual": "grey image of the same size"},
        )

    def references_file(self) -> Path:
        return common.user_jsonl(self.data, "captions.jsonl") if self.data else fixture_dir("images") / "captions.jsonl"

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "prompt": PROMPT,
                "references": digest_files([self.references_file()]), "similarity": common.encoder_info()}


def grey_image_like(path: Path) -> Path:
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    target = common.counterfactual_dir() / f"grey-{width}x{height}.png"
    return common.write_once(target, lambda tmp: Image.new("RGB", (width, height), GREY).save(tmp, format="PNG"))
