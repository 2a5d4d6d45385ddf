"""Typed settings from `[tool.omnicheck]` in pyproject.toml, or from a TOML file passed by option.

    [tool.omnicheck]
    confidence = 0.95              # how sure a PASS or a DEGRADED must be (one-sided)
    bootstrap_resamples = 2000
    seed = 0
    inconclusive = "fail"          # or "skip"; default: "fail" when the CI environment variable is set
    probes = ["gsm8k", "speech_wer"]
    tier = "smoke"                 # or "full"
    max_new_tokens = { gsm8k = 256 }   # per probe; or one number for every probe
    counterfactual = true          # false: no blank-media rerun of media probes (the "media ignored"
                                   #   detector then has nothing to judge)
    counterfactual_tokens = 16     # the blank-media rerun writes only this opening of its answer and is
                                   #   compared with the same opening of the real one; 0: the whole answer
    divergence = true              # false: no teacher-forced divergence pass (task scores alone judge)
    divergence_top_k = 20          # the reference's top-k kept per answer position (KL over them + a tail bucket)

    [tool.omnicheck.thresholds]    # every probe
    min_retention = 0.95
    divergence_pass_multiple = 4   # teacher-forced divergence rules: docs/divergence.md
    [tool.omnicheck.thresholds.audio]        # one modality
    max_increase = 0.03
    [tool.omnicheck.thresholds.image_caption]  # one probe (wins over its modality)
    max_drop = 0.1

A file passed by option holds the same keys at its top level (or under [tool.omnicheck]). Unknown keys are a
UsageError naming the key, the closest allowed key and the allowed keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Mapping

from omnicheck.errors import UsageError
from omnicheck.probes import PROBES, TIERS
from omnicheck.types import COUNTERFACTUAL_TOKENS, MODALITIES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

INCONCLUSIVE_POLICIES = ("fail", "skip")


@dataclass(frozen=True)
class Thresholds:
    """When a variant passes, per probe. Differences are absolute, in the metric's own units."""

    min_retention: float = 0.95  # binary higher-is-better metrics (accuracy): variant/reference at least this
    max_drop: float = 0.05  # continuous higher-is-better metrics (similarity, key-object recall): drop at most this
    max_increase: float = 0.02  # lower-is-better metrics (WER): increase at most this (0.02 = 2 points)
    broken_retention: float = 0.5  # below this the modality is BROKEN, not just DEGRADED
    broken_drop: float = 0.3
    broken_increase: float = 0.3
    collapse_rate: float = 0.5  # excess share of samples empty/looping/garbled/ignoring media -> BROKEN
    min_samples: int = 10  # fewer paired samples than this: INCONCLUSIVE on quality (bootstrap under-covers)
    # opt-in (0 = off): mean word F1 of the variant's outputs against the reference's own outputs. Useful where
    # scores say nothing (a random-weight test model); off by default because good variants reword answers.
    min_agreement: float = 0.0
    broken_agreement: float = 0.0
    # teacher-forced divergence (docs/divergence.md): KL(reference || variant) per answer token, read against the
    # run's A/A noise floor (the reference scoring its own answers at another batch size)
    divergence_pass_multiple: float = 4.0  # PASS where task scores cannot decide and the KL interval's upper end
    #   is within this multiple of the floor (unchanged behaviour) ...
    divergence_pass_kl: float = 0.0  # ... or below this many nats per token: opt-in, since the validation found
    #   no such level that keeps task scores (docs/divergence.md: a variant at 0.014 lost 11 WER points, another at
    #   0.025 kept them); both 0 = never PASS on divergence
    divergence_broken_kl: float = 1.0  # BROKEN where outputs collapse on at least collapse_rate of the samples and
    #   each of those samples' KL (nats per token) is at least this and divergence_broken_multiple x the floor
    divergence_broken_multiple: float = 100.0
    divergence_min_samples: int = 3  # the fewest samples divergence may decide BROKEN on (0 = never)

    def check(self, where: str) -> "Thresholds":
        def bad(key: str, rule: str) -> UsageError:
            return UsageError(f"{where}: {key} = {getattr(self, key)!r} is out of range", f"use {rule}")

        if not 0.0 < self.min_retention <= 1.0:
            raise bad("min_retention", "a share in (0, 1], e.g. 0.95")
        if not 0.0 <= self.broken_retention < self.min_retention:
            raise bad("broken_retention", f"a share in [0, min_retention={self.min_retention})")
        if self.max_drop < 0.0:
            raise bad("max_drop", "a number >= 0, e.g. 0.05")
        if self.broken_drop < self.max_drop:
            raise bad("broken_drop", f"a number >= max_drop={self.max_drop}")
        if self.max_increase < 0.0:
            raise bad("max_increase", "a number >= 0, e.g. 0.02 for 2 WER points")
        if self.broken_increase < self.max_increase:
            raise bad("broken_increase", f"a number >= max_increase={self.max_increase}")
        if not 0.0 < self.collapse_rate <= 1.0:
            raise bad("collapse_rate", "a share in (0, 1], e.g. 0.5")
        if self.min_samples < 1:
            raise bad("min_samples", "an integer >= 1")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise bad("min_agreement", "a share in [0, 1] (0 turns it off), e.g. 0.8")
        if not 0.0 <= self.broken_agreement <= 1.0 or (self.min_agreement and self.broken_agreement > self.min_agreement):
            raise bad("broken_agreement", f"a share in [0, min_agreement={self.min_agreement}] (0 turns it off)")
        if self.divergence_pass_multiple < 0.0:
            raise bad("divergence_pass_multiple", "a number >= 0 (0 turns it off), e.g. 4")
        if self.divergence_pass_kl < 0.0:
            raise bad("divergence_pass_kl", "nats per token >= 0 (0 turns it off), e.g. 0.01")
        if self.divergence_broken_kl < 0.0 or (self.divergence_broken_kl and self.divergence_broken_kl <= self.divergence_pass_kl):
            raise bad("divergence_broken_kl", f"nats per token above divergence_pass_kl={self.divergence_pass_kl} (0 turns it off), e.g. 1.0")
        if self.divergence_broken_multiple < max(1.0, self.divergence_pass_multiple):
            raise bad("divergence_broken_multiple", f"a number >= max(1, divergence_pass_multiple={self.divergence_pass_multiple})")
        if self.divergence_min_samples < 0:
            raise bad("divergence_min_samples", "an integer >= 0 (0 turns BROKEN on divergence off)")
        return self


