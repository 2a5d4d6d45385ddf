"""omnicheck.json: the run's one document (the source of truth for every report), written atomically, and the
merge of pytest-xdist workers' parts into one.

Built from plain data (the run's config, each variant's state, results and verdicts); nothing here runs a model.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from omnicheck import __version__
from omnicheck.backends import backend_kind
from omnicheck.engines import engines_block
from omnicheck.environment import environment
from omnicheck.run import RunConfig, VariantState
from omnicheck.types import ProbeResult, Verdict, worst

SCHEMA_VERSION = 1


def build_document(
    run: RunConfig,
    started: _dt.datetime,
    states: Mapping[str, VariantState],
    results: Iterable[ProbeResult],
    verdicts: Iterable[Verdict],
    generation: Mapping[str, dict[str, Any]],
    reference_cache: Mapping[str, int],
) -> dict[str, Any]:
    """generation: probe -> the generation settings it ran with; reference_cache: hits, misses, generations."""
    results, verdicts = list(results), [v.to_json() for v in verdicts]
    variants = [variant_json(state) for state in states.values()]
    return {
        "schema_version": SCHEMA_VERSION,
        "omnicheck_version": __version__,
        "created": started.isoformat(timespec="seconds"),
        "run": {
            "argv": run.argv,
            "tier": run.tier,
            "limit": run.limit,
            "reference": run.reference.name,
            "probes": run.probes,
            "settings": dict(generation),
            "thresholds": run.settings.to_json(),
            "reference_cache": dict(reference_cache),
        },
        "environment": environment(_device_name(run, states)),
        "variants": variants,
        "results": [r.to_json() for r in results],
        "verdicts": verdicts,
        "matrix": matrix(verdicts),
        "engines": engines_block(variants, verdicts, run.reference.name),
        "findings": _findings(states),
        "speed": _speed(results, states),
    }


def _findings(states: Mapping[str, VariantState]) -> list[dict[str, Any]]:
    findings = []
    for name, state in states.items():
        for finding in state.description.get("findings", []):
            if not isinstance(finding, dict):
                finding = {"variant": name, "modality": None, "severity": "warning", "code": "diagnosis",
                           "message": str(finding)}
            findings.append(finding)
        for lint in state.lints:
            findings.append({"variant": name, "modality": None, **lint})
    return findings


def _device_name(run: RunConfig, states: Mapping[str, VariantState]) -> str:
    for state in states.values():
        if state.description.get("device"):
            return state.description["device"]
    return run.device or "cpu"


def variant_json(state: VariantState) -> dict[str, Any]:
    desc = {k: v for k, v in state.description.items() if k != "findings"}
    return {
        "name": state.variant.name,
        "location": state.variant.location,
        "is_reference": state.variant.is_reference,
        "backend": backend_kind(state.variant),
        "fingerprint": state.fingerprint,
        "model_type": desc.get("model_type"),
        "modalities": desc.get("modalities", []),
        "description": desc,
        "quant_card": state.card,
        "lints": state.lints,
        "execution_path": state.execution_path,
        "load_seconds": desc.get("load_seconds"),
        "engine": state.engine,
        "weights": state.weights,
        "error": state.error,
    }


def _speed(results: Iterable[ProbeResult], states: Mapping[str, VariantState]) -> list[dict[str, Any]]:
    rows = []
    for result in results:
        if result.status != "ok" or result.cached or not result.seconds:
            continue
        state = states.get(result.variant)
        rows.append({
            "variant": result.variant,
            "probe": result.probe,
            "seconds": round(result.seconds, 3),
            "generated_tokens": result.generated_tokens,
            "tokens_per_s": round(result.generated_tokens / result.seconds, 2) if result.generated_tokens else None,
            "execution_path": state.execution_path if state else None,
            "label": _speed_label(state),
        })
    return rows


def _speed_label(state: VariantState | None) -> str:
    if state is not None and state.variant.is_url:
        runtime = (state.description.get("execution_path") or {}).get("runtime", "the server")
        return f"measured through {runtime} over HTTP: includes request overhead and concurrency"
    return "measured in-process (transformers eager): not a deployment speed"


def matrix(verdicts: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """variant -> modality -> the worst verdict among that modality's probes."""
    cells: dict[str, dict[str, str]] = {}
    for verdict in verdicts:
        row = cells.setdefault(verdict["variant"], {})
        row[verdict["modality"]] = worst([row.get(verdict["modality"]), verdict["status"]]).value
    return cells


# --- writing, and merging pytest-xdist workers' parts ---


def parts_dir(report_dir: Path | str) -> Path:
    return Path(report_dir) / ".parts"


def write_json(document: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(document, indent=1, default=str))
    os.replace(tmp, path)
    return path


def _told(variant: dict[str, Any]) -> int:
    """How much a worker's part knows of a variant: 2 where it loaded the model (the backend described itself),
    1 where it judged results it did not compute (cached or resumed: divergence and findings, no load), else 0."""
    description = variant.get("description") or {}
    return 2 if "backend" in description else 1 if description else 0


def merge_documents(parts: list[dict[str, Any]], order: list[Any]) -> dict[str, Any]:
    """Workers each saw some variants (and each its own copy of the reference): keep, per variant, the part
    that ran it, and every (variant, probe) result and verdict once. order: the run's variants."""
    merged = dict(parts[0])
    rank = {v.name: i for i, v in enumerate(order)}
    variants: dict[str, dict[str, Any]] = {}
    for part in parts:
        for variant in part["variants"]:
            seen = variants.get(variant["name"])
            if seen is None or _told(variant) > _told(seen):
                variants[variant["name"]] = variant
    merged["variants"] = sorted(variants.values(), key=lambda v: rank.get(v["name"], len(rank)))
    for key in ("results", "verdicts"):
        unique: dict[tuple[str, str], dict[str, Any]] = {}
        for part in parts:
            for item in part[key]:
                unique.setdefault((item["variant"], item["probe"]), item)
        merged[key] = sorted(unique.values(), key=lambda r: (rank.get(r["variant"], len(rank)), r["probe"]))
    merged["matrix"] = matrix(merged["verdicts"])
    merged["engines"] = engines_block(merged["variants"], merged["verdicts"], merged["run"]["reference"])
    findings, speed = [], []
    for part in parts:
        findings += [f for f in part["findings"] if f not in findings]
        speed += [s for s in part["speed"] if s not in speed]
    merged["findings"], merged["speed"] = findings, speed
    merged["run"] = dict(merged["run"])
    merged["run"]["workers"] = len(parts)
    merged["run"]["reference_cache"] = {
        k: sum(p["run"]["reference_cache"][k] for p in parts) for k in parts[0]["run"]["reference_cache"]
    }
    return merged
