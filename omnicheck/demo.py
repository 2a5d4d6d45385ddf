"""The built-in demo panel: a reference and variants with known truth, built offline, checked end to end.

`omnicheck demo` builds the panel once into the cache and runs the pytest plugin on it, so a newcomer sees
the whole thing (probes, verdicts, terminal matrix, report.html) work on a fresh machine with no arguments.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from omnicheck.store import default_cache_dir

PANEL_VERSION = "1"
REPO_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _trained_reference() -> Path | None:
    """The project's trained small omni model, when this checkout carries it (issue 8)."""
    candidate = REPO_FIXTURES / "omni-small"
    return candidate if (candidate / "config.json").exists() else None


def build_panel(root: Path | None = None) -> dict[str, Path]:
    """Reference + variants. Returns name -> folder, reference first."""
    root = Path(root) if root else default_cache_dir() / f"demo-panel-v{PANEL_VERSION}"
    reference = root / "bf16"
    trained = _trained_reference()
    if not (reference / "config.json").exists():
        if trained is not None:
            shutil.copytree(trained, reference, dirs_exist_ok=True)
        else:
            from omnicheck.models.tiny import build_tiny_gemma4_unified

            build_tiny_gemma4_unified(reference, seed=0)
    panel = {"bf16": reference}
    copy = root / "bf16-copy"
    if not (copy / "config.json").exists():
        shutil.copytree(reference, copy, dirs_exist_ok=True)
    panel["bf16-copy"] = copy
    vision = root / "vision-randomized"
    if not (vision / "config.json").exists():
        randomize_modules(reference, vision, prefix="model.embed_vision", seed=1)
    panel["vision-randomized"] = vision
    for name, path in committed_quantized_variants().items():
        panel[name] = path
    return panel


def committed_quantized_variants() -> dict[str, Path]:
    """Real quantized checkpoints of the demo reference committed under fixtures/checkpoints (issue 3)."""
    found: dict[str, Path] = {}
    index = REPO_FIXTURES / "checkpoints" / "demo-panel.json"
    if index.exists():
        for name, rel in json.loads(index.read_text()).items():
            path = REPO_FIXTURES / "checkpoints" / rel
            if (path / "config.json").exists():
                found[name] = path
    return found


def randomize_modules(source: Path, out: Path, prefix: str, seed: int) -> Path:
    """Copy a checkpoint with every tensor under `prefix` replaced by seeded noise of the same scale:
    the failure 'a modality's projection came back random' made on purpose."""
    import torch
    from safetensors.torch import load_file, save_file

    out = Path(out)
    shutil.copytree(source, out, dirs_exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    for file in sorted(out.glob("*.safetensors")):
        tensors = load_file(file)
        touched = False
        for key, tensor in tensors.items():
            if key.startswith(prefix) and tensor.is_floating_point() and tensor.ndim >= 2:
                noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
                tensors[key] = (noise * tensor.float().std().clamp_min(1e-3)).to(tensor.dtype)
                touched = True
        if touched:
            save_file(tensors, file, metadata={"format": "pt"})
    return out


def run_demo(argv: list[str] | None = None, panel_root: Path | None = None) -> int:
    """Run the pytest plugin on the demo panel; extra argv is passed to pytest."""
    import pytest

    panel = build_panel(panel_root)
    workdir = default_cache_dir() / "demo-run"
    workdir.mkdir(parents=True, exist_ok=True)
    ini = workdir / "pytest.ini"
    ini.write_text("[pytest]\n")
    args = [str(workdir), "-c", str(ini), "--rootdir", str(workdir), "-p", "no:cacheprovider", "-rA"]
    for name, path in panel.items():
        args += ["--model", f"{name}={path}"]
    args += ["--reference", "bf16"]
    if not _plugin_installed():
        args += ["-p", "omnicheck.plugin"]
    return int(pytest.main(args + list(argv or [])))


def _plugin_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.name == "omnicheck" for ep in entry_points(group="pytest11"))