THRESHOLD_KEYS = tuple(f.name for f in dataclasses.fields(Thresholds))


@dataclass(frozen=True)
class ThresholdTable:
    """Built-in defaults < [thresholds] < [thresholds.<modality>] < [thresholds.<probe>]."""

    default: Thresholds = Thresholds()
    per_modality: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: MappingProxyType({}))
    per_probe: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: MappingProxyType({}))

    def for_probe(self, probe: str, modality: str) -> Thresholds:
        changes = {**self.per_modality.get(modality, {}), **self.per_probe.get(probe, {})}
        return dataclasses.replace(self.default, **changes) if changes else self.default


@dataclass(frozen=True)
class Settings:
    thresholds: ThresholdTable = ThresholdTable()
    confidence: float = 0.95
    bootstrap_resamples: int = 2000
    seed: int = 0
    inconclusive: Literal["fail", "skip"] = "skip"
    probes: tuple[str, ...] | None = None  # None: every probe
    tier: str = "smoke"
    max_new_tokens: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # probe -> tokens; "*": all
    counterfactual: bool = True  # rerun media probes on blanked media to see whether the media is used
    counterfactual_tokens: int = COUNTERFACTUAL_TOKENS  # new tokens of that rerun; 0: as many as the probe's
    divergence: bool = True  # teacher-force each variant on the reference's answers (omnicheck.teacher_forcing)
    divergence_top_k: int = 20
    source: str = "built-in defaults"  # where these came from, for the report

    def thresholds_for(self, probe: str, modality: str) -> Thresholds:
        return self.thresholds.for_probe(probe, modality)

    def max_new_tokens_for(self, probe: str, default: int) -> int:
        return self.max_new_tokens.get(probe, self.max_new_tokens.get("*", default))

    def with_overrides(self, **changes: Any) -> "Settings":
        """Command-line options over the file: same names and checks as the file's keys; None leaves a value."""
        raw = {k: v for k, v in changes.items() if v is not None}
        unknown = [k for k in raw if k not in _TOP_KEYS or k == "thresholds"]
        if unknown:
            raise UsageError(f"unknown setting {unknown[0]!r}", _allowed(unknown[0], [k for k in _TOP_KEYS if k != "thresholds"]))
        return dataclasses.replace(self, **_parse_top(raw, "command line", self))

    def to_json(self) -> dict[str, Any]:
        return {
            "thresholds": {
                "default": dataclasses.asdict(self.thresholds.default),
                "per_modality": {k: dict(v) for k, v in self.thresholds.per_modality.items()},
                "per_probe": {k: dict(v) for k, v in self.thresholds.per_probe.items()},
            },
            "confidence": self.confidence,
            "bootstrap_resamples": self.bootstrap_resamples,
            "seed": self.seed,
            "inconclusive": self.inconclusive,
            "probes": list(self.probes) if self.probes is not None else None,
            "tier": self.tier,
            "max_new_tokens": dict(self.max_new_tokens),
            "counterfactual": self.counterfactual,
            "counterfactual_tokens": self.counterfactual_tokens,
            "divergence": self.divergence,
            "divergence_top_k": self.divergence_top_k,
            "source": self.source,
        }


