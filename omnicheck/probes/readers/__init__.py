"""Evaluation data as users hold it on disk, for the probes that several formats feed.

- tables.py: Hugging Face parquet files or folders, `save_to_disk` folders, `hf:ORG/NAME[:SPLIT]`;
- coco.py: COCO caption annotations (COCO, NoCaps, Flickr30k in COCO form) and Karpathy's dataset_*.json;
- media.py: media cells and paths -> files the backends open per batch; which files cannot be read.

A probe says which columns play which role (a `Layout`, kept in the probe's own module); `table_records` reads
a table with it into `Record`s without touching the media; `MediaSet.files` then turns only the chosen
records' media into files, streaming the media column, and sets aside the ones that cannot be read.
Nothing heavy is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from omnicheck.errors import FixtureError
from omnicheck.probes.readers.media import cell_file, find_file, unreadable
from omnicheck.probes.readers.tables import Table, is_table, open_table

__all__ = ["Layout", "MediaSet", "Record", "Table", "is_table", "open_table", "pick_column", "table_records"]


@dataclass(frozen=True)
class Record:
    id: str
    media: Path | int | str | None  # a file; the row of a table whose media cell holds it; a name to look up
    texts: tuple[str, ...]  # reference captions or descriptions, or the one transcript
    key_terms: tuple[tuple[str, ...], ...] = ()  # given by the data; empty: the probe derives them
    speaker: str = ""


@dataclass(frozen=True)
class Layout:
    """Which columns of a published dataset play which role for one probe, each in order of preference."""

    what: str  # in messages: "photos with captions"
    media_feature: str  # the HF feature type of the media column: Image, Audio or Video
    media: tuple[str, ...]
    texts: tuple[str, ...]
    ids: tuple[str, ...]
    key_terms: tuple[str, ...] = ()
    speaker: tuple[str, ...] = ()
    media_from_id: str = ""  # when no media column: the file is this pattern of the id ("{}.mp4")
    media_dirs: tuple[str, ...] = ()  # subfolders beside the table where files named by rows may lie


@dataclass
class MediaSet:
    """The records of one data source and how to get each one's media as a file."""

    where: str
    kind: str  # image | audio | video
    records: list[Record]
    table: Table | None = None
    media_column: str | None = None
    roots: tuple[Path, ...] = ()
    text_files: tuple[Path, ...] = ()  # the files the texts come from, re-read by `digest` (a table has none)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def digest(self) -> str:
        """A short hash of what the scores depend on besides the media: part of a probe's fingerprint, so the
        reference cache is not reused after the references change (text files are read again each time)."""
        if self.text_files:
            from omnicheck.digest import digest_files

            return digest_files(list(self.text_files))
        return records_digest(self.records)

    def files(self, chosen: Sequence[Record]) -> list[Record]:
        """The chosen records with their media as readable files, in order. One that cannot be had or read is
        left out and recorded in `skipped` ({id, reason}); when none is left, one line says why."""
        rows = {r.media: r for r in chosen if isinstance(r.media, int)}
        found: dict[str, tuple[Path | None, str]] = {}
        if rows and self.table is not None and self.media_column:
            for index, row in enumerate(self.table.rows([self.media_column])):
                if index in rows:
                    found[rows[index].id] = cell_file(row[self.media_column], self.roots)
                    if len(found) == len(rows):
                        break  # a smoke tier reads only as far as its last row
        out: list[Record] = []
        self.skipped = []
        for record in chosen:
            if isinstance(record.media, Path):
                path, why = record.media, ""
            elif isinstance(record.media, str):
                path = find_file(record.media, self.roots)
                why = "" if path else f"no file {record.media} under {', '.join(map(str, self.roots))}"
            else:
                path, why = found.get(record.id, (None, "the row was not found when reading the media column"))
            if path is not None:
                why = unreadable(path, self.kind)
                why = f"{self.kind} {path} cannot be read ({why})" if why else ""
            if why:
                self.skipped.append({"id": record.id, "reason": why})
            else:
                out.append(Record(record.id, path, record.texts, record.key_terms, record.speaker))
        if chosen and not out:
            first = self.skipped[0]["reason"]
            more = f" (and {len(self.skipped) - 1} more)" if len(self.skipped) > 1 else ""
            raise FixtureError(f"{first}{more}: no {self.kind} of {self.where} can be read", "replace or remove that file")
        return out


