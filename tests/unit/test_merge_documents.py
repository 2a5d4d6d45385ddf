"""Merging pytest-xdist workers' parts: each variant keeps the description of the worker that loaded it."""

from types import SimpleNamespace

from omnicheck.document import merge_documents


def _part(variants, verdicts):
    return {"variants": variants, "results": [], "verdicts": verdicts, "findings": [], "speed": [],
            "run": {"reference": "bf16", "reference_cache": {"hits": 1, "misses": 0}}}


def _verdict(variant, status):
    return {"variant": variant, "probe": "speech_wer", "modality": "audio", "status": status}


def test_a_variant_judged_from_another_workers_cache_keeps_the_loading_workers_description():
    # gw0 judged the reference from results gw1 had cached: it never loaded bf16, yet its part describes bf16's
    # divergence. The part that loaded bf16 (its backend described itself) must win, whichever is read first.
    loaded = {"backend": "hf", "cpu_threads": 1, "divergence": {"per_modality": {}}}
    judged_only = {"divergence": {"per_modality": {}}}
    gw0 = _part([{"name": "bf16", "description": judged_only}, {"name": "copy", "description": {}}],
                [_verdict("bf16", "REFERENCE")])
    gw1 = _part([{"name": "bf16", "description": loaded}, {"name": "copy", "description": dict(loaded)}],
                [_verdict("copy", "PASS")])
    order = [SimpleNamespace(name="bf16"), SimpleNamespace(name="copy")]
    for parts in ([gw0, gw1], [gw1, gw0]):
        merged = merge_documents(parts, order)
        assert [v["description"].get("cpu_threads") for v in merged["variants"]] == [1, 1]
        assert merged["run"]["workers"] == 2
        assert merged["run"]["reference_cache"] == {"hits": 2, "misses": 0}
        assert merged["matrix"] == {"bf16": {"audio": "REFERENCE"}, "copy": {"audio": "PASS"}}