_TOP_KEYS = ("thresholds", "confidence", "bootstrap_resamples", "seed", "inconclusive", "probes", "tier", "max_new_tokens", "counterfactual",
             "counterfactual_tokens", "divergence", "divergence_top_k")


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def load_settings(rootdir: Path, config_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from config_file if given, else from rootdir/pyproject.toml's [tool.omnicheck], else defaults.

    inconclusive defaults to "fail" when the CI environment variable is set (to anything but 0/false/no/off).
    """
    base = Settings(inconclusive="fail" if in_ci(environ) else "skip")
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise UsageError(f"omnicheck config file {str(path)!r} does not exist", "pass an existing TOML file, or drop the option")
        data = _read_toml(path)
        table, where = data, str(path)
        if isinstance(data.get("tool"), dict) and "omnicheck" in data["tool"]:
            table, where = data["tool"]["omnicheck"], f"[tool.omnicheck] in {path}"
    else:
        path = Path(rootdir) / "pyproject.toml"
        if not path.is_file():
            return base
        tool = _read_toml(path).get("tool", {})
        if "omnicheck" not in tool:
            return base
        table, where = tool["omnicheck"], f"[tool.omnicheck] in {path}"
    if not isinstance(table, dict):
        raise UsageError(f"{where} is not a table", "write it as [tool.omnicheck] with keys below it")
    settings = dataclasses.replace(base, **_parse_top(table, where, base))
    return dataclasses.replace(settings, source=where)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{path} is not valid TOML: {err}", "fix the TOML syntax at that line") from None
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}", "check the path and its permissions") from None


def _allowed(key: str, allowed: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}allowed keys: {', '.join(allowed)}"


def _reject_unknown(table: Mapping[str, Any], allowed: list[str] | tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise UsageError(f"unknown key {key!r} in {where}", _allowed(key, allowed))


def _number(value: Any, key: str, where: str, *, integer: bool = False) -> float | int:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        kind = "an integer" if integer else "a number"
        raise UsageError(f"{where}: {key} = {value!r} is not {kind}", f"write {key} = {'10' if integer else '0.95'} (no quotes)")
    return value if integer else float(value)


def _probe_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or name not in PROBES:
        raise UsageError(f"unknown probe {name!r} in {where}", _allowed(str(name), list(PROBES)).replace("allowed keys", "probes"))
    return name


def _boolean(table: Mapping[str, Any], key: str, where: str, fix: str) -> bool:
    if not isinstance(table[key], bool):
        raise UsageError(f"{where}: {key} = {table[key]!r} is not true or false", fix)
    return table[key]


def _parse_top(table: Mapping[str, Any], where: str, base: Settings) -> dict[str, Any]:
    _reject_unknown(table, _TOP_KEYS, where)
    out: dict[str, Any] = {}
    if "confidence" in table:
        confidence = _number(table["confidence"], "confidence", where)
        if not 0.5 < confidence < 1.0:
            raise UsageError(f"{where}: confidence = {confidence} is out of range", "use a number in (0.5, 1), e.g. 0.95")
        out["confidence"] = confidence
    if "bootstrap_resamples" in table:
        resamples = _number(table["bootstrap_resamples"], "bootstrap_resamples", where, integer=True)
        if not 100 <= resamples <= 1_000_000:
            raise UsageError(f"{where}: bootstrap_resamples = {resamples} is out of range", "use 100 to 1000000, e.g. 2000")
        out["bootstrap_resamples"] = resamples
    if "seed" in table:
        seed = _number(table["seed"], "seed", where, integer=True)
        if seed < 0:
            raise UsageError(f"{where}: seed = {seed} is negative", "use an integer >= 0")
        out["seed"] = seed
    if "inconclusive" in table:
        policy = table["inconclusive"]
        if policy not in INCONCLUSIVE_POLICIES:
            raise UsageError(f"{where}: inconclusive = {policy!r} is not a policy", 'use "fail" or "skip"')
        out["inconclusive"] = policy
    if "tier" in table:
        tier = table["tier"]
        if tier not in TIERS:
            raise UsageError(f"{where}: tier = {tier!r} is not a tier", 'use "smoke" or "full"')
        out["tier"] = tier
    if "probes" in table:
        probes = table["probes"]
        if isinstance(probes, str):
            probes = [probes]
        if not isinstance(probes, list) or not probes:
            raise UsageError(f"{where}: probes = {probes!r} is not a list of probe names", f"e.g. probes = [{', '.join(repr(p) for p in PROBES)}]")
        out["probes"] = tuple(dict.fromkeys(_probe_name(p, f"{where} probes") for p in probes))
    if "max_new_tokens" in table:
        out["max_new_tokens"] = _parse_max_new_tokens(table["max_new_tokens"], where)
    if "counterfactual" in table:
        out["counterfactual"] = _boolean(table, "counterfactual", where, "use counterfactual = false to skip the blank-media reruns")
    if "counterfactual_tokens" in table:
        tokens = _number(table["counterfactual_tokens"], "counterfactual_tokens", where, integer=True)
        if tokens < 0:
            raise UsageError(f"{where}: counterfactual_tokens = {tokens} is negative",
                             "use a number of tokens, e.g. 16, or 0 for the whole answer")
        out["counterfactual_tokens"] = int(tokens)
    if "divergence" in table:
        out["divergence"] = _boolean(table, "divergence", where, "use divergence = false to skip the teacher-forced pass")
    if "divergence_top_k" in table:
        top_k = _number(table["divergence_top_k"], "divergence_top_k", where, integer=True)
        if not 20 <= top_k <= 1000:
            raise UsageError(f"{where}: divergence_top_k = {top_k} is out of range",
                             "use 20 to 1000 (KL needs at least 20 of the reference's tokens)")
        out["divergence_top_k"] = top_k
    if "thresholds" in table:
        out["thresholds"] = _parse_thresholds(table["thresholds"], f"{where} thresholds", base.thresholds)
    return out


def _parse_max_new_tokens(value: Any, where: str) -> Mapping[str, int]:
    def positive(tokens: Any, key: str) -> int:
        tokens = _number(tokens, key, where, integer=True)
        if tokens < 1:
            raise UsageError(f"{where}: {key} = {tokens} must be at least 1", f"e.g. {key} = 256")
        return int(tokens)

    if isinstance(value, dict):
        return MappingProxyType({_probe_name(p, f"{where} max_new_tokens"): positive(t, f"max_new_tokens.{p}") for p, t in value.items()})
    return MappingProxyType({"*": positive(value, "max_new_tokens")})


def _parse_threshold_values(table: Mapping[str, Any], where: str) -> dict[str, float]:
    _reject_unknown(table, THRESHOLD_KEYS, where)
    return {k: _number(v, k, where, integer=k in ("min_samples", "divergence_min_samples")) for k, v in table.items()}


def _parse_thresholds(table: Any, where: str, base: ThresholdTable) -> ThresholdTable:
    if not isinstance(table, dict):
        raise UsageError(f"{where} is not a table", "write [tool.omnicheck.thresholds] with threshold keys below it")
    allowed = (*THRESHOLD_KEYS, *MODALITIES, *PROBES)
    _reject_unknown(table, allowed, where)
    values = {k: v for k, v in table.items() if k in THRESHOLD_KEYS}
    default = dataclasses.replace(base.default, **_parse_threshold_values(values, where)).check(where)
    per_modality: dict[str, Mapping[str, float]] = {}
    per_probe: dict[str, Mapping[str, float]] = {}
    for name, sub in table.items():
        if name in THRESHOLD_KEYS:
            continue
        if not isinstance(sub, dict):
            raise UsageError(f"{where}: {name} is not a table", f"write [..thresholds.{name}] with keys: {', '.join(THRESHOLD_KEYS)}")
        target = per_modality if name in MODALITIES else per_probe
        target[name] = MappingProxyType(_parse_threshold_values(sub, f"{where}.{name}"))
    result = ThresholdTable(default, MappingProxyType(per_modality), MappingProxyType(per_probe))
    for probe, (_, _, modality) in PROBES.items():  # every combination a run can ask for must be coherent
        result.for_probe(probe, modality).check(f"{where} (as resolved for probe {probe})")
    for modality in per_modality:
        result.for_probe("", modality).check(f"{where}.{modality}")
    return result
