"""The reference's token scores live beside its cached results: a rerun spends no reference model time on them,
and a cache written before they existed (another omnicheck version) costs one line, never a cached answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnicheck.session import RunConfig, Session
from omnicheck.variants import Variant

PROBES = ["image_caption", "ifeval"]


def run(reference: Path, variant: Path, cache: Path, reports: Path, lines: list[str]) -> Session:
    variants = [Variant("ref", str(reference), is_reference=True), Variant("copy", str(variant))]
    session = Session(RunConfig(variants=variants, probes=PROBES, tier="smoke", report_dir=reports, cache_dir=cache,
                                max_new_tokens=8, write_html=False), progress=lines.append)
    try:
        for probe in PROBES:
            session.verdict("copy", probe)
    finally:
        session.close()
    return session


@pytest.fixture(scope="module")
def first_run(tiny_gemma, tiny_gemma_copy, tmp_path_factory):
    root = tmp_path_factory.mktemp("divergence-cache")
    lines: list[str] = []
    session = run(tiny_gemma, tiny_gemma_copy, root / "cache", root / "r1", lines)
    return root, session, lines


def test_a_first_run_scores_the_reference_and_keeps_its_tokens_beside_the_cache(first_run):
    root, session, _ = first_run
    assert session.reference_generations == len(PROBES)
    for probe in PROBES:
        info = session.results[("copy", probe)].info["divergence"]
        assert info["status"] == "ok", info
        assert all("divergence" in s.extra for s in session.results[("copy", probe)].samples)
        assert session.verdicts[("copy", probe)].details["divergence"]["kl_mean"] == 0.0  # a byte copy
    assert len(list((root / "cache" / "reference").glob("*.tokens-v1.json"))) == len(PROBES)


def test_a_rerun_takes_the_reference_tokens_from_the_cache_without_loading_the_reference(first_run, tiny_gemma,
                                                                                         tiny_gemma_copy):
    root, _, _ = first_run
    lines: list[str] = []
    session = run(tiny_gemma, tiny_gemma_copy, root / "cache", root / "r2", lines)
    assert session.reference_generations == 0
    assert not any(line.startswith("loading ref") for line in lines), lines
    for probe in PROBES:
        assert session.results[("ref", probe)].info["divergence"]["from_cache"] is True
        assert session.results[("copy", probe)].info["divergence"]["status"] == "ok"


def test_a_cache_without_token_scores_costs_one_line_and_keeps_every_cached_answer(first_run, tiny_gemma,
                                                                                   tiny_gemma_copy, tmp_path):
    import shutil

    root, _, _ = first_run
    cache = tmp_path / "cache"
    shutil.copytree(root / "cache", cache)
    for tokens in (cache / "reference").glob("*.tokens-v1.json"):  # as an omnicheck before divergence left it
        tokens.rename(tokens.with_name(tokens.name.replace("tokens-v1", "tokens-v0")))
    results = {p: p.read_bytes() for p in (cache / "reference").glob("*.json") if ".tokens-" not in p.name}
    lines: list[str] = []
    session = run(tiny_gemma, tiny_gemma_copy, cache, tmp_path / "r", lines)
    assert session.reference_generations == 0  # the cached answers were used, not regenerated
    assert {p: p.read_bytes() for p in results} == results  # and not touched
    image = [line for line in lines if "image_caption" in line and "token scores" in line]
    assert len(image) == 1 and "schema [0]" in image[0] and "its answers are kept" in image[0], lines
    assert session.results[("copy", "image_caption")].info["divergence"]["status"] == "ok"  # scored anew, once
    # lm-eval renders its own prompts, which the old cache did not keep: not available, in one line, run goes on
    text = session.results[("copy", "ifeval")].info["divergence"]
    assert text["status"] == "not available" and "--omnicheck-refresh-reference" in text["reason"]
    assert session.verdicts[("copy", "ifeval")].status in ("PASS", "INCONCLUSIVE")
    assert len(list((cache / "reference").glob("*.tokens-v0.json"))) == len(PROBES)  # the old files stay
