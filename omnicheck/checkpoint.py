"""A checkpoint folder as transformers will load it: its config, its weight files (the one safetensors header
reader), which classes build it, its processor. Used by the transformers backend, the format loaders (ModelOpt,
run-time module names) and the reference cache's fingerprint alike.

Nothing heavy is imported at module import: transformers loads inside the functions that need it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from omnicheck.errors import ModelLoadError, first_line

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit

# Classes whose from_pretrained override only adds speech-output assets omnicheck never uses. Qwen2.5-Omni's
# requires spk_dict.pt (quantization tools do not write it) and breaks output_loading_info (transformers 5.24
# passes the (model, info) tuple to load_speakers), so these load through the base implementation.
LOAD_WITHOUT_SPEECH_ASSETS = frozenset({"Qwen2_5OmniForConditionalGeneration"})


def read_config(path: Path) -> dict[str, Any]:
    """config.json of a checkpoint folder, or a ModelLoadError saying what the folder is instead."""
    if not path.exists():
        raise ModelLoadError(f"model path {str(path)!r} does not exist", "check the --model path")
    if not path.is_dir():
        raise ModelLoadError(
            f"model path {str(path)!r} is a file, not a checkpoint folder",
            "pass the folder that holds config.json and the weights",
        )
    config_file = path / "config.json"
    if not config_file.exists():
        raise ModelLoadError(
            f"{str(path)!r} is not a model folder (no config.json)",
            "pass a Hugging Face checkpoint folder (config.json + weights), e.g. one written by save_pretrained",
        )
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{config_file} is not valid JSON ({err})", "restore config.json from the original checkpoint") from err
    if not any(p.suffix in WEIGHT_SUFFIXES for p in path.iterdir()):
        raise ModelLoadError(f"{str(path)!r} has a config.json but no weight files", "copy the *.safetensors files in too")
    return config


def check_safetensors(path: Path) -> None:
    """Catch truncated or corrupt weight files before transformers gives a long traceback."""
    for file in sorted(path.glob("*.safetensors")):
        check_complete(file)


# --- safetensors headers: the one reader (formats/headers.py builds the tensor table on it) ---


def header_bytes(file: Path) -> bytes:
    """The JSON header's bytes (the 8-byte length, then that many bytes): the one place headers are read."""
    fix = f"re-download or re-export {file.name}"
    try:
        with open(file, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise ModelLoadError(f"{file} is truncated ({len(prefix)} bytes)", fix)
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES:
                raise ModelLoadError(f"{file} has an implausible header length ({length} bytes)", fix)
            raw = handle.read(length)
    except FileNotFoundError:
        raise ModelLoadError(f"{file} is named by the checkpoint index but missing", fix) from None
    if len(raw) < length:
        raise ModelLoadError(f"{file} is truncated inside its header", fix)
    return raw


def read_raw_header(file: Path) -> dict[str, Any]:
    """The header as stored: tensor name -> {dtype, shape, data_offsets}, and "__metadata__"."""
    return _parse(header_bytes(file), file)


def read_raw_header_and_data_start(file: Path) -> tuple[dict[str, Any], int]:
    """The header as stored, and the byte offset where the tensor data begins (8 + the header's length): a tensor's
    bytes are at that offset plus its data_offsets."""
    raw = header_bytes(file)
    return _parse(raw, file), 8 + len(raw)


def _parse(raw: bytes, file: Path) -> dict[str, Any]:
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{file} has a corrupt header", f"re-download or re-export {file.name}")
    return header


def check_complete(file: Path) -> None:
    """A ModelLoadError when the file is shorter than its header says its tensors need (a cut-off download)."""
    raw = header_bytes(file)
    header = _parse(raw, file)
    size = file.stat().st_size
    needed = 8 + len(raw) + max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if needed > size:
        raise ModelLoadError(f"{file} is truncated: its tensors need {needed} bytes, the file has {size}",
                             f"re-download or re-export {file.name}")


# --- which classes build it ---


def model_class(config: dict[str, Any]):
    """The Auto class to load this config.json's model with: speech-to-text for Whisper-style models, the first
    media-aware Auto class that maps the architecture for models with media towers, else causal LM."""
    import transformers

    model_type = config.get("model_type", "")
    if model_type == "whisper" or "speech_seq2seq" in model_type:
        return transformers.AutoModelForSpeechSeq2Seq
    has_media = any(k in config for k in ("vision_config", "audio_config", "thinker_config"))
    if has_media:
        known = config_class(config)
        for name in ("AutoModelForImageTextToText", "AutoModelForMultimodalLM", "AutoModelForCausalLM"):
            auto = getattr(transformers, name, None)
            mapping = getattr(auto, "_model_mapping", None)
            if auto is not None and mapping is not None and known is not None and known in mapping:
                return auto
    return transformers.AutoModelForCausalLM


def concrete_class(auto_class, config: dict[str, Any]):
    """The class an Auto class would instantiate for this checkpoint, or None if it cannot tell."""
    known = config_class(config)
    if known is None or known not in auto_class._model_mapping:
        return None  # unknown architecture: the Auto class will say so itself
    return auto_class._model_mapping[known]


def config_class(config: dict[str, Any]):
    """The transformers config class of a config.json's contents, or None for an architecture it does not know."""
    from transformers import AutoConfig

    try:
        return type(AutoConfig.for_model(**config))
    except Exception:
        return None


def text_generator(model):
    """The module whose generate() writes text. A model that also outputs audio (Qwen2.5-Omni, Qwen3-Omni) writes
    through a text-only sub-model (its thinker); its own generate() would also run the talker."""
    from transformers import GenerationMixin

    if "audio" not in _output_modalities(model):
        return model
    for child in model.children():
        if isinstance(child, GenerationMixin) and _output_modalities(child) == ("text",):
            return child
    return model


def _output_modalities(model) -> tuple[str, ...]:
    value = getattr(model, "output_modalities", None) or ("text",)
    return (value,) if isinstance(value, str) else tuple(value)


# --- how it is asked ---


def load_processor(path: Path):
    """(processor or None, tokenizer) from the folder, the tokenizer padding on the left with a pad token set."""
    from transformers import AutoProcessor, AutoTokenizer

    processor = None
    has_processor = any((path / f).exists() for f in ("processor_config.json", "preprocessor_config.json"))
    if has_processor:
        try:
            processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, TypeError, KeyError, ImportError) as err:
            raise ModelLoadError(
                f"the processor in {path} could not be loaded: {first_line(err)}",
                "save the processor with the checkpoint (processor.save_pretrained(PATH))",
            ) from None
    tokenizer = getattr(processor, "tokenizer", None) if processor is not None else None
    if tokenizer is None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise ModelLoadError(
                f"no tokenizer in {path}: {first_line(err)}",
                "save the tokenizer with the checkpoint (tokenizer.save_pretrained(PATH))",
            ) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return processor, tokenizer
