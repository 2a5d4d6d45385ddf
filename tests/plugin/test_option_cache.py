"""--omnicheck-cache DIR: where the reference's results are kept; a run in another folder does not see them, and the
folder does not stay in the environment after an in-process run."""

from __future__ import annotations

import os

from option_runs import FAST

from omnicheck.probes import PROBES, modality_of


def test_the_reference_is_cached_in_the_named_folder_only(run_omnicheck, read_document, tiny_gemma, tmp_path):
    args = ("--model", f"bf16={tiny_gemma}", "--omnicheck-probe", "speech_wer", "--omnicheck-limit", "1", *FAST)
    for folder, generations in (("one", 1), ("one", 0), ("two", 1)):
        assert run_omnicheck(*args, "--omnicheck-cache", str(tmp_path / folder)).ret == 0
        assert read_document()["run"]["reference_cache"]["reference_generations"] == generations, folder
    kept = sorted(p.name for p in (tmp_path / "one" / "reference").glob("speech_wer-*.json"))
    # the results, and the reference's token scores for the divergence pass beside them
    assert len(kept) == 2 and kept[1] == kept[0].removesuffix(".json") + ".tokens-v1.json", kept


def test_changed_reference_weights_are_not_served_from_the_cache(run_omnicheck, read_document, tiny_gemma, tmp_path):
    from omnicheck.demo import randomize_modules

    args = ("--omnicheck-probe", "speech_wer", *FAST)
    assert run_omnicheck("--model", f"bf16={tiny_gemma}", *args).ret == 0
    changed = randomize_modules(tiny_gemma, tmp_path / "bf16-changed", prefix="model.embed_audio", seed=3)
    assert run_omnicheck("--model", f"bf16={changed}", *args).ret == 0
    assert read_document()["run"]["reference_cache"]["reference_generations"] == 1


def test_in_process_runs_leave_the_process_as_they_found_it(run_omnicheck, tiny_gemma):
    """lm-eval runs one after the other in one process (as pytester or a notebook makes them) all work, and
    --omnicheck-cache does not stay in the environment after its run."""
    before = os.environ.get("OMNICHECK_CACHE")
    for probe in [name for name in PROBES if modality_of(name) == "text"]:
        result = run_omnicheck("--model", f"a={tiny_gemma}", "--omnicheck-probe", probe, "--omnicheck-limit", "2", *FAST)
        assert result.ret == 0, result.stdout.str()
        assert os.environ.get("OMNICHECK_CACHE") == before
