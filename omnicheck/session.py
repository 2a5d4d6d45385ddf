"""Orchestration, usable without pytest: variants -> probes -> comparison -> verdicts -> reports.

At most one model is resident at a time. The reference runs first (or comes from the cache), every result is
written to the JSON document (document.py) as soon as it exists, so an interrupted run keeps what it computed.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from omnicheck.backends.base import Backend
from omnicheck.digest import digest_files
from omnicheck.document import build_document, merge_documents, parts_dir, write_json
from omnicheck.engines import flag_cross_engine, in_process_engine
from omnicheck.errors import OmnicheckError, UnsupportedModality, one_line
from omnicheck.probes import load_probe, modality_of
from omnicheck.run import RunConfig, VariantState
from omnicheck.store import ReferenceStore, cache_key, fingerprint_model, weights_fingerprint
from omnicheck.teacher_forcing import DivergencePasses
from omnicheck.types import GenerationSettings, Message, ProbeResult, Sample, Verdict
from omnicheck.variants import variant_label

__all__ = ["RunConfig", "Session", "VariantState"]

DIAGNOSIS_TEXT = "Describe a sunny day in one sentence."  # the text input the activation-range diagnosis compares with


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
        self._loaded: tuple[str, Backend] | None = None
        self.divergence = DivergencePasses(run.settings, self.store, self.progress)
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self.merged: dict[str, Any] | None = None  # on the pytest-xdist controller: the workers' parts in one
        self.written: list[Path] = []  # the reports written at the end

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

    def generation_settings(self, probe_name: str, variant: str | None = None) -> GenerationSettings:
        return self.run.generation_settings(probe_name, self.probe(probe_name).settings,
                                            self._reference_batch(probe_name, variant))

    def _reference_batch(self, probe: str, variant: str | None) -> int | None:
        """The batch the reference sized from GPU memory for this probe: a variant batches the same samples alike."""
        reference = self.results.get((self.run.reference.name, probe))
        if variant is None or variant == self.run.reference.name or reference is None:
            return None
        calls = (reference.info.get("decoding") or {}).get("calls") or []
        return calls[0]["size"] if calls and calls[0].get("source") == "memory" else None

    # --- models: one resident at a time ---

    def backend(self, name: str) -> Backend:
        if self._loaded and self._loaded[0] == name:
            return self._loaded[1]
        self.release()
        state = self.states[name]
        if state.error:
            raise _LoadFailed(state.error)
        self.inspect(name)
        refused = [lint for lint in state.lints if lint["severity"] == "error" and lint["code"] != "card-unreadable"]
        if refused:  # the card says the model cannot run as intended: spend no load (and no GPU time) on it
            state.error = "refused before loading (omnicheck inspect): " + "; ".join(
                f"{lint['code']}: {lint['message']}" for lint in refused)
            self._write_json()
            raise _LoadFailed(state.error)
        from omnicheck.backends import open_backend

        self.progress(f"loading {name} ({state.variant.location})")
        backend = None
        try:
            served_cache = (Path(self.run.cache_dir) if self.run.cache_dir else self.store.root.parent) / "served"
            backend = open_backend(state.variant, device=self.run.device, cache_dir=served_cache)
            state.description = backend.describe()  # a server asks its modalities here: it may fail now
        except OmnicheckError as err:
            if backend is not None:
                backend.close()
            state.error = str(err)
            self._write_json()
            raise _LoadFailed(state.error) from None
        state.engine = state.description.get("engine")
        if state.variant.is_url:  # no checkpoint to read: what runs is what the server says
            state.execution_path = state.description.get("execution_path")
        root = (state.description.get("model_card") or {}).get("root")
        if state.variant.is_url and root and Path(root).is_dir():  # a server on this machine: its weights are here
            state.weights = weights_fingerprint(Path(root))
        self._loaded = (name, backend)
        return backend

    def mark_unavailable(self, name: str, reason: str) -> None:
        """A variant that cannot be opened, known before the session tries (e.g. the server a harness started for
        it refused the checkpoint): each of its probes becomes ERROR with this one line; the others run as usual."""
        self.states[name].error = one_line(reason, 1000)
        self._write_json()

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
        state.weights = weights_fingerprint(state.variant.path)
        from omnicheck.formats import inspect_checkpoint

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
                    # only in-process checkpoints are cached; results stored before engines were recorded lack it
                    self.states[name].engine = self.states[name].engine or cached.info.get("engine") or \
                        in_process_engine().to_json()
                    self.results[(name, probe)] = cached
                    self._reference_tokens(probe, key)
                    continue
                result = self._run(name, probe)
                if result.status == "ok":
                    self.reference_generations += 1
                    self.store.put(probe, key, result)
                self.results[(name, probe)] = result
                self._reference_tokens(probe, key)

    def _reference_tokens(self, probe: str, key: str | None) -> None:
        """The reference's teacher-forced top-k and A/A floor for this probe (omnicheck.teacher_forcing)."""
        result = self.results[(self.run.reference.name, probe)]
        self.divergence.reference(result, key, self.probe(probe), self.samples(probe),
                                  lambda: self.backend(self.run.reference.name),
                                  self.generation_settings(probe).batch_size, self.run.refresh_reference)

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
            digest_files(media),
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
            backend.on_batch = _Throughput(f"{variant} {probe_name}", self.progress)
            settings = self.generation_settings(probe_name, variant)
            backend.take_decoding()  # start this probe's record afresh
            resumable = self._resumable(variant, probe, backend, settings)
            result = probe.run(resumable or backend, samples, settings)
            result.variant = variant
            if resumable is not None:
                resumable.finish()
                if resumable.resumed:
                    result.info["resumed_samples"] = resumable.resumed
            if probe.skipped:  # samples whose media could not be read: the verdict counts them
                result.info["skipped_samples"] = list(probe.skipped)
            result.info["engine"] = self.states[variant].engine
            decoded = backend.take_decoding()
            if decoded is not None:
                result.info["decoding"] = decoded
            if not self.states[variant].variant.is_reference:
                self.divergence.variant(backend, result, self.results.get((self.run.reference.name, probe_name)),
                                        probe, samples, settings.batch_size)
            return result
        except UnsupportedModality as err:
            return self._failed(variant, probe_name, "skipped", str(err), start)
        except (_LoadFailed, OmnicheckError) as err:
            return self._failed(variant, probe_name, "error", str(err), start)
        except Exception as err:  # an unexpected failure in one probe must not lose the others
            failed = self._failed(variant, probe_name, "error", f"{type(err).__name__}: {err}", start)
            failed.info["traceback"] = traceback.format_exc()
            return failed

    def _resumable(self, variant: str, probe, backend, settings: GenerationSettings):
        """An in-process model's generations journaled batch by batch, so an interrupted run resumes where it
        stopped (omnicheck/resume.py); None for a served model, whose requests are cached already."""
        fingerprint = self.states[variant].fingerprint
        if fingerprint is None:
            return None
        from omnicheck.resume import Journal, Resumable, journal_folder

        root = (Path(self.run.cache_dir) if self.run.cache_dir else self.store.root.parent) / "partial"
        return Resumable(backend, Journal(journal_folder(root, fingerprint, probe.fingerprint(),
                                                         {**settings.key(), "tier": self.run.tier})))

    def _failed(self, variant: str, probe: str, status: str, reason: str, start: float) -> ProbeResult:
        metrics = list(self._probes[probe].metrics) if probe in self._probes else []
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
        if variant != reference_name:
            flag_cross_engine(verdict, reference_name, self.states[reference_name].engine, self.states[variant].engine)
        self.verdicts[key] = verdict
        if verdict.status in ("BROKEN", "DEGRADED") and verdict.modality != "text" and card and card.get("activation_quantized"):
            self._diagnose_ranges(variant)
        self._diagnose(variant)
        self._write_json()
        return verdict

    def _diagnose_ranges(self, variant: str) -> None:
        """Why a media modality broke under activation quantization: how much of each quantized layer's input the
        stored scales clip, per modality (one sample each). Runs once per variant, on the model already loaded;
        a backend that cannot look inside its model says so in the result."""
        state = self.states[variant]
        if "activation_ranges" in state.description or not (self._loaded and self._loaded[0] == variant):
            return
        backend = self._loaded[1]
        samples = {"text": [Sample("text", (Message.user(DIAGNOSIS_TEXT),))]}
        for probe in self.run.probes:
            modality = modality_of(probe)
            if modality not in samples and modality in backend.modalities:
                try:
                    samples[modality] = self.samples(probe)[:1]
                except OmnicheckError:
                    continue
        state.description["activation_ranges"] = backend.activation_ranges(samples)

    def _diagnose(self, variant: str) -> None:
        from omnicheck import gate

        mine = [v for (name, _), v in self.verdicts.items() if name == variant]
        description = self.states[variant].description
        findings = gate.diagnose(mine, self.states[variant].card)
        ranges = description.get("activation_ranges") or {}
        findings += [f"activation ranges: {line}" for line in ranges.get("summary", [])]
        if variant != self.run.reference.name:  # the reference against itself says nothing
            findings += self._divergence_findings(variant)
        description["findings"] = findings

    def _divergence_findings(self, variant: str) -> list[dict[str, Any]]:
        """Per-modality divergence into the variant's description; media against text, in words: a warning where a
        modality diverges more than text, information otherwise."""
        from omnicheck.gate.divergence import across_modalities

        mine = [r for (name, _), r in self.results.items() if name == variant]
        references = {p: r for (name, p), r in self.results.items() if name == self.run.reference.name}
        summary, sentences = across_modalities(mine, references, self.states[variant].card, self.run.settings)
        self.states[variant].description["divergence"] = summary
        return [{"variant": variant, "modality": c["modality"], "severity": "warning" if c["decided"] == "larger" else "info",
                 "code": "divergence", "message": f"divergence: {sentence}"}
                for c, sentence in zip(summary["contrasts"], sentences)]

    # --- reports ---

    def document(self) -> dict[str, Any]:
        return build_document(
            self.run,
            self.started,
            self.states,
            self.results.values(),
            self.verdicts.values(),
            generation={p: self.generation_settings(p).key() for p in self.run.probes if p in self._probes},
            reference_cache={"hits": self.store.hits, "misses": self.store.misses,
                             "reference_generations": self.reference_generations},
        )

    def write_reports(self, html: bool | None = None) -> list[Path]:
        paths = [self._write_json()]
        if self.run.worker is None and (self.run.write_html if html is None else html):
            from omnicheck.report.render import render_html

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
            from omnicheck.report.render import render_html

            paths.append(render_html(document, Path(self.run.report_dir) / "report.html"))
        for part in parts:
            part.unlink()
        return paths

    def close(self) -> None:
        self.release()


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


