"""image_caption: does the model still see? One-sentence captions of real photos.

Data: fixtures/images/ -- photos from scikit-image, scikit-learn, matplotlib and other packages, downscaled, each
with reference captions and key objects written for omnicheck (captions.jsonl; provenance in the manifest).
--omnicheck-data image_caption=PATH replaces it with, decided by what PATH holds:
- a captions.jsonl in the bundled schema (or its folder);
- a COCO caption set: a folder with annotations/captions_*.json and the photos it names (NoCaps, and Flickr30k or
  COCO Karpathy splits in COCO form, alike), or Karpathy's dataset_*.json (its test split);
- a Hugging Face dataset: parquet file or folder, save_to_disk folder, or hf:ORG/NAME[:SPLIT], with an Image
  column and a caption column (a string or a list of strings) named as in LAYOUT (lmms-lab/COCO-Caption's
  image + answer, Flickr30k's image + caption, NoCaps' annotations_captions...).
Scores: object_recall (share of key objects named, synonyms and word forms accepted; derived from the
references when the data has none), similarity (best MiniLM cosine to a reference), cider_d (CIDEr-D against
the references), empty (no words at all). Counterfactual: the same question about a blank grey picture of the
same size, which a model that really looks must answer differently.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from omnicheck.probes import common
from omnicheck.probes.base import user_message
from omnicheck.probes.described import DescribedProbe, media_path
from omnicheck.probes.readers import Layout, Record
from omnicheck.types import GenerationSettings, ImagePart, Metric, Modality, Sample

PROMPT = "Describe this image in one sentence."
GREY = (128, 128, 128)
LAYOUT = Layout(
    what="photos with captions",
    media_feature="Image",
    media=("image", "img", "jpg", "png", "image_path", "file_name", "filename"),
    texts=("answer", "captions", "caption", "sentences", "annotations_captions", "references", "raw", "text"),
    ids=("question_id", "image_id", "id", "img_id", "cocoid", "image_file_name", "file_name", "filename"),
    key_terms=("key_objects",),
    media_dirs=("images", "val2014", "val2017"),
)


class ImageCaption(DescribedProbe):
    name = "image_caption"
    modality = Modality.IMAGE
    version = "2"
    metrics = [
        Metric("object_recall", higher_is_better=True, kind="continuous", chance=0.0),
        Metric("similarity", higher_is_better=True, kind="continuous", chance=0.0),
        Metric("cider_d", higher_is_better=True, kind="continuous", chance=0.0),
        Metric("empty", higher_is_better=False, kind="binary"),
    ]
    smoke_size: ClassVar[int] = 4
    settings = GenerationSettings(max_new_tokens=48)
    fixtures, own_file, terms_field, recall_name = "images", "captions.jsonl", "key_objects", "object_recall"
    layout, reads_coco, prompt = LAYOUT, True, PROMPT

    def sample(self, record: Record, key_terms: list[list[str]]) -> Sample:
        return Sample(
            id=record.id,
            messages=user_message(ImagePart(media_path(record)), PROMPT),
            target=list(record.texts),
            meta=self.meta(record, key_terms),
        )

    def counterfactual(self, sample: Sample) -> Sample:
        image = next(p for p in sample.messages[-1].parts if isinstance(p, ImagePart))
        blank = grey_image_like(image.path)
        return Sample(
            id=sample.id,
            messages=user_message(ImagePart(blank), PROMPT),
            target=sample.target,
            meta={**sample.meta, "counterfactual": "grey image of the same size"},
        )


def grey_image_like(path: Path) -> Path:
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    target = common.counterfactual_dir() / f"grey-{width}x{height}.png"
    return common.write_once(target, lambda tmp: Image.new("RGB", (width, height), GREY).save(tmp, format="PNG"))
