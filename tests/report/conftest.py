from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from sample_document import build_document


@pytest.fixture(scope="session")
def sample_document_master(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_document(tmp_path_factory.mktemp("report-media"))


@pytest.fixture
def sample_document(sample_document_master: dict[str, Any]) -> dict[str, Any]:
    """A fresh deep copy per test, so a test may edit it freely."""
    return copy.deepcopy(sample_document_master)


@pytest.fixture(scope="session")
def rendered_html(sample_document_master: dict[str, Any]) -> str:
    from omnicheck.report.render import render_html_string

    return render_html_string(sample_document_master)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
