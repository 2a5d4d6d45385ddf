"""The report in a real headless Chromium, loaded from disk: it renders, plays, runs only its own script, and
requests nothing beyond the file itself. Saves reports/ci-artifacts/report.png for CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from cdp import Browser, find_chromium

from omnicheck.report.render import render_html

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH: install Debian's chromium (apt-get install chromium) to run it"
)

AUDIO_METADATA = """new Promise(resolve => {
  const audio = document.querySelector("audio");
  if (!audio) { resolve(null); return; }
  const report = () => resolve({state: audio.readyState, duration: audio.duration,
                                error: audio.error ? audio.error.code : null});
  if (audio.readyState >= 1) { report(); return; }
  audio.addEventListener("loadedmetadata", report);
  audio.addEventListener("error", report);
  audio.load();
  setTimeout(report, 10000);
})"""

MATRIX = """Array.from(document.querySelectorAll("#matrix td.cell")).map(td => ({
  variant: td.closest("tr").dataset.variant, modalities: td.dataset.modality.split(" "),
  status: td.dataset.status, cls: td.className, width: td.getBoundingClientRect().width,
  color: getComputedStyle(td).backgroundColor}))"""

IMAGES = """Array.from(document.images).map(img => ({ok: img.complete && img.naturalWidth > 0,
  scheme: img.src.split(":")[0]}))"""


@pytest.fixture
def report_file(sample_document_master: dict[str, Any], tmp_path: Path) -> Path:
    (tmp_path / "omnicheck.json").write_text(json.dumps(sample_document_master), encoding="utf-8")
    return render_html(sample_document_master, tmp_path / "report.html")


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None
    with Browser(CHROMIUM, width=1400, height=1600) as opened:
        yield opened


def _remote(urls: list[str]) -> list[str]:
    return [u for u in urls if not u.startswith(("file://", "data:"))]


def test_report_renders_plays_and_stays_offline(
    report_file: Path, browser: Browser, sample_document_master: dict[str, Any], repo_root: Path
) -> None:
    browser.navigate(report_file.as_uri())
    browser.settle(1.0)

    cells = browser.evaluate(MATRIX)
    seen = {(c["variant"], m): c for c in cells for m in c["modalities"]}
    for variant, row in sample_document_master["matrix"].items():
        for modality, status in row.items():
            cell = seen[(variant, modality)]
            assert cell["status"] == status and f"status-{status.lower()}" in cell["cls"]
            assert cell["width"] > 100, "the matrix is laid out, not collapsed"
    colors = {c["status"]: c["color"] for c in cells}
    assert len({colors["PASS"], colors["BROKEN"], colors["DEGRADED"], colors["REFERENCE"]}) == 4

    images = browser.evaluate(IMAGES)
    assert len(images) >= 10 and all(i["ok"] for i in images) and {i["scheme"] for i in images} == {"data"}
    first_thumb = browser.evaluate(
        "(() => { const r = document.querySelector('img.thumb').getBoundingClientRect(); return [r.width, r.height]; })()"
    )
    assert first_thumb[0] > 100 and first_thumb[1] > 50, "a sample's image is visible on the page"
    audio = browser.evaluate(AUDIO_METADATA, await_promise=True)
    assert audio is not None and audio["error"] is None and audio["state"] >= 1
    assert 0.5 < audio["duration"] <= 10.1, "the embedded clip decodes and is at most 10 s"

    assert browser.evaluate("document.getElementById('toolbar').hidden") is False, "the report's own script ran"
    browser.evaluate("document.getElementById('only-problems').click()")
    hidden_pass = browser.evaluate(
        "getComputedStyle(document.querySelector('.vblock.status-pass')).display"
    )
    assert hidden_pass == "none", "the filter hides passing blocks"
    browser.evaluate("document.getElementById('only-problems').click()")

    events = [e["method"] for e in browser.events]
    assert "Page.javascriptDialogOpening" not in events, "no model output ran as script"
    console = [e["params"]["entry"]["text"] for e in browser.events if e["method"] == "Log.entryAdded"]
    assert not [t for t in console if "Content Security Policy" in t or "Refused" in t], console

    urls = browser.requested_urls()
    assert report_file.as_uri() in urls, "the request log works: it saw the page itself"
    assert _remote(urls) == []

    artifact = browser.screenshot(repo_root / "reports" / "ci-artifacts" / "report.png")
    assert artifact.stat().st_size > 20_000


def test_report_reads_the_same_with_scripts_disabled(report_file: Path, browser: Browser) -> None:
    browser.call("Emulation.setScriptExecutionDisabled", {"value": True}, session=True)
    browser.navigate(report_file.as_uri())
    assert browser.evaluate("document.getElementById('toolbar').hidden") is True
    assert browser.evaluate("document.querySelectorAll('#matrix td.cell').length") == 13
    assert browser.evaluate("document.querySelectorAll('article.sample').length") > 30
    open_samples = browser.evaluate(
        "Array.from(document.querySelectorAll('article.sample')).filter(a => a.getBoundingClientRect().height > 0).length"
    )
    assert open_samples > 5, "the worst samples are open without any script"
    assert _remote(browser.requested_urls()) == []


def test_request_log_catches_a_page_that_reaches_out(tmp_path: Path, browser: Browser) -> None:
    """The control: the same check fails for a page that asks the network for something."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text(
        '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/pixel.png">'
        '<script src="https://omnicheck.invalid/x.js"></script></body></html>',
        encoding="utf-8",
    )
    browser.navigate(leaky.as_uri())
    browser.settle(0.5)
    remote = _remote(browser.requested_urls())
    assert "http://127.0.0.1:9/pixel.png" in remote and "https://omnicheck.invalid/x.js" in remote
