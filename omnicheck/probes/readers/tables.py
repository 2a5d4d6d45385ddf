"""Hugging Face datasets as they lie on disk or on the Hub, read in batches of rows.

Three sources give the same `Table`: parquet files (one file, or a folder such as a Hub repository's `data/`),
a `Dataset.save_to_disk` folder (Arrow stream files, one split or a DatasetDict), and `hf:ORG/NAME[:SPLIT]`
(or `hf:ORG/NAME:CONFIG:SPLIT`) through `datasets.load_dataset`, which reads the local Hub cache first. Rows are
read a batch at a time and only the columns asked for, so a 5,000-image set never sits in memory whole.
pyarrow and datasets are imported inside functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from omnicheck.errors import FixtureError, first_line

HF_PREFIX = "hf:"
SPLIT_PREFERENCE = ("test", "validation", "val", "dev", "train")
BATCH_ROWS = 64


@dataclass
class Table:
    """Rows of one split: column names, the HF feature types where the files record them, and a batch reader."""

    where: str  # how messages name it
    columns: list[str]
    features: dict[str, Any]  # column -> HF feature JSON ({"_type": "Image"}, ...); empty when not recorded
    read: Callable[[Sequence[str], int], Iterator[Any]] = field(repr=False)  # (columns, rows) -> pyarrow batches
    root: Path | None = None  # where relative media paths in the rows are looked up
    split: str | None = None

    def feature_type(self, column: str) -> str:
        feature = self.features.get(column) or {}
        return str(feature.get("_type", "")) if isinstance(feature, dict) else ""

    def rows(self, columns: Sequence[str], batch_rows: int = BATCH_ROWS) -> Iterator[dict[str, Any]]:
        for batch in self.read(list(columns), batch_rows):
            yield from batch.to_pylist()


def is_table(data: Path | str) -> bool:
    """Whether `data` names something `open_table` reads (and not, say, a COCO or LibriSpeech folder)."""
    text = str(data)
    if text.startswith(HF_PREFIX):
        return True
    path = Path(text).expanduser()
    if path.is_file():
        return path.suffix in (".parquet", ".arrow")
    if not path.is_dir():
        return False
    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        return True
    return next(iter(_parquet_files(path)), None) is not None


def open_table(data: Path | str) -> Table:
    text = str(data)
    if text.startswith(HF_PREFIX):
        return _from_hub(text)
    path = Path(text).expanduser()
    if path.is_file() and path.suffix == ".parquet":
        return _parquet_table([path], str(path), path.parent, None)
    if path.is_file() and path.suffix == ".arrow":
        return _arrow_table([path], str(path), _features_beside(path.parent), path.parent, None)
    if (path / "dataset_dict.json").is_file():
        split = _choose_split(_dict_splits(path), str(path))
        return _saved_split(path / split, f"{path} (split {split})", split)
    if (path / "state.json").is_file():
        return _saved_split(path, str(path), None)
    files = _parquet_files(path)
    if not files:
        raise FixtureError(f"{path} holds no parquet or Arrow files", "point at a parquet file or folder, or a save_to_disk folder")
    by_split: dict[str, list[Path]] = {}
    for file in files:
        by_split.setdefault(_split_of(file, path), []).append(file)
    split = _choose_split(list(by_split), str(path)) if len(by_split) > 1 else next(iter(by_split))
    chosen = _one_config(by_split[split], path)
    where = f"{path} (split {split})" if split != "all" else str(path)
    return _parquet_table(chosen, where, path, None if split == "all" else split)


# --- parquet ---


def _parquet_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.parquet") if p.is_file() and not any(part.startswith(".") for part in p.parts[-4:]))


def _split_of(file: Path, root: Path) -> str:
    """A Hub layout names the split in the file (data/test-00000-of-00001.parquet) or its folder (main/test/0.parquet)."""
    stem = file.name.split("-")[0].split(".")[0].lower()
    if stem in SPLIT_PREFERENCE:
        return stem
    for parent in file.relative_to(root).parents:
        if parent.name.lower() in SPLIT_PREFERENCE:
            return parent.name.lower()
    return "all"


def _one_config(files: list[Path], root: Path) -> list[Path]:
    """gsm8k's repository holds main/ and socratic/: both have a test split; take main (or default), else ask."""
    tops = {f.relative_to(root).parts[0] for f in files if len(f.relative_to(root).parts) > 1}
    if len({f.parent for f in files}) <= 1 or len(tops) <= 1:
        return files
    for name in ("main", "default"):
        if name in tops:
            return [f for f in files if f.relative_to(root).parts[0] == name]
    raise FixtureError(
        f"{root} holds several configurations ({', '.join(sorted(tops))})",
        "point --omnicheck-data at the folder of the one to run",
    )


