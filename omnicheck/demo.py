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


PANEL_INDEX = REPO_FIXTURES / "checkpoints" / "demo-panel.json"

# The demo's reference is a random-weight model: its task scores are 0 and say nothing, so the demo judges
# each variant by agreement with the reference's own outputs (an opt-in gate a real run can use too).
DEMO_CONFIG = """[tool.omnicheck]
inconclusive = "skip"
max_new_tokens = 24

[tool.omnicheck.thresholds]
min_agreement = 0.8
broken_agreement = 0.3
"""


def build_panel(root: Path | None = None) -> dict[str, Path]:
    """Reference + variants with known truth. Returns name -> folder, reference first.

    The reference and its quantized variants are real checkpoints committed under fixtures/checkpoints (made by
    llmcompressor, see PROVENANCE.md there); one more variant is derived here with its vision projection
    replaced by noise, the 'modality came back random' failure made on purpose.
    """
    root = Path(root) if root else default_cache_dir() / f"demo-panel-v{PANEL_VERSION}"
    index = json.loads(PANEL_INDEX.read_text())
    checkpoints = PANEL_INDEX.parent
    reference = checkpoints / index["reference"]
    panel = {"bf16": reference}
    for name, folder in index["variants"].items():
        panel[name] = checkpoints / folder
    vision = root / "vision-randomized"
    if not (vision / "config.json").exists():
        randomize_modules(reference, vision, prefix="model.embed_vision", seed=1)
    panel["vision-randomized"] = vision
    return panel


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
    config = workdir / "pyproject.toml"
    config.write_text(DEMO_CONFIG)
    args = [str(workdir), "-c", str(config), "--rootdir", str(workdir), "-p", "no:cacheprovider",
            "--omnicheck-config", str(config), "--omnicheck-tier", "full", "--omnicheck-limit", "12"]
    for name, path in panel.items():
        args += ["--model", f"{name}={path}"]
    args += ["--reference", "bf16"]
    if not _plugin_installed():
        args += ["-p", "omnicheck.plugin"]
    return int(pytest.main(args + list(argv or [])))


def _plugin_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.name == "omnicheck" for ep in entry_points(group="pytest11"))
