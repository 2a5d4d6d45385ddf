"""ifeval: verifiable instructions ("answer in under 50 words", "no commas"), scored by lm-eval's IFEval checker.

Data: the official 541 prompts ship in no package we can reach, so omnicheck bundles its own prompts in IFEval's
schema (key, prompt, instruction_id_list, kwargs), written for this project with IFEval's instruction ids and every
argument spelled out (a missing argument would make the checker draw a random one). A user's official
input_data.jsonl (`--omnicheck-data ifeval=PATH`) replaces them.
Scores per prompt: prompt_level_{strict,loose}_acc (all instructions followed) and inst_level_{strict,loose}_acc
(the share followed); aggregates are lm-eval's own (instruction-level ones are averaged over instructions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from omnicheck.errors import FixtureError
from omnicheck.fixtures import fixture_dir, verify_manifest
from omnicheck.probes.base import user_message
from omnicheck.probes.common import read_jsonl, select
from omnicheck.probes.lmeval import LmEvalProbe, ensure_punkt_tab
from omnicheck.types import GenerationSettings, Metric, Sample

FIXTURES = "ifeval"
BUNDLED_FILE = "bundled.jsonl"

PROMPT_LEVEL = ("prompt_level_strict_acc", "prompt_level_loose_acc")
INSTRUCTION_LEVEL = ("inst_level_strict_acc", "inst_level_loose_acc")


def known_instruction_ids() -> frozenset[str]:
    ensure_punkt_tab()  # the registry imports lm-eval's ifeval helpers, which look for punkt_tab at import
    from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT

    return frozenset(INSTRUCTION_DICT)


def check_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    known = known_instruction_ids()
    for number, row in enumerate(rows, 1):
        unknown = sorted(set(row["instruction_id_list"]) - known)
        if unknown:
            raise FixtureError(
                f"{path}:{number} uses instruction ids lm-eval's IFEval checker does not know: {', '.join(unknown)}",
                "use ids from lm_eval/tasks/ifeval/instructions_registry.py",
            )
        if not isinstance(row["kwargs"], list) or len(row["kwargs"]) != len(row["instruction_id_list"]):
            raise FixtureError(
                f"{path}:{number} needs one kwargs object per instruction id",
                "make kwargs a list as long as instruction_id_list ({} for an instruction without arguments)",
            )


class IFEval(LmEvalProbe):
    name = "ifeval"
    version = "1"
    task_yaml = "omnicheck_ifeval"
    metrics: ClassVar[list[Metric]] = [
        Metric("prompt_level_strict_acc", higher_is_better=True, kind="binary"),
        Metric("inst_level_strict_acc", higher_is_better=True, kind="continuous"),
        Metric("prompt_level_loose_acc", higher_is_better=True, kind="binary"),
        Metric("inst_level_loose_acc", higher_is_better=True, kind="continuous"),
    ]
    smoke_size = 4
    # IFEval's own limit is 1280 tokens; the bundled prompts ask for short answers and CPU runs must stay short.
    settings = GenerationSettings(max_new_tokens=512)

    def prompts_file(self) -> Path:
        return Path(self.data) if self.data else fixture_dir(FIXTURES) / BUNDLED_FILE

    def data_files(self) -> dict[str, Path]:
        return {"test": self.prompts_file()}

    def load_samples(self, tier: str) -> list[Sample]:
        if self.data is None:
            verify_manifest(FIXTURES)
        elif not self.prompts_file().is_file():
            raise FixtureError(
                f"ifeval data {self.data} is not a file",
                "pass IFEval's input_data.jsonl: --omnicheck-data ifeval=PATH",
            )
        path = self.prompts_file()
        rows = read_jsonl(path, {"key": int, "prompt": str, "instruction_id_list": list, "kwargs": list})
        check_rows(path, rows)
        samples = [
            Sample(
                id=str(row["key"]),
                messages=user_message(row["prompt"]),
                target={"instruction_id_list": row["instruction_id_list"], "kwargs": row["kwargs"]},
                meta={"doc_index": index},
            )
            for index, row in enumerate(rows)
        ]
        return select(samples, tier, self.smoke_size)  # smoke: spread over the set, not its head

    def doc_scores(self, logged: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        sample = logged[0]
        scores = {name: float(bool(sample[name])) for name in PROMPT_LEVEL}
        for name in INSTRUCTION_LEVEL:
            followed = list(sample[name])
            scores[name] = sum(map(bool, followed)) / len(followed) if followed else 0.0
        return scores

    def doc_extra(self, logged: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        sample = logged[0]
        return {
            "instructions": list(sample["doc"]["instruction_id_list"]),
            "followed_strict": [bool(x) for x in sample["inst_level_strict_acc"]],
            "followed_loose": [bool(x) for x in sample["inst_level_loose_acc"]],
        }

    def aggregate_keys(self) -> dict[str, str]:
        return {metric.name: f"{metric.name},none" for metric in self.metrics}
