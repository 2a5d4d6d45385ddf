"""--omnicheck-refresh-reference: the reference is generated again instead of read from the cache."""

from __future__ import annotations

from option_runs import FAST


def test_second_run_takes_the_reference_from_the_cache_unless_refreshed(run_omnicheck, read_document, tiny_gemma, tiny_gemma_copy):
    args = ("--model", f"bf16={tiny_gemma}", "--model", f"copy={tiny_gemma_copy}", "--omnicheck-probe", "speech_wer", *FAST)
    first = run_omnicheck(*args)
    assert first.ret == 0
    assert read_document()["run"]["reference_cache"]["reference_generations"] == 1
    second = run_omnicheck(*args)
    assert second.ret == 0
    cache = read_document()["run"]["reference_cache"]
    assert cache["reference_generations"] == 0 and cache["hits"] == 1
    refreshed = run_omnicheck(*args, "--omnicheck-refresh-reference")
    assert refreshed.ret == 0
    assert read_document()["run"]["reference_cache"]["reference_generations"] == 1