def _parquet_table(files: list[Path], where: str, root: Path, split: str | None) -> Table:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(files[0])
    except Exception as err:  # pyarrow's own error family for a broken footer
        raise FixtureError(f"{files[0]} is not a readable parquet file ({first_line(err, 200)})", "replace the file") from None

    def read(columns: Sequence[str], rows: int) -> Iterator[Any]:
        for file in files:
            yield from pq.ParquetFile(file).iter_batches(batch_size=rows, columns=list(columns))

    return Table(where, list(schema.names), _hf_features(schema.metadata), read, root, split)


def _hf_features(metadata: dict[bytes, bytes] | None) -> dict[str, Any]:
    """The `huggingface` key datasets writes into a parquet or Arrow schema: {"info": {"features": {...}}}."""
    raw = (metadata or {}).get(b"huggingface")
    if not raw:
        return {}
    try:
        return dict(json.loads(raw).get("info", {}).get("features", {}))
    except (ValueError, AttributeError):
        return {}


# --- save_to_disk folders and Arrow files ---


def _dict_splits(folder: Path) -> list[str]:
    try:
        return list(json.loads((folder / "dataset_dict.json").read_text())["splits"])
    except (OSError, ValueError, KeyError, TypeError):
        raise FixtureError(f"{folder}/dataset_dict.json is unreadable", "save the dataset again with save_to_disk") from None


