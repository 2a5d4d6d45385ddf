"""User data in the layouts it is published in, read as it is: COCO caption folders, Karpathy split files, and
Hugging Face datasets (parquet files and folders, save_to_disk folders, hf: ids) in the column layouts of
lmms-lab/COCO-Caption, openslr/librispeech_asr, MSR-VTT, openai/gsm8k and google/IFEval.

The real sets cannot be downloaded here, so each test writes a small one with the real `datasets` / pyarrow
libraries, with the same column names and feature types as the dataset's card, from the bundled media."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from omnicheck.errors import FixtureError
from omnicheck.probes import load_probe
from omnicheck.probes.readers import open_table
from omnicheck.probes.readers.tables import parse_hub_id

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PHOTOS = ("chelsea", "coffee", "horse")
CAPTIONS = {
    "chelsea": ["A tabby cat looks at the camera.", "Close up of a cat's face with green eyes.",
                "An orange and grey cat staring ahead."],
    "coffee": ["A cup of coffee on a saucer.", "Espresso in a white cup with a spoon on a saucer.",
               "A coffee cup seen from above on a table."],
    "horse": ["A black silhouette of a running horse.", "A drawing of a horse galloping.",
              "A horse shape in black on white."],
}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OMNICHECK_CACHE", str(tmp_path / "omnicheck-cache"))


def _media(sample) -> list[Path]:
    return [p.path for m in sample.messages for p in m.media()]


def _jpeg(name: str) -> bytes:
    return (FIXTURES / "images" / f"{name}.jpg").read_bytes()


# --- COCO and Karpathy ---


def _coco_folder(root: Path) -> dict[str, str]:
    """COCO 2017's layout: annotations/captions_val2017.json beside val2017/ with 12-digit file names."""
    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    images, annotations, names = [], [], {}
    for number, photo in enumerate(PHOTOS, start=139):
        name = f"{number:012d}.jpg"
        (root / "val2017" / name).write_bytes(_jpeg(photo))
        images.append({"license": 4, "file_name": name, "coco_url": f"http://images.cocodataset.org/val2017/{name}",
                       "height": 384, "width": 384, "date_captured": "2013-11-21 01:34:01", "id": number})
        annotations += [{"image_id": number, "id": 1000 * number + i, "caption": c} for i, c in enumerate(CAPTIONS[photo])]
        names[str(number)] = photo
    document = {"info": {"description": "COCO 2017 Dataset"}, "licenses": [], "images": images, "annotations": annotations}
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps(document))
    return names


def test_a_coco_folder_is_scored_item_by_item_as_published(tmp_path):
    names = _coco_folder(tmp_path / "coco")
    probe = load_probe("image_caption", tmp_path / "coco")
    samples = probe.load_samples("full")
    assert [s.id for s in samples] == list(names)
    for sample in samples:
        photo = names[sample.id]
        assert sample.target == CAPTIONS[photo]
        assert _media(sample)[0].read_bytes() == _jpeg(photo)
        assert sample.meta["key_terms_derived"] is True
    cat = samples[0]
    assert ["cat"] in cat.meta["key_objects"]  # shared by all three captions
    right, wrong = probe.score(cat, "A grey cat with green eyes looks at the camera."), probe.score(cat, "A cup of coffee.")
    assert right["object_recall"] > wrong["object_recall"] and right["cider_d"] > wrong["cider_d"] > -1e-9
    assert right["similarity"] > wrong["similarity"]
    # the annotation file itself works too, and a changed caption changes the fingerprint
    same = load_probe("image_caption", tmp_path / "coco" / "annotations" / "captions_val2017.json")
    assert [s.id for s in same.load_samples("full")] == list(names)
    before = same.fingerprint()["references"]
    path = tmp_path / "coco" / "annotations" / "captions_val2017.json"
    path.write_text(path.read_text().replace("tabby", "striped"))
    assert load_probe("image_caption", path).fingerprint()["references"] != before


def test_a_coco_file_naming_missing_images_is_one_line(tmp_path):
    _coco_folder(tmp_path / "coco")
    (tmp_path / "coco" / "val2017" / "000000000140.jpg").unlink()
    with pytest.raises(FixtureError, match=r"names 1 of 3 images that are not there \(first: 000000000140\.jpg") as err:
        load_probe("image_caption", tmp_path / "coco").load_samples("full")
    assert "\n" not in str(err.value) and "fix:" in str(err.value)


