"""The built-in demo panel: a reference and variants with known truth, built offline, checked end to end.

`omnicheck demo` builds the panel once into the cache and runs the pytest plugin on it, so a newcomer sees
the whole thing (probes, verdicts, terminal matrix, report.html) work on a fresh machine with no arguments.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

from omnicheck.store import default_cache_dir

PANEL_VERSION = "2"
REPO_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


PANEL_INDEX = REPO_FIXTURES / "checkpoints" / "demo-panel.json"

# Token caps just above omni-small's longest held-out answer: shorter ones cut transcripts and instruction answers
# (the reference's own scores drop), longer ones only cost time. The benchmarks and validation runs use them too.
HELDOUT_MAX_NEW_TOKENS = {"image_caption": 32, "speech_wer": 32, "video_describe": 24, "gsm8k": 64, "ifeval": 64}

# The reference is the trained omni-small, so task scores mean something and the default gate judges them; with
# these caps the whole panel runs in minutes on a small CPU.
DEMO_CONFIG = '[tool.omnicheck]\ninconclusive = "skip"\n\n[tool.omnicheck.max_new_tokens]\n' + "".join(
    f"{probe} = {tokens}\n" for probe, tokens in HELDOUT_MAX_NEW_TOKENS.items())


def build_panel(root: Path | None = None) -> dict[str, Path]:
    """Reference + variants with known truth. Returns name -> folder, reference first.

    The reference is the trained omni-small (fixtures/omni-small) and its quantized variants are real llmcompressor
    checkpoints committed under fixtures/omni-panel (PROVENANCE.md in each), the broken one included (the 12B
    write-up's W4A4 recipe, refused before loading). The index may also name derived variants, made here from the
    reference with a module replaced by noise (the 'modality came back random' failure made on purpose).
    """
    root = Path(root) if root else default_cache_dir() / f"demo-panel-v{PANEL_VERSION}"
    index = json.loads(PANEL_INDEX.read_text())
    reference = REPO_FIXTURES / index["reference"]
    panel = {"bf16": reference}
    for name, folder in index["variants"].items():
        panel[name] = REPO_FIXTURES / folder
    for name, spec in index.get("derived", {}).items():
        derived = root / name
        if not (derived / "config.json").exists():
            randomize_modules(reference, derived, prefix=spec["prefix"], seed=spec["seed"])
        panel[name] = derived
    return panel


def panel_data() -> dict[str, Path]:
    """probe name -> the demo's data for it (omni-small's held-out sets in the probes' own layouts)."""
    index = json.loads(PANEL_INDEX.read_text())
    return {probe: REPO_FIXTURES / rel for probe, rel in index.get("data", {}).items()}


def _rewrite_tensors(source: Path, out: Path, change: Callable[[dict[str, Any]], bool]) -> Path:
    """Copy a checkpoint (without its probe data) and let `change` edit each weight file's tensors in place;
    a file is written back only when `change` says it touched something."""
    from safetensors.torch import load_file, save_file

    out = Path(out)
    shutil.copytree(source, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("heldout", "probe-data"))
    for file in sorted(out.glob("*.safetensors")):
        tensors = load_file(file)
        if change(tensors):
            save_file(tensors, file, metadata={"format": "pt"})
    return out


def randomize_modules(source: Path, out: Path, prefix: str, seed: int) -> Path:
    """Copy a checkpoint with every tensor under `prefix` replaced by seeded noise of the same scale:
    the failure 'a modality's projection came back random' made on purpose."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    def randomize(tensors: dict[str, Any]) -> bool:
        touched = False
        for key, tensor in tensors.items():
            if key.startswith(prefix) and tensor.is_floating_point() and tensor.ndim >= 2:
                noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
                tensors[key] = (noise * tensor.float().std().clamp_min(1e-3)).to(tensor.dtype)
                touched = True
        return touched

    return _rewrite_tensors(source, out, randomize)


def perturb_weights(source: Path, out: Path, pattern: str, relative_std: float, seed: int) -> Path:
    """Copy a checkpoint with Gaussian noise added to every floating 2-D tensor whose name contains `pattern`:
    noise std = relative_std x that tensor's own std. Small relative_std gives a subtly damaged model (task scores
    a few percent down), the case a gate must not call PASS."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    def perturb(tensors: dict[str, Any]) -> bool:
        touched = False
        for key in sorted(tensors):
            tensor = tensors[key]
            if pattern in key and tensor.is_floating_point() and tensor.ndim == 2:
                noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
                tensors[key] = (tensor.float() + noise * relative_std * tensor.float().std()).to(tensor.dtype)
                touched = True
        return touched

    return _rewrite_tensors(source, out, perturb)


MEDIA_PROJECTIONS = ("model.embed_vision.embedding_projection.weight", "model.embed_audio.embedding_projection.weight")


def push_media_embeddings(source: Path, out: Path, factor: float = 1000.0, channels: int = 1,
                          keys: tuple[str, ...] = MEDIA_PROJECTIONS) -> Path:
    """Copy a checkpoint with the first `channels` output rows of the media embedding projections scaled by `factor`.

    Every image/audio/video soft token then carries one huge channel. The decoder's RMSNorms divide it back to
    the norm's bound, but what comes out is one spike over near-zero values: in an activation-quantized layer the
    spike sets the block scales and clips against the text-calibrated global scale, and the rest rounds to zero.
    Text tokens never pass through these projections, so text inputs are untouched.
    """

    def push(tensors: dict[str, Any]) -> bool:
        hit = [k for k in keys if k in tensors]
        for key in hit:
            weight = tensors[key].float()
            weight[:channels] *= factor
            tensors[key] = weight.to(tensors[key].dtype)
        return bool(hit)

    return _rewrite_tensors(source, out, push)


def run_demo(argv: list[str] | None = None, panel_root: Path | None = None) -> int:
    """Run the pytest plugin on the demo panel; extra argv is passed to pytest."""
    import pytest

    panel = build_panel(panel_root)
    workdir = default_cache_dir() / "demo-run"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "pyproject.toml"
    config.write_text(DEMO_CONFIG)
    args = [str(workdir), "-c", str(config), "--rootdir", str(workdir), "-p", "no:cacheprovider",
            "--omnicheck-config", str(config), "--omnicheck-tier", "full", "--omnicheck-limit", "12"]
    for name, path in panel.items():
        args += ["--model", f"{name}={path}"]
    args += ["--reference", "bf16"]
    for probe, data in panel_data().items():
        args += ["--omnicheck-data", f"{probe}={data}"]
    if not _plugin_installed():
        args += ["-p", "omnicheck.plugin"]
    return int(pytest.main(args + list(argv or [])))


def _plugin_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.name == "omnicheck" for ep in entry_points(group="pytest11"))