def _saved_split(folder: Path, where: str, split: str | None) -> Table:
    try:
        state = json.loads((folder / "state.json").read_text())
        files = [folder / f["filename"] for f in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise FixtureError(f"{folder}/state.json is unreadable", "save the dataset again with save_to_disk") from None
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FixtureError(f"{folder} lacks {', '.join(missing)} that its state.json lists", "copy the whole folder")
    return _arrow_table(files, where, _features_beside(folder), folder, split)


def _features_beside(folder: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((folder / "dataset_info.json").read_text()).get("features") or {})
    except (OSError, ValueError, AttributeError):
        return {}


def _arrow_table(files: list[Path], where: str, features: dict[str, Any], root: Path, split: str | None) -> Table:
    import pyarrow as pa

    def open_stream(file: Path):
        try:
            return pa.ipc.open_stream(pa.OSFile(str(file)))
        except pa.ArrowInvalid:  # the file format (with a footer) instead of the stream format
            return pa.ipc.open_file(pa.OSFile(str(file)))

    reader = open_stream(files[0])
    schema = reader.schema
    features = features or _hf_features(schema.metadata)

    def read(columns: Sequence[str], rows: int) -> Iterator[Any]:
        # batches are read one at a time (not memory-mapped), so resident memory stays one batch deep
        for file in files:
            stream = open_stream(file)
            batches = stream if hasattr(stream, "__iter__") else (stream.get_batch(i) for i in range(stream.num_record_batches))
            for batch in batches:
                for start in range(0, batch.num_rows, rows):
                    yield batch.select(list(columns)).slice(start, rows)

    return Table(where, list(schema.names), features, read, root, split)


def _choose_split(splits: Sequence[str], where: str) -> str:
    for name in SPLIT_PREFERENCE:
        if name in splits:
            return name
    if len(splits) == 1:
        return splits[0]
    raise FixtureError(f"{where} holds splits {', '.join(splits)} and none is test or validation",
                       "point --omnicheck-data at the split's own folder or file")


# --- the Hub, through datasets ---


def parse_hub_id(spec: str) -> tuple[str, str | None, str | None]:
    """hf:ORG/NAME[:SPLIT] or hf:ORG/NAME:CONFIG:SPLIT -> (name, config, split)."""
    parts = spec[len(HF_PREFIX):].split(":")
    if not parts[0] or parts[0].count("/") != 1 or len(parts) > 3 or not all(parts):
        raise FixtureError(f"{spec!r} is not a Hub dataset id", "write hf:ORG/NAME, hf:ORG/NAME:SPLIT or hf:ORG/NAME:CONFIG:SPLIT")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return parts[0], None, parts[1] if len(parts) == 2 else None


def _from_hub(spec: str) -> Table:
    name, config, split = parse_hub_id(spec)
    dataset = load_hub_dataset(spec, name, config, split)
    if hasattr(dataset, "keys"):  # a DatasetDict: no split named
        split = _choose_split(list(dataset.keys()), spec)
        dataset = dataset[split]
    files = [Path(f["filename"]) for f in dataset.cache_files]
    features = dataset.features.to_dict() if hasattr(dataset.features, "to_dict") else {}
    if files and all(f.is_file() for f in files):
        return _arrow_table(files, f"{spec} (split {split})", features, files[0].parent, split)
    table = dataset.data.table

    def read(columns: Sequence[str], rows: int) -> Iterator[Any]:
        yield from table.select(list(columns)).to_batches(max_chunksize=rows)

    return Table(f"{spec} (split {split})", list(table.column_names), features, read, None, split)


def load_hub_dataset(spec: str, name: str, config: str | None, split: str | None):
    """The local Hub cache first (works offline); the Hub itself only when the cache has nothing and the
    environment allows it. Unreachable: one line saying how to bring the data over."""
    import datasets

    hint = f"'{name}'" + (f", '{config}'" if config else "") + (f", split='{split}'" if split else "")
    fix = (f"where the Hub is reachable run python -c \"import datasets; datasets.load_dataset({hint})"
           f".save_to_disk('DIR')\", copy DIR here and pass --omnicheck-data PROBE=DIR")
    offline = bool(datasets.config.HF_HUB_OFFLINE)
    try:
        return _load(name, config, split, offline=True)
    except Exception as err:  # noqa: BLE001 - a cache miss has no single type across datasets versions
        cache_miss = err
    if offline:
        raise FixtureError(f"{spec}: not in the local Hugging Face cache and the Hub is switched off "
                           f"(HF_HUB_OFFLINE): {first_line(cache_miss)}", fix) from None
    try:
        return _load(name, config, split, offline=False)
    except Exception as err:  # noqa: BLE001
        text = f"{type(err).__name__}: {err}"
        if any(word in text for word in ("ConnectionError", "reach", "offline", "LocalEntryNotFound", "resolve", "Timeout")):
            raise FixtureError(f"{spec}: the Hugging Face Hub cannot be reached from here and the dataset is not "
                               "in the local cache", fix) from None
        raise FixtureError(f"{spec}: datasets.load_dataset failed: {first_line(err, 200)}",
                           "check the id, config and split on the dataset's Hub page (hf:ORG/NAME:CONFIG:SPLIT)") from None


def _load(name: str, config: str | None, split: str | None, offline: bool):
    import datasets

    saved = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = offline or saved
    try:
        return datasets.load_dataset(name, config, split=split)
    finally:
        datasets.config.HF_HUB_OFFLINE = saved