def pick_column(table: Table, candidates: Sequence[str], role: str, probe: str, feature: str = "",
                required: bool = True) -> str | None:
    """The first column whose HF feature type is `feature`, else the first candidate name present."""
    if feature:
        typed = [c for c in table.columns if table.feature_type(c) == feature]
        if typed:
            return next((c for c in candidates if c in typed), typed[0])
    lowered = {c.lower(): c for c in table.columns}
    for name in candidates:
        if name.lower() in lowered:
            return lowered[name.lower()]
    if not required:
        return None
    raise FixtureError(
        f"{table.where} has columns {', '.join(table.columns)}: none holds {role} for {probe} "
        f"(looked for {', '.join(candidates)})",
        f"rename the column holding {role} to {candidates[0]!r}, or give {probe} data in a layout it reads "
        "(see the probe's docstring)",
    )


def texts_of(value: Any) -> tuple[str, ...]:
    """A caption cell as published: one string, a list of strings, or a list of {raw|caption|text: ...}."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value.strip(),) if value.strip() else ()
    if isinstance(value, dict):
        value = [value]
    out: list[str] = []
    for item in value:
        if isinstance(item, dict):
            item = next((item[k] for k in ("raw", "caption", "text", "sentence") if isinstance(item.get(k), str)), "")
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
    return tuple(out)


def table_records(table: Table, layout: Layout, probe: str, kind: str) -> MediaSet:
    """Every row's id, texts and key terms (rows sharing an id, as in MSR-VTT's one caption per row, are merged);
    the media stay in the table until `MediaSet.files`."""
    texts = pick_column(table, layout.texts, "the reference texts", probe)
    ids = pick_column(table, layout.ids, "an id", probe, required=False)
    terms = pick_column(table, layout.key_terms, "key terms", probe, required=False) if layout.key_terms else None
    speaker = pick_column(table, layout.speaker, "a speaker", probe, required=False) if layout.speaker else None
    media = pick_column(table, layout.media, f"the {kind}", probe, feature=layout.media_feature,
                        required=not (layout.media_from_id and ids))
    columns = [c for c in dict.fromkeys((texts, ids, terms, speaker)) if c]
    grouped: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(table.rows(columns)):
        key = str(row[ids]) if ids and row[ids] is not None else f"{index:06d}"
        entry = grouped.get(key)
        if entry is None:
            source: Path | int | str = index if media else layout.media_from_id.format(key)
            entry = grouped[key] = {"media": source, "texts": [], "terms": _terms(row.get(terms)) if terms else (),
                                    "speaker": str(row[speaker]) if speaker and row[speaker] is not None else ""}
        entry["texts"].extend(t for t in texts_of(row[texts]) if t not in entry["texts"])
    empty = [k for k, e in grouped.items() if not e["texts"]]
    if empty:
        raise FixtureError(f"{table.where}: {len(empty)} rows (first: id {empty[0]}) have an empty {texts!r}",
                           f"every row of {layout.what} needs its reference text")
    if not grouped:
        raise FixtureError(f"{table.where} has no rows", f"point at a non-empty set of {layout.what}")
    records = [Record(k, e["media"], tuple(e["texts"]), e["terms"], e["speaker"]) for k, e in grouped.items()]
    return MediaSet(table.where, kind, records, table, media, _roots(table.root, layout.media_dirs))


def _terms(value: Any) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list):
        return ()
    return tuple(tuple(str(s) for s in synonyms) for synonyms in value if isinstance(synonyms, list) and synonyms)


def _roots(root: Path | None, subfolders: Iterable[str]) -> tuple[Path, ...]:
    if root is None:
        return ()
    bases = [root, root.parent]
    return tuple(dict.fromkeys([*bases, *(b / d for b in bases for d in subfolders)]))


def records_digest(records: Sequence[Record]) -> str:
    """A short hash of the records' ids, texts and key terms."""
    import hashlib
    import json

    digest = hashlib.sha256()
    for r in records:
        digest.update(json.dumps([r.id, r.texts, r.key_terms, r.speaker]).encode() + b"\n")
    return digest.hexdigest()[:16]


def table_jsonl(data: Path | str, columns: Sequence[str], probe: str, clean: Any = None) -> Path:
    """A text set given as a table (openai/gsm8k's question + answer, google/IFEval's key + prompt + ...) as the JSONL
    lm-eval's local task reads: written once into the cache under a name that is the hash of its content."""
    import hashlib
    import json
    import os
    import tempfile

    from omnicheck.probes.readers.media import media_dir

    table = open_table(data)
    names = [pick_column(table, [c], c, probe) for c in columns]
    folder = media_dir().parent / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".jsonl")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            rows = 0
            for row in table.rows(names):
                line = json.dumps({c: (clean(c, row[n]) if clean else row[n]) for c, n in zip(columns, names)}) + "\n"
                digest.update(line.encode())
                out.write(line)
                rows += 1
        if not rows:
            raise FixtureError(f"{table.where} has no rows", f"point --omnicheck-data {probe}=... at a non-empty split")
        target = folder / f"{probe}-{digest.hexdigest()[:16]}.jsonl"
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