def test_karpathy_split_file_reads_its_test_split(tmp_path):
    (tmp_path / "flickr30k-images").mkdir()
    images = []
    for index, photo in enumerate(PHOTOS):
        name = f"{1000092795 + index}.jpg"
        (tmp_path / "flickr30k-images" / name).write_bytes(_jpeg(photo))
        images.append({"filename": name, "imgid": index, "split": "test" if index < 2 else "train",
                       "sentids": [0, 1, 2], "sentences": [{"raw": c, "tokens": c.lower().split()} for c in CAPTIONS[photo]]})
    (tmp_path / "dataset_flickr30k.json").write_text(json.dumps({"images": images, "dataset": "flickr30k"}))
    samples = load_probe("image_caption", tmp_path).load_samples("full")
    assert [s.target for s in samples] == [CAPTIONS["chelsea"], CAPTIONS["coffee"]]


def test_one_unreadable_photo_is_skipped_with_its_reason(tmp_path):
    names = _coco_folder(tmp_path / "coco")
    (tmp_path / "coco" / "val2017" / "000000000140.jpg").write_bytes(_jpeg("coffee")[:600])  # truncated JPEG
    probe = load_probe("image_caption", tmp_path / "coco")
    samples = probe.load_samples("full")
    assert [s.id for s in samples] == [k for k in names if k != "140"]
    (skipped,) = probe.skipped
    assert skipped["id"] == "140" and "000000000140.jpg cannot be read" in skipped["reason"]


# --- Hugging Face tables: image captions ---


def _coco_caption_dataset(rows: int = 3):
    """lmms-lab/COCO-Caption2017's columns and feature types: question_id, image (Image), question, answer (list of
    str), id, license, file_name, coco_url, height, width, date_captured."""
    from datasets import Dataset, Features, Image, List, Value

    features = Features({
        "question_id": Value("string"), "image": Image(), "question": Value("string"),
        "answer": List(Value("string")), "id": Value("int64"), "license": Value("int8"),
        "file_name": Value("string"), "coco_url": Value("string"), "height": Value("int32"),
        "width": Value("int32"), "date_captured": Value("string"),
    })
    photos = [PHOTOS[i % len(PHOTOS)] for i in range(rows)]
    return Dataset.from_dict({
        "question_id": [f"{i:012d}.jpg" for i in range(rows)],
        "image": [{"bytes": _jpeg(p), "path": None} for p in photos],
        "question": ["Provide a one-sentence caption for the provided image."] * rows,
        "answer": [CAPTIONS[p] for p in photos],
        "id": list(range(rows)), "license": [3] * rows, "file_name": [f"{i:012d}.jpg" for i in range(rows)],
        "coco_url": [""] * rows, "height": [384] * rows, "width": [384] * rows, "date_captured": [""] * rows,
    }, features=features), photos


@pytest.mark.parametrize("form", ["parquet-file", "parquet-folder", "save_to_disk", "dataset_dict"])
def test_a_coco_caption_dataset_is_read_in_its_published_forms(tmp_path, form):
    from datasets import DatasetDict

    dataset, photos = _coco_caption_dataset()
    if form == "parquet-file":
        path = tmp_path / "val.parquet"
        dataset.to_parquet(str(path))
    elif form == "parquet-folder":  # a Hub repository: data/<split>-00000-of-00001.parquet, test preferred
        path = tmp_path / "repo"
        (path / "data").mkdir(parents=True)
        dataset.to_parquet(str(path / "data" / "val-00000-of-00001.parquet"))
        dataset.select([0]).to_parquet(str(path / "data" / "train-00000-of-00001.parquet"))
    elif form == "save_to_disk":
        path = tmp_path / "saved"
        dataset.save_to_disk(str(path))
    else:
        path = tmp_path / "dict"
        DatasetDict({"train": dataset.select([0]), "test": dataset}).save_to_disk(str(path))
    probe = load_probe("image_caption", path)
    samples = probe.load_samples("full")
    assert [s.id for s in samples] == [f"{i:012d}.jpg" for i in range(3)]
    for sample, photo in zip(samples, photos):
        assert sample.target == CAPTIONS[photo]
        assert _media(sample)[0].read_bytes() == _jpeg(photo)  # the Image cell's bytes, as a file
        assert _media(sample)[0].suffix == ".jpg"
    assert probe.score(samples[0], CAPTIONS[photos[0]][0])["cider_d"] > probe.score(samples[0], "a horse")["cider_d"]


