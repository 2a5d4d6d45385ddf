"""Test ids and markers: -m and -k select omnicheck's tests as any others; checked at collection time, no model
loaded. Each option has its own file: test_option_<name>.py."""

from __future__ import annotations

from omnicheck.probes import PROBES, modality_of


def _collected(result) -> list[str]:
    return [line.split("::")[-1] for line in result.stdout.lines if "test_probe[" in line]


def test_modality_markers_select_and_deselect(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "-m", "not video and not text", "--collect-only", "-q")
    kept = [p for p in PROBES if modality_of(p) not in ("video", "text")]
    assert kept and _collected(result) == [f"test_probe[a-{p}]" for p in kept]
    audio = run_omnicheck("--model", f"a={tmp_path}/a", "-m", "audio", "--collect-only", "-q")
    assert _collected(audio) == [f"test_probe[a-{p}]" for p in PROBES if modality_of(p) == "audio"]


def test_k_selects_a_variant(run_omnicheck, tmp_path):
    result = run_omnicheck("--model", f"a={tmp_path}/a", "--model", f"b={tmp_path}/b", "-k", "b-", "--collect-only", "-q")
    ids = _collected(result)
    assert ids == [f"test_probe[b-{p}]" for p in PROBES]
