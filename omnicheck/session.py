"""Orchestration, usable without pytest: variants -> probes -> comparison -> verdicts -> reports.

At most one model is resident at a time. The reference runs first (or comes from the cache), every result is
written to the JSON document as soon as it exists, so an interrupted run keeps what it computed.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from omnicheck import __version__
from omnicheck.errors import OmnicheckError, UnsupportedModality
from omnicheck.probes import PROBES, load_probe, modality_of
from omnicheck.store import ReferenceStore, cache_key, fingerprint_files, fingerprint_model
from omnicheck.types import GenerationSettings, ProbeResult, Sample, Verdict
from omnicheck.variants import Variant, variant_label

SCHEMA_VERSION = 1
PACKAGES = ("torch", "transformers", "compressed-tensors", "lm-eval", "jiwer", "librosa", "av", "numpy", "pytest")


@dataclass
class RunConfig:
    variants: list[Variant]
    probes: list[str] = field(default_factory=lambda: list(PROBES))
    tier: str = "smoke"
    report_dir: Path = Path("reports")
    data: dict[str, Path] = field(default_factory=dict)
    settings: Any = None  # omnicheck.config.Settings: thresholds, statistics, inconclusive policy
    refresh_reference: bool = False
    cache_dir: Path | None = None
    device: str | None = None
    batch_size: int | None = None
    max_new_tokens: int | None = None
    limit: int | None = None  # at most this many samples per probe, spread over the tier's set
    worker: str | None = None  # a pytest-xdist worker writes a part; the controller merges the parts
    argv: list[str] = field(default_factory=list)
    write_html: bool = True

    @property
    def reference(self) -> Variant:
        return next(v for v in self.variants if v.is_reference)


@dataclass
class VariantState:
    variant: Variant
    fingerprint: str | None = None
    description: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] | None = None
    lints: list[dict[str, Any]] = field(default_factory=list)
    execution_path: dict[str, Any] | None = None
    error: str | None = None


class Session:
    def __init__(self, run: RunConfig, progress: Callable[[str], None] | None = None):
        self.run = run
        self.progress = progress or (lambda _msg: None)
        self.store = ReferenceStore(Path(run.cache_dir) / "reference" if run.cache_dir else None)
        self.states = {v.name: VariantState(v) for v in run.variants}
        self.results: dict[tuple[str, str], ProbeResult] = {}
        self.verdicts: dict[tuple[str, str], Verdict] = {}
        self.selected: list[tuple[str, str]] = [(v.name, p) for v in run.variants for p in run.probes]
        self.reference_generations = 0  # reference probe runs that needed the model (0 on a cache hit)
        self._probes: dict[str, Any] = {}
        self._samples: dict[str, list[Sample]] = {}
        self._loaded: tuple[str, Any] | None = None
        self.tokens: dict[str, Any] = {}  # probe -> the reference's teacher-forced top-k (teacher_forcing.ReferenceTokens)
        self.started = _dt.datetime.now(_dt.timezone.utc)

    # --- probes and samples ---

    def probe(self, name: str):
        if name not in self._probes:
            self._probes[name] = load_probe(name, self.run.data.get(name))
        return self._probes[name]

    def samples(self, name: str) -> list[Sample]:
        if name not in self._samples:
            samples = self.probe(name).load_samples(self.run.tier)
            if self.run.limit is not None:
                from omnicheck.probes.common import spread

                samples = spread(samples, self.run.limit)
            self._samples[name] = samples
        return self._samples[name]

    def generation_settings(self, probe_name: str) -> GenerationSettings:
        base = self.probe(probe_name).settings
        configured = self.run.settings.max_new_tokens_for(probe_name, base.max_new_tokens) if self.run.settings else None
        return GenerationSettings(
            max_new_tokens=self.run.max_new_tokens or configured or base.max_new_tokens,
            batch_size=self.run.batch_size or base.batch_size,
            do_sample=False,
            counterfactual=getattr(self.run.settings, "counterfactual", True),
        )

    # --- models: one resident at a time ---

    def backend(self, name: str):
        if self._loaded and self._loaded[0] == name:
            return self._loaded[1]
        self.release()
        state = self.states[name]
        if state.error:
            raise _LoadFailed(state.error)
        self.inspect(name)
        from omnicheck.backends import open_backend

        self.progress(f"loading {name} ({state.variant.location})")
        try:
            served_cache = (Path(self.run.cache_dir) if self.run.cache_dir else self.store.root.parent) / "served"
            backend = open_backend(state.variant, device=self.run.device, cache_dir=served_cache)
        except OmnicheckError as err:
            state.error = str(err)
            self._write_json()
            raise _LoadFailed(state.error) from None
        state.description = backend.describe()
        self._loaded = (name, backend)
        return backend

    def release(self) -> None:
        if self._loaded:
            self._loaded[1].close()
            self._loaded = None

    def inspect(self, name: str) -> None:
        """Fingerprint and quant card, read statically before any weights load."""
        state = self.states[name]
        if state.fingerprint is not None or state.variant.is_url:
            return
        if not state.variant.path.is_dir():
            return  # the load reports the bad path in one line
        state.fingerprint = fingerprint_model(state.variant.path)
        try:
            from omnicheck.formats import inspect_checkpoint
        except ImportError:  # the formats package arrives separately
            return
        try:
            card = inspect_checkpoint(state.variant.path)
        except OmnicheckError as err:
            state.lints.append({"severity": "error", "code": "card-unreadable", "message": str(err)})
            return
        state.card = card.to_json()
        state.lints = [lint.to_json() for lint in card.lints]
        state.execution_path = card.execution_path()

    # --- results ---

    def result(self, variant: str, probe: str) -> ProbeResult:
        key = (variant, probe)
        if key in self.results:
            return self.results[key]
        if self.states[variant].variant.is_reference:
            self._run_reference([p for v, p in self.selected if v == variant and (v, p) not in self.results] or [probe])
        else:
            self.results[key] = self._run(variant, probe)
        self._write_json()
        return self.results[key]

    def _run_reference(self, probes: list[str]) -> None:
        """All the reference's pending probes in one model load, each from the cache when it can be."""
        name = self.run.reference.name
        for probe in probes:
            if (name, probe) in self.results:
                continue
            key = self._cache_key(probe)
            if key is None:
                self.results[(name, probe)] = self._run(name, probe)
                self.reference_generations += self.results[(name, probe)].status == "ok"
                self._reference_tokens(probe, None)
                continue
            with self.store.lock(probe, key):
                cached = None if self.run.refresh_reference else self.store.get(probe, key)
                if cached is not None:
                    self.progress(f"{name} {probe}: reference results from cache")
                    self.results[(name, probe)] = cached
                    self._reference_tokens(probe, key)
                    continue
                result = self._run(name, probe)
                if result.status == "ok":
                    self.reference_generations += 1
                    self.store.put(probe, key, result)
                self.results[(name, probe)] = result
                self._reference_tokens(probe, key)

    def _cache_key(self, probe: str) -> str | None:
        state = self.states[self.run.reference.name]
        self.inspect(state.variant.name)
        if state.fingerprint is None:
            return None
        try:
            samples = self.samples(probe)
        except OmnicheckError:
            return None
        media = [str(p.path) for s in samples for m in s.messages for p in m.media()]
        return cache_key(
            state.fingerprint,
            self.probe(probe).fingerprint(),
            [s.id for s in samples],
            fingerprint_files(media),
            {**self.generation_settings(probe).key(), "tier": self.run.tier},
        )

    def _run(self, variant: str, probe_name: str) -> ProbeResult:
        modality = modality_of(probe_name)
        start = time.perf_counter()
        try:
            backend = self.backend(variant)
            if modality not in backend.modalities:
                raise UnsupportedModality(
                    f"{variant_label(variant, backend.describe().get('model_type'))} takes no {modality} input",
                    "nothing to fix: the probe does not apply to this model",
                )
            probe = self.probe(probe_name)
            samples = self.samples(probe_name)
            self.progress(f"{variant} {probe_name}: {len(samples)} samples")
            if hasattr(backend, "on_batch"):
                backend.on_batch = _Throughput(f"{variant} {probe_name}", self.progress)
            result = probe.run(backend, samples, self.generation_settings(probe_name))
            result.variant = variant
            if not self.states[variant].variant.is_reference:
                self._variant_divergence(backend, probe_name, result)
            return result
        except UnsupportedModality as err:
            return self._failed(variant, probe_name, "skipped", str(err), start)
        except _LoadFailed as err:
            return self._failed(variant, probe_name, "error", str(err), start)
        except OmnicheckError as err:
            return self._failed(variant, probe_name, "error", str(err), start)
        except Exception as err:  # an unexpected failure in one probe must not lose the others
            failed = self._failed(variant, probe_name, "error", f"{type(err).__name__}: {err}", start)
            failed.info["traceback"] = traceback.format_exc()
            return failed

    # --- teacher-forced divergence (omnicheck.teacher_forcing) ---

    def _divergence_settings(self) -> tuple[bool, int]:
        from omnicheck.teacher_forcing import DEFAULT_TOP_K

        settings = self.run.settings
        return getattr(settings, "divergence", True), getattr(settings, "divergence_top_k", DEFAULT_TOP_K)

    def _reference_tokens(self, probe: str, key: str | None) -> None:
        """The reference's top-k along its answers and the A/A floor: from beside the cache, else one pass."""
        from omnicheck import teacher_forcing as tf

        enabled, top_k = self._divergence_settings()
        name = self.run.reference.name
        result = self.results[(name, probe)]
        if not enabled or result.status != "ok":
            return
        tokens = None
        if key is not None and not self.run.refresh_reference:
            data = self.store.get_tokens(probe, key, tf.SCHEMA)
            if data is not None:
                try:
                    tokens = tf.ReferenceTokens.from_json(data)
                except (KeyError, ValueError, TypeError) as err:
                    self.progress(f"{name} {probe}: cached token scores unreadable ({err}): scoring again")
            elif result.cached:
                older = self.store.other_token_schemas(probe, key, tf.SCHEMA)
                made_by = f"token scores of schema {older} only" if older else "no token scores"
                self.progress(f"{name} {probe}: the cached reference has {made_by} (cached by another omnicheck "
                              "version): scoring its cached answers once with the reference model; its answers are kept")
        if tokens is None:
            if result.cached and self.probe(probe).renders_prompts:
                tokens = tf.ReferenceTokens(top_k=top_k, reason=(
                    "the cached reference predates token scores and lm-eval's prompts are not kept with it -- fix: "
                    "--omnicheck-refresh-reference once"))
                self.progress(f"{name} {probe}: divergence not available: {tokens.reason}")
            else:
                try:
                    backend = self.backend(name)
                    batch = self.generation_settings(probe).batch_size
                    prompts = self.probe(probe).rendered_prompts()
                    tokens = tf.reference_pass(backend, self.samples(probe), result, prompts, top_k, batch)
                except Exception as err:  # a scoring failure must not cost the results already made
                    tokens = tf.ReferenceTokens(top_k=top_k, reason=f"{type(err).__name__}: {err}".splitlines()[0])
                if tokens.reason:
                    self.progress(f"{name} {probe}: divergence not available: {tokens.reason}")
                elif key is not None:
                    self.store.put_tokens(probe, key, tf.SCHEMA, tokens.to_json())
        self.tokens[probe] = tokens
        tf.attach_reference(result, tokens, cached=result.cached)

    def _variant_divergence(self, backend: Any, probe: str, result: ProbeResult) -> None:
        from omnicheck import teacher_forcing as tf

        enabled, top_k = self._divergence_settings()
        if not enabled or result.status != "ok":
            return
        tokens = self.tokens.get(probe)
        reference = self.results.get((self.run.reference.name, probe))
        if tokens is None or reference is None:
            tf.not_available(result, "the reference's token scores are not there (the reference has not run)")
            return
        try:
            outcome = tf.variant_pass(backend, self.samples(probe), reference, tokens, self.probe(probe).rendered_prompts(),
                                      self.generation_settings(probe).batch_size)
        except Exception as err:  # a scoring failure must not cost the variant's results
            outcome = tf.VariantDivergence(reason=f"{type(err).__name__}: {err}".splitlines()[0])
        if outcome.reason and not tokens.reason:
            self.progress(f"{result.variant} {probe}: divergence not available: {outcome.reason}")
        tf.attach_variant(result, outcome, tokens.top_k)

    def _failed(self, variant: str, probe: str, status: str, reason: str, start: float) -> ProbeResult:
        metrics = list(getattr(self._probes.get(probe), "metrics", []))
        return ProbeResult(
            variant=variant,
            probe=probe,
            modality=modality_of(probe),
            status=status,  # type: ignore[arg-type]
            metrics=metrics,
            reason=reason,
            seconds=time.perf_counter() - start,
        )

    # --- verdicts ---

    def verdict(self, variant: str, probe: str) -> Verdict:
        key = (variant, probe)
        if key in self.verdicts:
            return self.verdicts[key]
        reference_name = self.run.reference.name
        if variant != reference_name:
            self.result(reference_name, probe)  # the reference first: loads it at most once for all probes
        from omnicheck import gate

        result = self.result(variant, probe)
        reference = self.results[(reference_name, probe)]
        card = self.states[variant].card
        verdict = gate.judge(reference, result, self.run.settings, card=card)
        self.verdicts[key] = verdict
        if verdict.status in ("BROKEN", "DEGRADED") and verdict.modality != "text" and card and card.get("activation_quantized"):
            self._diagnose_ranges(variant)
        self._diagnose(variant)
        self._write_json()
        return verdict

    def _diagnose_ranges(self, variant: str) -> None:
        """Why a media modality broke under activation quantization: how much of each quantized layer's input the
        stored scales clip, per modality (one sample each). Runs once per variant, on the model already loaded."""
        state = self.states[variant]
        if "activation_ranges" in state.description or not (self._loaded and self._loaded[0] == variant):
            return
        backend = self._loaded[1]
        if not hasattr(backend, "_inputs"):
            return  # a served model: its activations cannot be hooked from here
        from omnicheck.formats.diagnosis import diagnose_activation_ranges
        from omnicheck.types import Message

        inputs = {"text": [backend._inputs([Sample("text", (Message.user("Describe a sunny day in one sentence."),))])]}
        for probe in self.run.probes:
            modality = modality_of(probe)
            if modality != "text" and modality not in inputs and modality in backend.modalities:
                try:
                    inputs[modality] = [backend._inputs(self.samples(probe)[:1])]
                except OmnicheckError:
                    continue
        try:
            diagnosis = diagnose_activation_ranges(backend.generator, inputs)
        except Exception as err:  # a diagnosis failure must not cost the verdicts already made
            state.description["activation_ranges"] = {"error": f"{type(err).__name__}: {err}"}
            return
        state.description["activation_ranges"] = diagnosis.to_json()

    def _diagnose(self, variant: str) -> None:
        from omnicheck import gate

        mine = [v for (name, _), v in self.verdicts.items() if name == variant]
        description = self.states[variant].description
        findings = gate.diagnose(mine, self.states[variant].card)
        ranges = description.get("activation_ranges") or {}
        findings += [f"activation ranges: {line}" for line in ranges.get("summary", [])]
        findings += self._divergence_findings(variant)
        description["findings"] = findings

    def _divergence_findings(self, variant: str) -> list[str]:
        """Per-modality divergence into the variant's description; the modality interaction in words."""
        from omnicheck.divergence_verdict import interaction, modality_divergence

        settings = self.run.settings
        level = 2.0 * getattr(settings, "confidence", 0.95) - 1.0
        resamples, seed = getattr(settings, "bootstrap_resamples", 2000), getattr(settings, "seed", 0)
        mine = [r for (name, _), r in self.results.items() if name == variant]
        references = {p: r for (name, p), r in self.results.items() if name == self.run.reference.name}
        per_modality = modality_divergence(mine, references, level, resamples, seed)
        contrasts, sentences = interaction(per_modality, self.states[variant].card, level, resamples, seed)
        self.states[variant].description["divergence"] = {
            "per_modality": {m: {k: v for k, v in d.items() if k != "kl_samples"} for m, d in per_modality.items()},
            "contrasts": contrasts,
        }
        return [f"divergence: {s}" for s in sentences]

    # --- reports ---

    def document(self) -> dict[str, Any]:
        findings = []
        for name, state in self.states.items():
            for finding in state.description.get("findings", []):
                if not isinstance(finding, dict):
                    finding = {"variant": name, "modality": None, "severity": "warning", "code": "diagnosis",
                               "message": str(finding)}
                findings.append(finding)
            for lint in state.lints:
                findings.append({"variant": name, "modality": None, **lint})
        return {
            "schema_version": SCHEMA_VERSION,
            "omnicheck_version": __version__,
            "created": self.started.isoformat(timespec="seconds"),
            "run": {
                "argv": self.run.argv,
                "tier": self.run.tier,
                "limit": self.run.limit,
                "reference": self.run.reference.name,
                "probes": self.run.probes,
                "settings": {p: self.generation_settings(p).key() for p in self.run.probes if p in self._probes},
                "thresholds": _settings_json(self.run.settings),
                "reference_cache": {"hits": self.store.hits, "misses": self.store.misses,
                                    "reference_generations": self.reference_generations},
            },
            "environment": environment(self._device_name()),
            "variants": [self._variant_json(state) for state in self.states.values()],
            "results": [r.to_json() for r in self.results.values()],
            "verdicts": [v.to_json() for v in self.verdicts.values()],
            "matrix": matrix([v.to_json() for v in self.verdicts.values()]),
            "findings": findings,
            "speed": self._speed(),
        }

    def _device_name(self) -> str:
        for state in self.states.values():
            if state.description.get("device"):
                return state.description["device"]
        return self.run.device or "cpu"

    def _variant_json(self, state: VariantState) -> dict[str, Any]:
        desc = {k: v for k, v in state.description.items() if k != "findings"}
        return {
            "name": state.variant.name,
            "location": state.variant.location,
            "is_reference": state.variant.is_reference,
            "backend": "openai" if state.variant.is_url else "hf",
            "fingerprint": state.fingerprint,
            "model_type": desc.get("model_type"),
            "modalities": desc.get("modalities", []),
            "description": desc,
            "quant_card": state.card,
            "lints": state.lints,
            "execution_path": state.execution_path,
            "load_seconds": desc.get("load_seconds"),
            "error": state.error,
        }

    def _speed(self) -> list[dict[str, Any]]:
        rows = []
        for result in self.results.values():
            if result.status != "ok" or result.cached or not result.seconds:
                continue
            state = self.states.get(result.variant)
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

    def write_reports(self, html: bool | None = None) -> list[Path]:
        paths = [self._write_json()]
        if self.run.worker is None and (self.run.write_html if html is None else html):
            from omnicheck.report.html import render_html

            paths.append(render_html(self.document(), Path(self.run.report_dir) / "report.html"))
        return paths

    def _write_json(self) -> Path:
        if self.run.worker is None:
            return write_json(self.document(), Path(self.run.report_dir) / "omnicheck.json")
        return write_json(self.document(), parts_dir(self.run.report_dir) / f"omnicheck-{self.run.worker}.json")

    def merge_parts(self) -> list[Path]:
        """On the pytest-xdist controller: one JSON and one HTML from every worker's part."""
        parts = sorted(parts_dir(self.run.report_dir).glob("omnicheck-*.json"))
        if not parts:
            return []
        document = merge_documents([json.loads(p.read_text()) for p in parts], self.run.variants)
        self.merged = document
        paths = [write_json(document, Path(self.run.report_dir) / "omnicheck.json")]
        if self.run.write_html:
            from omnicheck.report.html import render_html

            paths.append(render_html(document, Path(self.run.report_dir) / "report.html"))
        for part in parts:
            part.unlink()
        return paths

    def close(self) -> None:
        self.release()