def test_a_parquet_file_with_unknown_columns_is_one_line(tmp_path):
    from datasets import Dataset

    Dataset.from_dict({"picture_bytes": [b"x"], "label": [3]}).to_parquet(str(tmp_path / "odd.parquet"))
    with pytest.raises(FixtureError, match=r"odd\.parquet has columns picture_bytes, label: none holds the "
                                           r"reference texts for image_caption \(looked for answer, captions") as err:
        load_probe("image_caption", tmp_path / "odd.parquet").load_samples("full")
    assert "\n" not in str(err.value) and "fix: rename the column" in str(err.value)


def test_media_are_materialized_only_for_the_chosen_rows(tmp_path):
    dataset, _ = _coco_caption_dataset(rows=9)
    dataset.to_parquet(str(tmp_path / "nine.parquet"))
    probe = load_probe("image_caption", tmp_path / "nine.parquet")
    smoke = probe.load_samples("smoke")
    assert len(smoke) == probe.smoke_size
    written = list((tmp_path / "omnicheck-cache" / "media").rglob("*.jpg"))
    assert 1 <= len(written) <= len(PHOTOS)  # content-addressed: the same photo is one file
    assert {p for s in smoke for p in _media(s)} <= set(written)


# --- speech: openslr/librispeech_asr ---


def _flac(seconds: float = 1.0, rate: int = 16000) -> bytes:
    import soundfile as sf

    bundled = sorted((FIXTURES / "speech" / "9001" / "1").glob("*.flac"))[0]
    audio, source_rate = sf.read(bundled, frames=int(seconds * rate))
    out = io.BytesIO()
    sf.write(out, audio, source_rate, format="FLAC")
    return out.getvalue()


def _librispeech_dataset(audio_cells: list[dict]):
    """openslr/librispeech_asr's features: file (string), audio (Audio 16 kHz), text, speaker_id, chapter_id, id.
    Written through datasets' cast to Audio (no encoding step: the cells already hold FLAC bytes)."""
    from datasets import Audio, Dataset, Features, Value

    rows = len(audio_cells)
    ids = [f"1089-134686-{i:04d}" for i in range(rows)]
    plain = Dataset.from_dict({
        "file": [f"/root/LibriSpeech/test-clean/1089/134686/{i}.flac" for i in ids],
        "audio": audio_cells,
        "text": ["HE HOPED THERE WOULD BE STEW FOR DINNER", "TURNIPS AND CARROTS AND BRUISED POTATOES",
                 "AND FAT MUTTON PIECES"][:rows],
        "speaker_id": [1089] * rows, "chapter_id": [134686] * rows, "id": ids,
    })
    features = Features({"file": Value("string"), "audio": Audio(sampling_rate=16000), "text": Value("string"),
                         "speaker_id": Value("int64"), "chapter_id": Value("int64"), "id": Value("string")})
    return plain.cast(features)


def test_a_librispeech_parquet_file_is_scored_item_by_item(tmp_path):
    dataset = _librispeech_dataset([{"bytes": _flac(1.0 + i / 4), "path": f"1089-134686-{i:04d}.flac"} for i in range(3)])
    dataset.to_parquet(str(tmp_path / "test.clean-00000-of-00001.parquet"))
    table = open_table(tmp_path / "test.clean-00000-of-00001.parquet")
    assert table.feature_type("audio") == "Audio"
    probe = load_probe("speech_wer", tmp_path / "test.clean-00000-of-00001.parquet")
    samples = probe.load_samples("full")
    assert [s.id for s in samples] == [f"1089-134686-{i:04d}" for i in range(3)]
    assert all(s.meta["speaker"] == "1089" and _media(s)[0].suffix == ".flac" for s in samples)
    assert [probe.score(s, s.target)["wer"] for s in samples] == [0.0, 0.0, 0.0]
    assert probe.score(samples[0], "he hoped there would be soup")["wer"] > 0.0


def test_one_unreadable_utterance_is_skipped_and_the_rest_run(tmp_path):
    cells = [{"bytes": _flac(), "path": "a.flac"}, {"bytes": b"fLaC" + b"\0" * 64, "path": "b.flac"},
             {"bytes": _flac(1.5), "path": "c.flac"}]
    _librispeech_dataset(cells).save_to_disk(str(tmp_path / "saved"))
    probe = load_probe("speech_wer", tmp_path / "saved")
    assert [s.id for s in probe.load_samples("full")] == ["1089-134686-0000", "1089-134686-0002"]
    assert [s["id"] for s in probe.skipped] == ["1089-134686-0001"] and "cannot be read" in probe.skipped[0]["reason"]


# --- video: MSR-VTT style ---


