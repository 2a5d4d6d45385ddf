"""Which reader a user's path needs, decided by what the path holds, for the probes that read described media."""

from __future__ import annotations

from pathlib import Path

from omnicheck.errors import FixtureError
from omnicheck.probes.common import read_described
from omnicheck.probes.readers import Layout, MediaSet, Record, is_table, open_table, table_records


def described_media(data: Path | str, own_file: str, terms_field: str, layout: Layout, probe: str, kind: str,
                    coco: bool = False) -> MediaSet:
    """omnicheck's own JSONL (`own_file` or its folder), a Hugging Face table, or (for photos) a COCO set."""
    if is_table(data):
        return table_records(open_table(data), layout, probe, kind)
    path = Path(str(data)).expanduser()
    own = path if path.suffix == ".jsonl" else path / own_file
    if own.is_file():
        return own_media(own, terms_field, kind)
    if coco:
        from omnicheck.probes.readers.coco import is_coco, read_coco

        if path.exists() and is_coco(path):
            return read_coco(path)
    others = "COCO captions, parquet or save_to_disk data" if coco else "parquet or save_to_disk data"
    raise FixtureError(f"no {own_file} at {path}, nor {others}",
                       f"point --omnicheck-data {probe}=... at one of them (the probe's docstring lists the layouts)")


def own_media(jsonl: Path, terms_field: str, kind: str) -> MediaSet:
    items = read_described(jsonl, terms_field)
    records = [Record(i.id, i.path, tuple(i.references), tuple(tuple(t) for t in i.key_terms)) for i in items]
    return MediaSet(str(jsonl), kind, records, roots=(jsonl.parent,), text_files=(jsonl,))
