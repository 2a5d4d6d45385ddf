"""The report says which engine ran each variant and marks a comparison across engines, with the fix beside it."""

from __future__ import annotations

from typing import Any

from omnicheck.engines import Engine, engines_block
from omnicheck.report.render import render_html_string

VLLM = Engine("vLLM", "0.32.0", served=True)
HF = Engine("transformers", "5.23.0", served=False)


def with_engines(document: dict[str, Any], engines: dict[str, Engine]) -> dict[str, Any]:
    for variant in document["variants"]:
        variant["engine"] = engines[variant["name"]].to_json() if variant["name"] in engines else None
    document["engines"] = engines_block(document["variants"], document["verdicts"], document["run"]["reference"])
    return document


def test_a_variant_served_against_an_in_process_reference_is_marked_in_the_matrix(sample_document):
    html = render_html_string(with_engines(sample_document, {"bf16": HF, "w4a16": VLLM, "w4a4": HF}))
    assert html.count("compared across engines *") == 1  # the w4a16 row only
    assert '<ul class="findings engine-notes" id="engine-notes">' in html
    assert ("engines: the reference bf16 ran on transformers 5.23.0 (in-process); w4a16 on vLLM 0.32.0 (served): "
            "compared across engines (* in the matrix) -- fix: serve the reference&#39;s weights on vLLM 0.32.0 too "
            "and pass --model bf16=http://HOST:PORT/v1") in html
    assert "<th>engine</th><td>vLLM 0.32.0 (served)</td>" in html


def test_one_engine_for_all_marks_nothing(sample_document):
    html = render_html_string(with_engines(sample_document, {"bf16": HF, "w4a16": HF, "w4a4": HF}))
    assert "compared across engines" not in html and 'id="engine-notes"' not in html
    assert "<th>engine</th><td>transformers 5.23.0 (in-process)</td>" in html


def test_a_document_without_engines_still_renders(sample_document):
    html = render_html_string(sample_document)  # written before engines were recorded
    assert "<th>engine</th><td>not recorded</td>" in html and "compared across engines" not in html
