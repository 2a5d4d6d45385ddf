"""The bundled fixtures: every file listed with provenance, verified by hash, and a damaged copy refused in one line."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from omnicheck import fixtures
from omnicheck.errors import FixtureError

REPO = Path(__file__).resolve().parents[2]
MEDIA_DIRS = ("images", "speech", "video")


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.setattr(fixtures, "_verified", {})


@pytest.fixture
def copy_root(tmp_path) -> Path:
    """A private copy of the media fixtures and their manifest, safe to damage."""
    root = tmp_path / "fixtures"
    for sub in MEDIA_DIRS:
        shutil.copytree(REPO / "fixtures" / sub, root / sub)
    shutil.copy(REPO / "fixtures" / "manifest.json", root / "manifest.json")
    return root


def test_the_repo_fixtures_are_found_and_verify():
    assert fixtures.fixtures_root() == (REPO / "fixtures").resolve()
    for sub in MEDIA_DIRS:
        verified = fixtures.verify_manifest(sub)
        assert verified and all(path.is_file() for path in verified.values())


def test_every_media_file_is_in_the_manifest_with_provenance():
    manifest = json.loads((REPO / "fixtures" / "manifest.json").read_text())["files"]
    on_disk = {
        str(p.relative_to(REPO / "fixtures")) for sub in MEDIA_DIRS for p in (REPO / "fixtures" / sub).rglob("*")
        if p.is_file()
    }
    assert on_disk == {rel for rel in manifest if rel.split("/")[0] in MEDIA_DIRS}
    for rel in on_disk:
        entry = manifest[rel]
        assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
        assert entry["bytes"] == (REPO / "fixtures" / rel).stat().st_size
        assert entry["license"].strip()
        assert entry["source"] == "written for omnicheck" or re.match(r"[\w.-]+(==[\w.+-]+)?[ :]", entry["source"])


def test_bundled_media_sizes_stay_small():
    total = sum(p.stat().st_size for sub in MEDIA_DIRS for p in (REPO / "fixtures" / sub).rglob("*") if p.is_file())
    assert total < 15 * 2**20


def test_an_altered_file_fails_with_one_line_naming_it(copy_root):
    victim = copy_root / "images" / "chelsea.jpg"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    victim.write_bytes(bytes(data))
    with pytest.raises(FixtureError) as err:
        fixtures.verify_manifest("images", root=copy_root)
    message = str(err.value)
    assert "\n" not in message
    assert "chelsea.jpg" in message and "does not match its manifest" in message and "fix:" in message


def test_a_truncated_file_fails_with_one_line(copy_root):
    victim = copy_root / "speech" / "9001" / "1" / "9001-1-0880.flac"
    victim.write_bytes(victim.read_bytes()[:1000])
    with pytest.raises(FixtureError, match=r"9001-1-0880\.flac is altered or truncated \(1000 bytes") as err:
        fixtures.verify_manifest("speech", root=copy_root)
    assert "\n" not in str(err.value)


def test_a_missing_file_fails_with_one_line(copy_root):
    (copy_root / "video" / "bikes.mp4").unlink()
    with pytest.raises(FixtureError, match=r"bikes\.mp4 is missing -- fix: restore it") as err:
        fixtures.verify_manifest("video", root=copy_root)
    assert "\n" not in str(err.value)


def test_a_second_call_does_not_hash_again_until_a_file_changes(copy_root, monkeypatch):
    hashed = []
    real = fixtures.sha256_file
    monkeypatch.setattr(fixtures, "sha256_file", lambda path: hashed.append(path) or real(path))
    first = fixtures.verify_manifest("images", root=copy_root)
    assert len(hashed) == len(first)
    fixtures.verify_manifest("images", root=copy_root)
    assert len(hashed) == len(first)
    victim = copy_root / "images" / "coffee.jpg"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(FixtureError, match="coffee.jpg"):
        fixtures.verify_manifest("images", root=copy_root)


def test_a_subfolder_manifest_is_preferred(copy_root):
    own = {"files": {"9001/1/9001-1.trans.txt": {"sha256": "0" * 64, "bytes": 429}}}
    (copy_root / "speech" / "manifest.json").write_text(json.dumps(own))
    with pytest.raises(FixtureError, match=r"9001-1\.trans\.txt does not match"):
        fixtures.verify_manifest("speech", root=copy_root)


def test_an_unreadable_manifest_is_one_line(copy_root):
    (copy_root / "manifest.json").write_text("{not json")
    with pytest.raises(FixtureError, match="manifest .* is unreadable") as err:
        fixtures.verify_manifest("images", root=copy_root)
    assert "\n" not in str(err.value)


def test_env_var_points_at_another_copy(copy_root, monkeypatch):
    monkeypatch.setenv(fixtures.ENV, str(copy_root))
    assert fixtures.fixtures_root() == copy_root.resolve()
    assert fixtures.fixture_dir("video") == copy_root.resolve() / "video"


def test_no_fixtures_anywhere_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv(fixtures.ENV, str(tmp_path / "nowhere"))
    monkeypatch.setattr(fixtures, "_PACKAGE", tmp_path / "site-packages" / "omnicheck")
    with pytest.raises(FixtureError, match="were not found .* fix: install omnicheck .* OMNICHECK_FIXTURES"):
        fixtures.fixtures_root()


# --- the extraction script's pure parts, and a full rebuild where the packages are at hand ---


@functools.lru_cache(maxsize=1)
def _script():
    spec = importlib.util.spec_from_file_location("extract_fixtures", REPO / "scripts" / "extract_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_transcripts_are_written_the_librispeech_way():
    script = _script()
    assert script.librispeech_text("Feed'st thy light's flame with self-substantial fuel,") == (
        "FEED'ST THY LIGHT'S FLAME WITH SELF SUBSTANTIAL FUEL"
    )


def test_cuts_move_to_the_pause():
    import numpy as np

    script = _script()
    rate = 16000
    loud = np.random.default_rng(0).normal(0, 0.3, rate)
    audio = np.concatenate([loud, np.zeros(rate // 5), loud])  # a 200 ms pause from 1.0 s to 1.2 s
    cut = script.quietest_point(audio, rate, 1.3)
    assert rate <= cut <= int(1.2 * rate)


def test_images_are_downscaled_jpegs():
    from PIL import Image

    for path in (REPO / "fixtures" / "images").glob("*.jpg"):
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB" and max(image.size) <= 384


@pytest.mark.skipif(not _script().DEFAULT_SOURCES.is_dir() or not Path("/usr/share/pocketsphinx").is_dir(),
                    reason="the source packages are not downloaded here (python scripts/extract_fixtures.py --download)")
def test_a_rebuild_from_the_packages_matches_the_manifest(capsys):
    assert _script().main(["--check"]) == 0
    assert "identical to the manifest" in capsys.readouterr().out