def parts_dir(report_dir: Path | str) -> Path:
    return Path(report_dir) / ".parts"


def write_json(document: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(document, indent=1, default=str))
    os.replace(tmp, path)
    return path


def matrix(verdicts: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """variant -> modality -> the worst verdict among that modality's probes."""
    cells: dict[str, dict[str, str]] = {}
    for verdict in verdicts:
        row = cells.setdefault(verdict["variant"], {})
        row[verdict["modality"]] = _worse(row.get(verdict["modality"]), verdict["status"])
    return cells


def merge_documents(parts: list[dict[str, Any]], order: list[Variant]) -> dict[str, Any]:
    """Workers each saw some variants (and each its own copy of the reference): keep, per variant, the part
    that ran it, and every (variant, probe) result and verdict once."""
    merged = dict(parts[0])
    rank = {v.name: i for i, v in enumerate(order)}
    variants: dict[str, dict[str, Any]] = {}
    for part in parts:
        for variant in part["variants"]:
            seen = variants.get(variant["name"])
            if seen is None or (not seen.get("description") and variant.get("description")):
                variants[variant["name"]] = variant
    merged["variants"] = sorted(variants.values(), key=lambda v: rank.get(v["name"], len(rank)))
    for key in ("results", "verdicts"):
        unique: dict[tuple[str, str], dict[str, Any]] = {}
        for part in parts:
            for item in part[key]:
                unique.setdefault((item["variant"], item["probe"]), item)
        merged[key] = sorted(unique.values(), key=lambda r: (rank.get(r["variant"], len(rank)), r["probe"]))
    merged["matrix"] = matrix(merged["verdicts"])
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


def _speed_label(state: VariantState | None) -> str:
    if state is not None and state.variant.is_url:
        runtime = (state.description.get("execution_path") or {}).get("runtime", "the server")
        return f"measured through {runtime} over HTTP: includes request overhead and concurrency"
    return "measured in-process (transformers eager): not a deployment speed"


class _Throughput:
    """'w4a4 speech_wer: 40/120 samples, 3.1/s' at most every `every` seconds, so CI logs stay short."""

    def __init__(self, label: str, emit: Callable[[str], None], every: float = 30.0):
        self.label, self.emit, self.every = label, emit, every
        self.start = self.last = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every or (done == total and now - self.start >= self.every):
            self.last = now
            self.emit(f"{self.label}: {done}/{total} samples, {done / max(now - self.start, 1e-9):.1f}/s")


class _LoadFailed(Exception):
    pass


_SEVERITY = ["REFERENCE", "PASS", "SKIPPED", "INCONCLUSIVE", "DEGRADED", "ERROR", "BROKEN"]


def _worse(a: str | None, b: str) -> str:
    if a is None:
        return b
    return a if _SEVERITY.index(a) >= _SEVERITY.index(b) else b


def _settings_json(settings: Any) -> Any:
    if settings is None:
        return None
    to_json = getattr(settings, "to_json", None)
    if callable(to_json):
        return to_json()
    from dataclasses import asdict, is_dataclass

    return asdict(settings) if is_dataclass(settings) else str(settings)


def environment(device: str) -> dict[str, Any]:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "device": device,
            "packages": dict(_package_versions())}


@functools.lru_cache(maxsize=1)
def _package_versions() -> tuple[tuple[str, str], ...]:
    """Read once per process: the document is rewritten after every result, the installed versions do not change."""
    from importlib import metadata

    found = []
    for name in PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(found)
