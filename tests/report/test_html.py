"""The HTML report rendered from a realistic omnicheck.json document over real media."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from htmlscan import Element, scan, text_of
from sample_document import HOSTILE_IMG, HOSTILE_SCRIPT

from omnicheck.report.diff import alignment_pieces, word_diff
from omnicheck.report.figures import key_figure
from omnicheck.report.media import MediaEncoder
from omnicheck.report.pytest_html import pytest_html_extras
from omnicheck.report.render import render_html, render_html_string
from omnicheck.report.sections import OPEN_SAMPLES
from omnicheck.report.view_build import build_view

URL_ATTRIBUTES = ("src", "href", "srcset", "poster", "action", "formaction", "xlink:href", "data", "background", "ping")
TEN_MB = 10 * 1024 * 1024


def _row_variant(element: Element) -> str | None:
    for ancestor in reversed(element.ancestors):
        if ancestor.tag == "tr":
            return ancestor.attrs.get("data-variant")
    return None


def _rename_variant(document: dict[str, Any], old: str, new: str) -> None:
    for item in [*document["variants"], *document["results"], *document["verdicts"], *document["findings"], *document["speed"]]:
        if item.get("variant") == old:
            item["variant"] = new
        if item.get("name") == old:
            item["name"] = new
    document["matrix"][new] = document["matrix"].pop(old)


# --- untrusted text ---


def test_hostile_model_output_renders_as_text(rendered_html: str) -> None:
    assert HOSTILE_SCRIPT not in rendered_html
    assert HOSTILE_IMG not in rendered_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered_html
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered_html
    elements = scan(rendered_html)
    scripts = [e for e in elements if e.tag == "script"]
    assert len(scripts) == 1, "the only script is the report's own filter script"
    assert "alert" not in scripts[0].text
    handlers = [(e.tag, name) for e in elements for name in e.attrs if name.lower().startswith("on")]
    assert handlers == []
    assert all(e.attrs["src"].startswith("data:image/") for e in elements if e.tag == "img")
    outputs = [text_of(e) for e in elements if e.tag == "p" and "output" in e.classes]
    assert HOSTILE_SCRIPT in outputs, "the hostile caption is shown, as text, in an output box"


def test_hostile_names_prompts_and_cards_render_as_text(sample_document: dict[str, Any]) -> None:
    hostile_name = 'w4a4"><svg onload=alert(2)>'
    _rename_variant(sample_document, "w4a4", hostile_name)
    sample_document["results"][0]["samples"][0]["prompt"] = "</pre></textarea><script>alert(3)</script>"
    sample_document["variants"][1]["quant_card"]["<b onmouseover=alert(4)>"] = {"k": "<iframe src=//evil.test>"}
    sample_document["run"]["thresholds"]["<x>"] = "<style>body{display:none}</style>"
    sample_document["findings"][0]["message"] = "<a href=javascript:alert(5)>fix</a>"
    html = render_html_string(sample_document)
    elements = scan(html)
    assert [e.tag for e in elements if e.tag in ("svg", "iframe", "textarea", "b") and "alert" in str(e.attrs)] == []
    assert len([e for e in elements if e.tag == "script"]) == 1
    assert len([e for e in elements if e.tag == "style"]) == 1
    assert not [e for e in elements for name in e.attrs if name.lower().startswith("on")]
    assert not [e for e in elements if e.attrs.get("href", "").lower().startswith("javascript:")]
    assert "&lt;svg onload=alert(2)&gt;" in html
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", e.attrs["id"]) for e in elements if "id" in e.attrs)
    rows = [e for e in elements if e.tag == "tr" and e.attrs.get("data-variant") == hostile_name]
    assert rows, "the hostile name survives intact as an attribute value, escaped"


# --- the verdict matrix ---


def test_matrix_cells_carry_the_verdict_classes_and_link_to_their_section(
    sample_document_master: dict[str, Any], rendered_html: str
) -> None:
    elements = scan(rendered_html)
    ids = {e.attrs["id"] for e in elements if "id" in e.attrs}
    cells = [e for e in elements if e.tag == "td" and "cell" in e.classes]
    by_key = {}
    for cell in cells:
        for modality in cell.attrs["data-modality"].split():
            by_key[(_row_variant(cell), modality)] = cell
    for variant, row in sample_document_master["matrix"].items():
        for modality, status in row.items():
            cell = by_key[(variant, modality)]
            assert f"status-{status.lower()}" in cell.classes, (variant, modality, cell.classes)
            assert cell.attrs["data-status"] == status
    load_failed = by_key[("mlp_missing", "text")]
    assert load_failed.attrs.get("colspan") == "4" and "load-failed" in load_failed.classes
    assert "model.embed_vision.patch_dense.weight_packed" in text_of(load_failed)
    links = [e.attrs["href"] for e in elements if e.tag == "a" and any(a in cells for a in e.ancestors)]
    assert len(links) == 12, "every tested cell of the three loaded variants links to its section"
    assert all(link[1:] in ids for link in links)
    broken_image = by_key[("w4a4", "image")]
    assert "Δsimilarity -0.85 [-0.87, -0.83]" in text_of(broken_image), "a max_drop gate shows the difference"
    text_cell = by_key[("w4a4", "text")]
    assert "75% of ref [50%, 125%]" in text_of(text_cell), "a min_retention gate shows the retention"
    degraded_audio = by_key[("w4a16", "audio")]
    assert "Δwer +0.0456" in text_of(degraded_audio)


def test_headlines_name_each_variant_and_its_worst_verdict(rendered_html: str) -> None:
    items = [e for e in scan(rendered_html) if e.tag == "li" and any(a.attrs.get("id") == "headlines" for a in e.ancestors)]
    text = {e.attrs["data-variant"]: " ".join(text_of(e).split()) for e in items}
    assert text["w4a4"].startswith("BROKEN w4a4 BROKEN on image, audio, video · PASS on text")
    assert text["w4a16"].startswith("DEGRADED")
    assert "failed to load" in text["mlp_missing"]
    assert "bf16" not in text


# --- one file, no network ---


def test_report_is_one_file_under_10_mb_with_no_remote_urls(rendered_html: str) -> None:
    assert len(rendered_html.encode("utf-8")) < TEN_MB
    elements = scan(rendered_html)
    urls = [(e.tag, name, value) for e in elements for name, value in e.attrs.items() if name.lower() in URL_ATTRIBUTES]
    assert urls, "the scan sees the report's links and media"
    remote = [u for u in urls if re.match(r"\s*(https?:|ftp:|//)", u[2], re.IGNORECASE)]
    assert remote == []
    assert not re.search(r"url\(\s*['\"]?\s*(https?:|//)", rendered_html, re.IGNORECASE)
    assert not [e for e in elements if e.tag in ("link", "iframe", "object", "embed", "base")]
    sources = [value for tag, name, value in urls if name == "src"]
    assert sources and all(value.startswith("data:") for value in sources)


def test_content_security_policy_allows_only_data_media_and_the_reports_own_script(rendered_html: str) -> None:
    elements = scan(rendered_html)
    policy = next(e.attrs["content"] for e in elements if e.tag == "meta" and e.attrs.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in policy and "img-src data:" in policy and "media-src data:" in policy
    script = next(e.text for e in elements if e.tag == "script")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy


def test_readable_without_scripts_every_sample_is_in_the_page(sample_document_master: dict[str, Any], rendered_html: str) -> None:
    elements = scan(rendered_html)
    toolbar = next(e for e in elements if e.attrs.get("id") == "toolbar")
    assert "hidden" in toolbar.attrs, "the filter bar only appears when the script runs"
    articles = [e for e in elements if e.tag == "article" and "sample" in e.classes]
    total = sum(len(r["samples"]) for r in sample_document_master["results"])
    assert len(articles) == total
    folded = [a for a in articles if any(p.tag == "details" for p in a.ancestors)]
    assert 0 < len(folded) < total


def test_media_are_embedded_and_shared_media_encoded_once(sample_document_master: dict[str, Any]) -> None:
    encoder = MediaEncoder()
    view = build_view(sample_document_master, "omnicheck.json", encoder)
    media_paths = {m for r in sample_document_master["results"] for s in r["samples"] for m in s["media"]}
    assert len(encoder._cache) == len(media_paths)
    previews = [p for sec in view.sections for b in sec.blocks for pb in b.probes
                for s in pb.samples_open + pb.samples_folded for p in s.previews]
    assert {p.kind for p in previews} == {"image", "audio", "video"}
    assert all(p.ok for p in previews), [p.note for p in previews if not p.ok]


def test_media_budget_stops_embedding_and_says_so(sample_document_master: dict[str, Any]) -> None:
    small = render_html_string(sample_document_master, media_budget_bytes=60_000)
    full = render_html_string(sample_document_master)
    assert "the report&#39;s media budget is spent" in small
    assert len(small) < len(full) / 3


def test_speed_table_says_it_is_not_a_deployment_benchmark(rendered_html: str) -> None:
    section = next(e for e in scan(rendered_html) if e.attrs.get("id") == "speed")
    text = " ".join(text_of(section).split())
    assert "Not a deployment benchmark." in text and "eager-mode transformers" in text
    assert "dequantized (compressed-tensors)" in text


def test_render_html_writes_the_file_and_links_the_json(sample_document_master: dict[str, Any], tmp_path: Path) -> None:
    out = render_html(sample_document_master, tmp_path / "out" / "report.html", json_name="run-7.json")
    html = out.read_text(encoding="utf-8")
    links = [e.attrs["href"] for e in scan(html) if e.tag == "a" and e.attrs.get("href") == "run-7.json"]
    assert len(links) >= 2


# --- samples ---


def test_samples_are_worst_first_and_speech_shows_the_alignment(sample_document_master: dict[str, Any]) -> None:
    view = build_view(sample_document_master, "omnicheck.json", MediaEncoder(budget_bytes=0))
    block = next(pb for sec in view.sections for b in sec.blocks for pb in b.probes
                 if b.variant == "w4a4" and pb.probe == "speech_wer")
    samples = block.samples_open + block.samples_folded
    reference = {s["id"]: s["scores"]["wer"] for r in sample_document_master["results"]
                 if r["variant"] == "bf16" and r["probe"] == "speech_wer" for s in r["samples"]}
    variant = {s["id"]: s["scores"]["wer"] for r in sample_document_master["results"]
               if r["variant"] == "w4a4" and r["probe"] == "speech_wer" for s in r["samples"]}
    differences = [variant[s.sample_id] - reference[s.sample_id] for s in samples]
    assert differences == sorted(differences, reverse=True)
    assert len(block.samples_open) == OPEN_SAMPLES
    assert all(s.diff_mode == "alignment" for s in samples)
    worst = samples[0]
    assert "empty" in worst.flag_names
    assert {p.mark for p in worst.variant_pieces} == {"del"}, "an empty transcription: every word is missed"
    marked = [p for s in samples for p in s.variant_pieces if p.mark == "sub"]
    assert marked and all(p.title.startswith("expected: ") for p in marked)


def test_pass_blocks_fold_samples_identical_to_the_reference(sample_document_master: dict[str, Any]) -> None:
    view = build_view(sample_document_master, "omnicheck.json", MediaEncoder(budget_bytes=0))
    block = next(pb for sec in view.sections for b in sec.blocks for pb in b.probes
                 if b.variant == "w4a16" and pb.probe == "gsm8k")
    assert [s.sample_id for s in block.samples_open] == ["gsm8k-2"], "only the sample whose output changed is open"
    assert block.samples_open[0].tone == "worse"


def test_counterfactual_with_the_same_answer_is_called_media_ignored(rendered_html: str) -> None:
    notes = [" ".join(text_of(e).split()) for e in scan(rendered_html) if e.tag == "p" and "cf" in e.classes]
    assert any("the media was ignored" in n for n in notes)
    assert any("A plain grey square." in n and "ignored" not in n for n in notes)


# --- robustness to partial documents ---


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"variants": [{"name": "only", "is_reference": True}]},
        {"variants": [{"name": "ref", "is_reference": True}, {"name": "dead", "error": "no config.json -- fix: point at a model folder"}],
         "matrix": {"dead": {"text": "ERROR"}}},
        {"run": {"reference": "a"}, "results": [{"variant": "b", "probe": "p", "modality": "text", "status": "skipped",
                                                  "reason": "the model has no image input -- skipped"}]},
        {"verdicts": [{"variant": "b", "probe": "p", "modality": "audio", "status": "BROKEN", "message": "m",
                       "interval": [None, None], "retention": None, "difference": None}]},
    ],
    ids=["empty", "reference-only", "load-error", "skipped-probe", "verdict-only"],
)
def test_partial_documents_render(document: dict[str, Any]) -> None:
    html = render_html_string(document)
    elements = scan(html)
    assert any(e.attrs.get("id") == "matrix" for e in elements)
    if document.get("results"):
        assert "the model has no image input -- skipped" in html
    if "dead" in json.dumps(document):
        assert "no config.json -- fix: point at a model folder" in html


def test_missing_and_corrupt_media_become_a_note(sample_document: dict[str, Any], tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    sample = next(r for r in sample_document["results"] if r["variant"] == "w4a4" and r["probe"] == "image_caption")["samples"][0]
    sample["media"] = [str(corrupt), str(tmp_path / "gone.png")]
    html = render_html_string(sample_document)
    assert "could not decode" in html and "file not found on this machine" in html


# --- pure pieces ---


def test_word_diff_marks_changed_words_and_keeps_whitespace() -> None:
    reference = "16 - 3 - 4 = 9\n#### 18"
    variant = "16 - 3 = 13\n#### 26"
    ref_pieces, var_pieces = word_diff(reference, variant)
    assert "".join(p.text for p in ref_pieces) == reference
    assert "".join(p.text for p in var_pieces) == variant
    assert [p.text for p in var_pieces if p.mark == "ins"] == ["13", "26"]
    assert "18" in [p.text for p in ref_pieces if p.mark == "del"]


def test_alignment_pieces_follow_jiwer_and_reject_bad_indices() -> None:
    import jiwer

    scored = jiwer.process_words("he was not an ill disposed young man", "he was an ill disposal young man indeed")
    extra = {
        "alignment": [vars(c) for c in scored.alignments[0]],
        "ref_words": scored.references[0],
        "hyp_words": scored.hypotheses[0],
    }
    pieces = alignment_pieces(extra)
    assert pieces is not None
    marks = {(p.mark, p.text) for p in pieces if p.mark}
    assert marks == {("del", "not"), ("sub", "disposal"), ("ins", "indeed")}
    assert next(p.title for p in pieces if p.mark == "sub") == "expected: disposed"
    assert " ".join(p.text for p in pieces if p.mark != "del").split() == scored.hypotheses[0]
    extra["alignment"][0]["ref_end_idx"] = 99
    assert alignment_pieces(extra) is None


def test_key_figure_retention_interval_comes_from_the_difference_interval() -> None:
    figure = key_figure({"metric": "acc", "reference_value": 0.8, "variant_value": 0.6, "difference": -0.2,
                                "interval": [-0.3, -0.1], "retention": 0.75, "n": 40})
    assert figure.main == "75% of ref" and figure.interval == "[62%, 88%]"
    wer = key_figure({"metric": "wer", "reference_value": 0.05, "variant_value": 0.09, "difference": 0.04,
                             "interval": [0.01, 0.07], "retention": None})
    assert wer.main == "Δwer +0.04" and wer.interval == "[+0.01, +0.07]"


def test_pytest_html_extras_is_an_escaped_fragment() -> None:
    snippet = pytest_html_extras({"variant": "w4a4", "probe": "image_caption", "modality": "image",
                                         "status": "BROKEN", "message": "output was " + HOSTILE_SCRIPT,
                                         "metric": "similarity", "reference_value": 0.9, "variant_value": 0.1,
                                         "difference": -0.8, "interval": [-0.85, -0.75], "retention": 0.11,
                                         "findings": ["2/2 answers unchanged when the image is blanked"]})
    elements = scan(snippet)
    assert elements[0].tag == "div" and "status-broken" in elements[0].classes
    assert not [e for e in elements if e.tag in ("script", "html", "body", "style")]
    text = " ".join(text_of(elements[0]).split())
    assert "BROKEN" in text and "11% of ref" in text and HOSTILE_SCRIPT in text
    assert "2/2 answers unchanged" in text


def test_open_samples_get_media_before_folded_ones_when_the_budget_is_short(sample_document_master: dict[str, Any]) -> None:
    encoder = MediaEncoder(budget_bytes=400_000)
    view = build_view(sample_document_master, "omnicheck.json", encoder)
    blocks = [(b, p) for sec in view.sections for b in sec.blocks for p in b.probes]
    open_previews = [pv for b, p in blocks if not b.is_reference for s in p.samples_open for pv in s.previews]
    later_previews = [pv for b, p in blocks if b.is_reference for s in p.samples_folded for pv in s.previews]
    assert open_previews and all(pv.ok for pv in open_previews)
    assert any(not pv.ok for pv in later_previews), "the budget ran out on the reference's folded samples"


def test_blocks_show_at_most_max_samples_worst_first(sample_document_master: dict[str, Any]) -> None:
    view = build_view(sample_document_master, "omnicheck.json", MediaEncoder(budget_bytes=0), max_samples=2)
    block = next(pb for sec in view.sections for b in sec.blocks for pb in b.probes
                 if b.variant == "w4a4" and pb.probe == "speech_wer")
    assert len(block.samples_open) + len(block.samples_folded) == 2 and block.samples_left_out == 3
    assert "empty" in block.samples_open[0].flag_names


def test_results_without_verdicts_still_fill_the_matrix(sample_document: dict[str, Any]) -> None:
    sample_document["verdicts"] = []
    sample_document["matrix"] = {}
    rows = {r.variant: r for r in build_view(sample_document, "omnicheck.json", MediaEncoder(budget_bytes=0)).matrix}
    assert [c.status for c in rows["bf16"].cells] == ["REFERENCE"] * 4
    assert [c.status for c in rows["w4a4"].cells] == ["NO VERDICT"] * 4
    assert rows["w4a4"].cells[2].lines == [("speech_wer", "wer 0.65", "")]
    assert [c.status for c in rows["mlp_missing"].cells] == ["ERROR"] * 4
