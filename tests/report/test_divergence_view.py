"""Teacher-forced divergence in the report: the per-modality chart, the per-token strip under each sample with the
first diverging token marked, and the terminal matrix's evidence marks. The records are the shape
omnicheck.compare.divergence.SampleDivergence.to_json writes (the models that make them are tested in
tests/backends/test_scoring.py)."""

from __future__ import annotations

from typing import Any

from htmlscan import scan, text_of
from sample_document import HOSTILE_SCRIPT

from omnicheck.report.render import render_html_string
from omnicheck.report.terminal import matrix_lines

TOKENS = ["A", " red", " circle", HOSTILE_SCRIPT, "."]


def _with_divergence(document: dict[str, Any]) -> dict[str, Any]:
    """w4a4's image answers diverge from the second token on; every other variant reads the reference's answers
    unchanged. Per-modality summaries as the session writes them into each variant's description."""
    for result in document["results"]:
        diverges = result["variant"] == "w4a4" and result["modality"] == "image"
        for sample in result["samples"]:
            if result["variant"] == "bf16":
                sample["extra"]["divergence_floor"] = {"kl_mean": 1e-5, "agreement": 1.0, "first_divergence": None}
                continue
            sample["extra"]["divergence"] = {
                "kl_mean": 2.5 if diverges else 0.001, "agreement": 0.4 if diverges else 1.0,
                "first_divergence": 1 if diverges else None, "variant_loglik": -9.0, "reference_loglik": -2.0,
                "positions": 6, "kl": [0.01, 3.0, 2.0, 4.0, 1.0, 5.0] if diverges else [0.001] * 6,
                "agree": [True, False, False, True, False, False] if diverges else [True] * 6, "tokens": TOKENS,
            }
    for variant in document["variants"]:
        if variant["name"] in ("w4a16", "w4a4"):
            image = 2.5 if variant["name"] == "w4a4" else 0.001
            variant.setdefault("description", {})["divergence"] = {"per_modality": {
                m: {"n": 4, "kl_mean": image if m == "image" else 0.001, "kl_interval": [0.0005, 0.002] if m != "image" or image < 1 else [2.0, 3.0],
                    "floor": 1e-5, "times_floor": (image if m == "image" else 0.001) / 1e-5, "agreement": 1.0,
                    "level": 0.9} for m in ("text", "image", "audio", "video")}}
    for verdict in document["verdicts"]:
        verdict.setdefault("details", {})["decided_by"] = "divergence" if verdict["status"] == "PASS" else "task scores"
    return document


def test_the_chart_has_a_row_per_variant_and_modality_on_a_log_scale(sample_document):
    html = render_html_string(_with_divergence(sample_document))
    (svg,) = [e for e in scan(html) if e.tag == "svg" and "divergence" in e.attrs.get("class", "")]
    labels = text_of(svg)
    assert "w4a4 · image" in labels and "w4a16 · text" in labels
    assert "2.5 nats (250,000x floor)" in labels
    assert "1e-5" in labels and "1e0" in labels


def test_each_sample_shows_the_answer_token_by_token_with_the_first_diverging_token_marked(sample_document):
    html = render_html_string(_with_divergence(sample_document))
    first = [e for e in scan(html) if e.tag == "span" and "tok first" in e.attrs.get("class", "")
             and not any("diff-key" in a.attrs.get("class", "") for a in e.ancestors)]  # not the legend
    assert first and all(text_of(e) == " red" for e in first)  # w4a4's image samples, token #1
    assert "first diverging token #1 &#39; red&#39;" in html
    assert HOSTILE_SCRIPT not in html  # token text is escaped like every other text
    reproduced = "the variant&#39;s greedy answer is the reference&#39;s, token for token"
    assert reproduced in html


def test_the_terminal_matrix_says_what_decided_each_cell_and_prints_divergence(sample_document):
    lines = matrix_lines(_with_divergence(sample_document))
    assert any(line.startswith("decided by: ") for line in lines)
    row = next(line for line in lines if line.startswith("w4a16 "))
    assert "[d]" in row or "[s]" in row
    divergence = lines.index("divergence: KL(reference || variant) per answer token in nats (x the A/A noise floor)")
    assert lines[divergence + 2].startswith("w4a4") and "2.5 (2e+05x)" in lines[divergence + 2]


def test_a_matrix_cell_shows_the_divergence_under_each_score_and_says_when_it_decided(sample_document):
    from omnicheck.report.index import index_document
    from omnicheck.report.matrix import matrix_rows

    document = _with_divergence(sample_document)
    record = {"status": "ok", "n": 4, "kl_mean": 0.001, "kl_interval": [0.0005, 0.002]}
    for verdict in document["verdicts"]:
        verdict["details"]["divergence"] = dict(record)
    ctx = index_document(document, max_samples=5)
    rows = matrix_rows(ctx, ["text", "image", "audio", "video"], list(ctx.variant_index))
    cells = {(row.variant, c.modality): c for row in rows for c in row.cells}
    decided = [v for v in document["verdicts"] if v["details"]["decided_by"] == "divergence"]
    by_scores = [v for v in document["verdicts"] if v["details"]["decided_by"] == "task scores" and v["variant"] != ctx.reference]
    assert decided and by_scores
    for verdict in decided + by_scores:
        lines = cells[(verdict["variant"], verdict["modality"])].lines
        at = [probe for probe, _, _ in lines].index(verdict["probe"])
        label, figure, interval = lines[at + 1]  # the KL line right under the probe's score
        assert label == "KL" and figure.startswith("0.001 nats/token") and interval.startswith("["), lines
        assert figure.endswith("decided this") == (verdict in decided), (verdict["variant"], verdict["probe"], figure)