def test_an_msr_vtt_style_table_merges_captions_and_finds_clips(tmp_path):
    from datasets import Dataset

    (tmp_path / "videos").mkdir()
    for number, clip in ((7010, "bikes"), (7011, "carphone_pristine")):
        shutil.copy(FIXTURES / "video" / f"{clip}.mp4", tmp_path / "videos" / f"video{number}.mp4")
    rows = {"video_id": ["video7010", "video7010", "video7011", "video7011"],
            "video": ["video7010.mp4", "video7010.mp4", "video7011.mp4", "video7011.mp4"],
            "caption": ["cars drive down a city street", "a cyclist rides past parked cars",
                        "a man in a bow tie talks in a car", "a man is talking while driving"],
            "category": [11, 11, 3, 3]}
    Dataset.from_dict(rows).to_parquet(str(tmp_path / "test_1k.parquet"))
    probe = load_probe("video_describe", tmp_path / "test_1k.parquet")
    samples = probe.load_samples("full")
    assert [s.id for s in samples] == ["video7010", "video7011"]
    assert samples[1].target == rows["caption"][2:]
    assert _media(samples[0]) == [tmp_path / "videos" / "video7010.mp4"]
    assert probe.score(samples[1], "A man talks in a car.")["concept_recall"] > probe.score(samples[1], "Bikes.")["concept_recall"]


# --- text sets: openai/gsm8k and google/IFEval ---


def test_gsm8k_as_published_in_a_hub_folder(tmp_path):
    from datasets import Dataset

    rows = {"question": ["Tom has 3 apples and buys 2 more. How many apples does he have?"] * 2,
            "answer": ["He has 3 + 2 = <<3+2=5>>5 apples.\n#### 5", "3 + 2 = 5\n#### 5"]}
    for config in ("main", "socratic"):
        (tmp_path / config).mkdir()
        Dataset.from_dict(rows).to_parquet(str(tmp_path / config / "test-00000-of-00001.parquet"))
        Dataset.from_dict(rows).to_parquet(str(tmp_path / config / "train-00000-of-00001.parquet"))
    probe = load_probe("gsm8k", tmp_path)
    samples = probe.load_samples("full")
    assert [s.target for s in samples] == ["5", "5"]
    assert "main" in str(open_table(tmp_path).where) or open_table(tmp_path).split == "test"
    written = [json.loads(line) for line in probe.test_file().read_text().splitlines()]
    assert written == [{"question": q, "answer": a} for q, a in zip(rows["question"], rows["answer"])]


def test_ifeval_as_published_drops_the_null_kwargs(tmp_path):
    from datasets import Dataset, Features, List, Value

    kwargs = Features({"num_words": Value("int64"), "relation": Value("string"), "keywords": List(Value("string"))})
    features = Features({"key": Value("int64"), "prompt": Value("string"),
                         "instruction_id_list": List(Value("string")), "kwargs": List(kwargs)})
    rows = {"key": [1000, 1001], "prompt": ["Write a haiku about rain. Use fewer than 40 words.", "Describe a cat."],
            "instruction_id_list": [["length_constraints:number_words"], ["keywords:existence"]],
            "kwargs": [[{"num_words": 40, "relation": "less than", "keywords": None}],
                       [{"num_words": None, "relation": None, "keywords": ["whiskers"]}]]}
    Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / "ifeval.parquet"))
    probe = load_probe("ifeval", tmp_path / "ifeval.parquet")
    samples = probe.load_samples("full")
    assert [s.id for s in samples] == ["1000", "1001"]
    assert samples[0].target["kwargs"] == [{"num_words": 40, "relation": "less than"}]
    assert samples[1].target["kwargs"] == [{"keywords": ["whiskers"]}]


# --- hf: ids ---


def test_hub_ids_parse_and_an_offline_hub_is_one_line(monkeypatch):
    import datasets

    assert parse_hub_id("hf:openslr/librispeech_asr:test") == ("openslr/librispeech_asr", None, "test")
    assert parse_hub_id("hf:openai/gsm8k:main:test") == ("openai/gsm8k", "main", "test")
    with pytest.raises(FixtureError, match="is not a Hub dataset id"):
        parse_hub_id("hf:gsm8k")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # no hub here: say so without waiting on retries
    with pytest.raises(FixtureError, match=r"hf:openai/gsm8k:main:test: not in the local Hugging Face cache") as err:
        load_probe("gsm8k", Path("hf:openai/gsm8k:main:test")).load_samples("full")
    message = str(err.value)
    assert "\n" not in message and "save_to_disk('DIR')" in message and "--omnicheck-data PROBE=DIR" in message
