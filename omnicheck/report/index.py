"""The document looked up by (variant, probe), and the anchors that link the page's parts to each other.

Every builder of the view (sections, matrix, chart data, findings) reads the document through one DocumentIndex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from omnicheck.types import MODALITIES


@dataclass
class DocumentIndex:
    document: Mapping[str, Any]
    variant_index: dict[str, int]  # variant name -> its position in the document, for anchors
    reference: str | None
    results: dict[tuple[str, str], tuple[int, Mapping[str, Any]]]  # (variant, probe) -> (index in results, result)
    verdicts: dict[tuple[str, str], Mapping[str, Any]]
    max_samples: int


def index_document(document: Mapping[str, Any], max_samples: int) -> DocumentIndex:
    results = {
        (str(r.get("variant")), str(r.get("probe"))): (i, r) for i, r in enumerate(document.get("results") or [])
    }
    verdicts = {(str(v.get("variant")), str(v.get("probe"))): v for v in document.get("verdicts") or []}
    return DocumentIndex(document, variant_positions(document), reference_name(document), results, verdicts, max_samples)


def variant_positions(document: Mapping[str, Any]) -> dict[str, int]:
    names: list[str] = [str(v.get("name")) for v in document.get("variants") or []]
    for item in [*(document.get("results") or []), *(document.get("verdicts") or [])]:
        if str(item.get("variant")) not in names:
            names.append(str(item.get("variant")))
    for name in document.get("matrix") or {}:
        if name not in names:
            names.append(name)
    return {name: i for i, name in enumerate(names)}


def reference_name(document: Mapping[str, Any]) -> str | None:
    for variant in document.get("variants") or []:
        if variant.get("is_reference"):
            return str(variant.get("name"))
    run_ref = (document.get("run") or {}).get("reference")
    return str(run_ref) if run_ref else None


def document_modalities(document: Mapping[str, Any]) -> list[str]:
    seen = list(MODALITIES)
    extra = [
        *(r.get("modality") for r in document.get("results") or []),
        *(v.get("modality") for v in document.get("verdicts") or []),
        *(m for row in (document.get("matrix") or {}).values() if isinstance(row, dict) for m in row),
    ]
    for modality in extra:
        if modality and modality not in seen:
            seen.append(str(modality))
    return seen


def probes_by_modality(document: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in [*(document.get("results") or []), *(document.get("verdicts") or [])]:
        modality, probe = str(item.get("modality")), str(item.get("probe"))
        if probe not in out.setdefault(modality, []):
            out[modality].append(probe)
    return out


def block_anchor(variant_index: int, modality: str) -> str:
    return f"v{variant_index}-{re.sub(r'[^a-z0-9]+', '-', modality.lower())}"


def probe_anchor(variant_index: int, probe: str) -> str:
    return f"v{variant_index}-p-{re.sub(r'[^A-Za-z0-9_]+', '-', probe)}"
