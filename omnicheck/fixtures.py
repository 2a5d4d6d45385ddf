"""The bundled probe data: where it lives and whether it is intact.

fixtures/manifest.json lists every shipped file with its sha256, size, source package and license
(scripts/extract_fixtures.py writes it). A subfolder may carry its own manifest.json instead, with paths
relative to that subfolder. A probe calls verify_manifest(subdir) before reading its data: a missing or
altered file stops it with one line saying which file and how to restore it. Verified hashes are kept per
process, keyed by each file's size and mtime, so a second call costs a stat per file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from omnicheck.digest import sha256_file
from omnicheck.errors import FixtureError

ENV = "OMNICHECK_FIXTURES"
MANIFEST = "manifest.json"
_PACKAGE = Path(__file__).resolve().parent
_verified: dict[Path, tuple[int, int, str]] = {}  # file -> (size, mtime_ns, sha256) it had when it matched


def candidates() -> list[Path]:
    """Where fixtures may be, in order: $OMNICHECK_FIXTURES (an explicit choice wins), then the repository
    checkout the package sits in (a source tree or `pip install -e .`). A wheel does not carry fixtures/."""
    found = []
    if os.environ.get(ENV):
        found.append(Path(os.environ[ENV]).expanduser())
    found.append(_PACKAGE.parent / "fixtures")
    return found


def fixtures_root() -> Path:
    for path in candidates():
        if (path / MANIFEST).is_file():
            return path.resolve()
    tried = ", ".join(str(p) for p in candidates())
    raise FixtureError(
        f"omnicheck's bundled fixtures were not found (looked in {tried})",
        f"install omnicheck from its repository with `pip install -e .`, or set {ENV}=/path/to/omnicheck/fixtures",
    )


def fixture_dir(subdir: str) -> Path:
    return fixtures_root() / subdir


def load_manifest(root: Path, subdir: str) -> dict[str, dict[str, Any]]:
    """Entries for the files under `subdir`, keyed by path relative to `root`."""
    own = root / subdir / MANIFEST
    if own.is_file():
        files = _read_manifest(own)
        return {f"{subdir}/{rel}": entry for rel, entry in files.items()}
    prefix = subdir.rstrip("/") + "/"
    return {rel: entry for rel, entry in _read_manifest(root / MANIFEST).items() if rel.startswith(prefix)}


def _read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    try:
        files = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FixtureError(
            f"fixture manifest {path} is unreadable ({type(err).__name__}: {err})",
            "restore it with `git checkout -- fixtures` or rebuild with `python scripts/extract_fixtures.py`",
        ) from None
    if not isinstance(files, dict):
        raise FixtureError(f"fixture manifest {path} has no 'files' table", "restore it with `git checkout -- fixtures`")
    return files


def verify_manifest(subdir: str, root: Path | None = None) -> dict[str, Path]:
    """Check every file the manifest lists under `subdir`; return relative path -> absolute path."""
    root = Path(root).resolve() if root else fixtures_root()
    entries = load_manifest(root, subdir)
    if not entries:
        raise FixtureError(
            f"the fixture manifest under {root} lists no files in {subdir}/",
            "rebuild the fixtures with `python scripts/extract_fixtures.py`",
        )
    return {rel: _check(root, rel, entry) for rel, entry in sorted(entries.items())}


def _check(root: Path, rel: str, entry: dict[str, Any]) -> Path:
    path = root / rel
    restore = f"restore it with `git checkout -- fixtures/{rel}` or rebuild with `python scripts/extract_fixtures.py`"
    try:
        stat = path.stat()
    except OSError:
        raise FixtureError(f"fixture {path} is missing", restore) from None
    known = _verified.get(path)
    if known and known[:2] == (stat.st_size, stat.st_mtime_ns) and known[2] == entry["sha256"]:
        return path
    if stat.st_size != entry.get("bytes", stat.st_size):
        raise FixtureError(
            f"fixture {path} is altered or truncated ({stat.st_size} bytes, manifest says {entry['bytes']})", restore
        )
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise FixtureError(
            f"fixture {path} does not match its manifest (sha256 {digest[:12]}..., expected {entry['sha256'][:12]}...)",
            restore,
        )
    _verified[path] = (stat.st_size, stat.st_mtime_ns, digest)
    return path
