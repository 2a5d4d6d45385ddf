"""The tensor table of a checkpoint folder (name -> dtype, shape, file) from its safetensors headers, which
omnicheck.checkpoint reads; tensor data is never touched."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omnicheck.checkpoint import read_raw_header, read_raw_header_and_data_start
from omnicheck.errors import ModelLoadError

# Bits per element of the dtypes safetensors names.
DTYPE_BITS = {
    "F64": 64, "F32": 32, "F16": 16, "BF16": 16, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "F4": 4,
    "I64": 64, "I32": 32, "I16": 16, "I8": 8, "U64": 64, "U32": 32, "U16": 16, "U8": 8, "BOOL": 8,
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    file: str
    data_start: int = -1  # byte offset of the tensor's data in its file (for reading a few small tensors directly)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPE_BITS.get(self.dtype, 8) // 8


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files a checkpoint folder uses: those its index names, else every *.safetensors."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise ModelLoadError(f"{index} is unreadable ({err})", "restore the index file from the original checkpoint") from err
        return [folder / name for name in sorted(set(weight_map.values()))]
    return sorted(folder.glob("*.safetensors"))


def read_header(file: Path) -> dict[str, TensorInfo]:
    """One file's tensor table from its JSON header (the first 8 + N bytes only)."""
    header, data_start = read_raw_header_and_data_start(file)
    file_name = file.name
    return {
        name: TensorInfo(name, entry["dtype"], tuple(entry["shape"]), file_name, data_start + entry["data_offsets"][0])
        for name, entry in header.items()
        if name != "__metadata__"
    }


def read_metadata(file: Path) -> dict[str, str]:
    return dict(read_raw_header(file).get("__metadata__") or {})


def read_tensor_table(folder: Path) -> dict[str, TensorInfo]:
    """Every tensor of the checkpoint: name -> dtype, shape, file."""
    table: dict[str, TensorInfo] = {}
    for file in weight_files(folder):
        table.update(read_header(file))
    return table
