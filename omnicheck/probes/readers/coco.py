"""Caption sets in COCO's annotation schema, and Karpathy's split files.

COCO (and NoCaps, and Flickr30k or COCO's Karpathy splits converted to it): a JSON with `images` [{id, file_name}]
and `annotations` [{image_id, caption}], several captions per image, found as `annotations/captions_*.json` in
a folder (or given as the file itself), the photos in the folder the name points to (`val2017/` beside
`annotations/` for captions_val2017.json), `images/`, or beside the JSON. Karpathy's `dataset_coco.json` /
`dataset_flickr30k.json`: `images` [{filename, filepath?, split, sentences [{raw}]}]; the test split is read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from omnicheck.errors import FixtureError
from omnicheck.probes.readers import MediaSet, Record

IMAGE_DIRS = ("images", "Images", "flickr30k-images", "flickr30k_images", "validation", "val", "test")
KARPATHY_SPLITS = ("test", "val")


def is_coco(data: Path) -> bool:
    data = Path(data)
    if data.is_file():
        return data.suffix == ".json"
    return bool(_candidates(data))


def _candidates(folder: Path) -> list[Path]:
    found = sorted(folder.glob("annotations/captions_*.json")) + sorted(folder.glob("annotations/*captions*.json"))
    found += sorted(folder.glob("captions_*.json")) + sorted(folder.glob("*captions*.json"))
    found += sorted(folder.glob("dataset_*.json")) + sorted(folder.glob("annotations/dataset_*.json"))
    return list(dict.fromkeys(found))


def annotation_file(data: Path) -> Path:
    data = Path(data).expanduser()
    if data.is_file():
        return data
    found = _candidates(data)
    if not found:
        raise FixtureError(f"no captions JSON in {data} (looked for annotations/captions_*.json and dataset_*.json)",
                           "point --omnicheck-data at a COCO folder or at the captions JSON itself")
    if len(found) == 1:
        return found[0]
    for split in ("test", "val"):
        picks = [p for p in found if split in p.stem]
        if len(picks) == 1:
            return picks[0]
    raise FixtureError(f"{data} holds several caption files ({', '.join(p.name for p in found)})",
                       "point --omnicheck-data at the one to run")


def read_coco(data: Path) -> MediaSet:
    """Every image that has captions, with all its captions; every image file must exist."""
    path = annotation_file(data)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FixtureError(f"{path} is not readable JSON ({err})", "restore the annotation file") from None
    images = document.get("images") if isinstance(document, dict) else None
    if not isinstance(images, list):
        raise FixtureError(f"{path} has no 'images' list", "use COCO's caption schema: images + annotations")
    if "annotations" in document:
        records, names = _coco_records(path, images, document["annotations"])
    else:
        records, names = _karpathy_records(path, images)
    roots = _image_roots(path, names)
    missing = [name for name in names.values() if not any((root / name).is_file() for root in roots)]
    if missing:
        raise FixtureError(
            f"{path} names {len(missing)} of {len(names)} images that are not there (first: {missing[0]}; "
            f"looked in {', '.join(str(r) for r in roots[:3])})",
            f"put the images where the annotations point ({roots[0] / missing[0]}), or point --omnicheck-data at "
            "the folder that holds annotations/ and the image folder",
        )
    located = []
    for record in records:
        name = names[record.id]
        located.append(Record(record.id, next(r / name for r in roots if (r / name).is_file()), record.texts))
    return MediaSet(str(path), "image", located, roots=tuple(roots), text_files=(path,))


def _coco_records(path: Path, images: list[Any], annotations: Any) -> tuple[list[Record], dict[str, str]]:
    if not isinstance(annotations, list):
        raise FixtureError(f"{path}: 'annotations' is not a list", "use COCO's caption schema")
    captions: dict[str, list[str]] = {}
    for number, note in enumerate(annotations):
        if not isinstance(note, dict) or "image_id" not in note or not isinstance(note.get("caption"), str):
            raise FixtureError(f"{path}: annotation {number} lacks image_id or caption",
                               "each annotation needs image_id and caption (COCO's caption schema)")
        if note["caption"].strip():
            captions.setdefault(str(note["image_id"]), []).append(note["caption"].strip())
    names: dict[str, str] = {}
    records = []
    for number, image in enumerate(images):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise FixtureError(f"{path}: image {number} lacks id or file_name", "each image needs id and file_name")
        key = str(image["id"])
        if key in captions and key not in names:
            names[key] = image["file_name"]
            records.append(Record(key, None, tuple(captions[key])))
    if not records:
        raise FixtureError(f"{path}: no image has a caption", "check that annotations' image_id match images' id")
    return records, names


def _karpathy_records(path: Path, images: list[Any]) -> tuple[list[Record], dict[str, str]]:
    splits = {str(i.get("split")) for i in images if isinstance(i, dict)}
    split = next((s for s in KARPATHY_SPLITS if s in splits), None)
    names: dict[str, str] = {}
    records = []
    for image in images:
        if not isinstance(image, dict) or not isinstance(image.get("filename"), str):
            raise FixtureError(f"{path}: an image lacks filename", "use Karpathy's schema (filename, split, sentences)")
        if split and image.get("split") != split:
            continue
        key = str(image.get("cocoid", image.get("imgid", Path(image["filename"]).stem)))
        texts = tuple(s["raw"].strip() for s in image.get("sentences", []) if isinstance(s, dict) and str(s.get("raw", "")).strip())
        if texts and key not in names:
            names[key] = str(Path(image.get("filepath", "")) / image["filename"])
            records.append(Record(key, None, texts))
    if not records:
        raise FixtureError(f"{path}: no image of split {split or 'any'} has sentences", "check the file")
    return records, names


def _image_roots(path: Path, names: dict[str, str]) -> list[Path]:
    """Folders to look for images in, the most specific first; the first that holds the first image leads."""
    base = path.parent.parent if path.parent.name == "annotations" else path.parent
    split = re.sub(r"^(captions|nocaps)_", "", path.stem)  # captions_val2017 -> val2017
    split = re.sub(r"_\d+_captions$", "", split)  # nocaps_val_4500_captions -> nocaps_val
    roots = [base / split, base / "images" / split, base, path.parent, *(base / d for d in IMAGE_DIRS)]
    roots = list(dict.fromkeys(roots))
    first = next(iter(names.values()), "")
    roots.sort(key=lambda r: not (r / first).is_file())
    return roots
