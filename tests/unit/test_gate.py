"""Verdicts and diagnosis on ProbeResults shaped like real runs: GSM8K-style worked answers (1319 questions),
captions of the photos bundled in scikit-image / scikit-learn / matplotlib / gradio, read-speech transcripts.

The scores are what the probes would have computed; the gate only reads them, so no model runs here
(the lead runs the same must-holds end to end on real models).
"""

from __future__ import annotations

import copy
import json
import random

import pytest

from omnicheck.config import Thresholds
from omnicheck.gate import diagnose, judge
from omnicheck.types import Metric, ProbeResult, SampleResult

EXACT_MATCH = Metric("exact_match", True, "binary")
SIMILARITY = Metric("similarity", True, "continuous")
KEY_OBJECTS = Metric("key_object_recall", True, "continuous")
WER = Metric("wer", False, "continuous")

NAMES = ["Natalia", "Weng", "Betty", "Julie", "James", "Albert", "Mark", "Alexis", "Tina", "Randy"]
THINGS = ["clips", "apples", "pages", "cookies", "marbles", "tickets", "stamps", "eggs"]


# --- builders ---


def gsm8k_reference(n: int = 1319, accuracy: float = 0.45, seed: int = 0) -> ProbeResult:
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        name, thing = rng.choice(NAMES), rng.choice(THINGS)
        a, b, c = rng.randint(2, 60), rng.randint(2, 60), rng.randint(2, 9)
        answer = (a + b) * c
        right = rng.random() < accuracy
        given = answer if right else answer + rng.choice([-c, c, 1, -1, 10])
        output = (
            f"{name} has {a} {thing} and gets {b} more, so {name} has {a} + {b} = {a + b} {thing}. "
            f"Each of them is worth {c} points, so the total is {a + b} x {c} = {given}. #### {given}"
        )
        samples.append(SampleResult(f"gsm8k-{i:04d}", f"Question {i}", [], output, str(answer), {"exact_match": float(right)}))
    return ProbeResult("bf16", "gsm8k", "text", "ok", [EXACT_MATCH], samples)


def variant_of(reference: ProbeResult, name: str, edit=None, seed: int = 1) -> ProbeResult:
    """A copy of the reference under another name; edit(sample, rng) may change outputs and scores."""
    result = copy.deepcopy(reference)
    result.variant = name
    rng = random.Random(seed)
    if edit:
        for sample in result.samples:
            edit(sample, rng)
        for sample in result.counterfactual:
            edit(sample, rng)
    return result


def subset(result: ProbeResult, ids: list[str]) -> ProbeResult:
    keep = set(ids)
    out = copy.deepcopy(result)
    out.samples = [s for s in out.samples if s.sample_id in keep]
    out.counterfactual = [s for s in out.counterfactual if s.sample_id in keep]
    return out


def flip_wrong(share: float):
    def edit(sample: SampleResult, rng: random.Random) -> None:
        if sample.scores["exact_match"] == 1.0 and rng.random() < share:
            sample.scores["exact_match"] = 0.0
            sample.output = sample.output.rsplit("=", 1)[0] + "= 0. #### 0"

    return edit


PHOTOS = {
    "astronaut": ("An astronaut in a white spacesuit poses in front of an American flag, holding a helmet.", ["astronaut", "flag", "helmet"]),
    "camera": ("A man in a dark coat looks through a camera on a tripod in an open field.", ["man", "camera", "tripod"]),
    "coffee": ("A cup of coffee with latte art sits on a saucer next to a spoon.", ["cup", "coffee", "saucer"]),
    "chelsea": ("A tabby cat looks to the side with its ears up.", ["cat"]),
    "rocket": ("A rocket stands on the launch pad beside its service tower.", ["rocket", "launch pad", "tower"]),
    "coins": ("Rows of old coins lie on a dark background.", ["coins"]),
    "moon": ("A grey close view of the moon's cratered surface.", ["moon", "craters"]),
    "horse": ("The black silhouette of a horse on a white background.", ["horse"]),
    "clock": ("A clock on a wall shows about ten past ten.", ["clock"]),
    "china": ("A pagoda-style temple among trees under a blue sky.", ["temple", "trees", "sky"]),
    "flower": ("A pink flower with a yellow centre, seen close up.", ["flower"]),
    "grace_hopper": ("A woman in a naval uniform with medals poses for a portrait.", ["woman", "uniform", "medals"]),
    "cheetah": ("A cheetah lies in the grass and looks at the camera.", ["cheetah", "grass"]),
    "lion": ("A lion with a thick mane rests on a rock.", ["lion", "mane"]),
    "tower": ("The Eiffel Tower rises over Paris on a clear day.", ["tower"]),
    "bus": ("A red double-decker bus drives down a city street.", ["bus", "street"]),
    "brick": ("A wall of red bricks with light mortar lines.", ["bricks", "wall"]),
    "grass": ("A close view of green grass blades.", ["grass"]),
    "gravel": ("Grey gravel stones fill the whole frame.", ["gravel"]),
    "motorcycle": ("A motorcycle stands in a workshop beside tools and shelves.", ["motorcycle"]),
    "page": ("A scanned page of printed text, slightly tilted.", ["page", "text"]),
    "retina": ("A photograph of the retina of an eye with branching blood vessels.", ["retina", "blood vessels"]),
    "colorwheel": ("A circle of colours blending from red through green to blue.", ["colour wheel"]),
    "logo": ("The scikit-image logo: a snake drawn in blue and yellow.", ["logo", "snake"]),
}


def caption_reference(seed: int = 0) -> ProbeResult:
    rng = random.Random(seed)
    samples, blanked = [], []
    for name, (caption, objects) in PHOTOS.items():
        scores = {"similarity": round(rng.uniform(0.55, 0.8), 4), "key_object_recall": rng.choice([0.5, 0.67, 1.0, 1.0])}
        samples.append(SampleResult(name, "Describe this image in one sentence.", [f"{name}.png"], caption, objects, scores))
        blank = rng.choice(["The image is completely white.", "A plain white square with nothing in it.",
                            "There is nothing to see: the picture is blank."])
        blanked.append(SampleResult(name, "Describe this image in one sentence.", ["blank.png"], blank, objects,
                                    {"similarity": 0.1, "key_object_recall": 0.0}))
    return ProbeResult("bf16", "image_caption", "image", "ok", [SIMILARITY, KEY_OBJECTS], samples, counterfactual=blanked)


def all_empty(sample: SampleResult, rng: random.Random) -> None:
    sample.output = ""
    sample.scores = {"similarity": 0.02, "key_object_recall": 0.0}


TRANSCRIPTS = [
    "the family of dashwood had long been settled in sussex",
    "their estate was large and their residence was at norland park",
    "in the centre of their property where for many generations they had lived",
    "the late owner of this estate was a single man who lived to a very advanced age",
    "and who for many years of his life had a constant companion and housekeeper in his sister",
    "but her death which happened ten years before his own produced a great alteration in his home",
    "for to supply her loss he invited and received into his house the family of his nephew",
    "mister henry dashwood the legal inheritor of the norland estate",
    "and the person to whom he intended to bequeath it",
    "in the society of his nephew and niece and their children the old gentleman's days were comfortably spent",
    "his attachment to them all increased",
    "the constant attention of mister and missus henry dashwood to his wishes",
    "which proceeded not merely from interest but from goodness of heart",
    "gave him every degree of solid comfort which his age could receive",
    "and the cheerfulness of the children added a relish to his existence",
    "by a former marriage mister henry dashwood had one son",
    "by his present lady three daughters",
    "the son a steady respectable young man was amply provided for",
    "by the fortune of his mother which had been large",
    "and half of which devolved on him on his coming of age",
]


def speech_reference(wers: list[float] | None = None) -> ProbeResult:
    wers = wers or [0.0, 0.1, 0.0, 0.06, 0.0, 0.05, 0.0, 0.0, 0.11, 0.0, 0.0, 0.08, 0.0, 0.0, 0.07, 0.0, 0.2, 0.0, 0.0, 0.09]
    samples = [
        SampleResult(f"1089-134686-{i:04d}", "Transcribe the audio.", [f"{i}.flac"], text, text, {"wer": w})
        for i, (text, w) in enumerate(zip(TRANSCRIPTS, wers))
    ]
    return ProbeResult("bf16", "speech_wer", "audio", "ok", [WER], samples)


# --- the must-holds ---


def test_a_copy_of_the_reference_passes_on_five_random_subsets():
    reference = gsm8k_reference()
    twin = variant_of(reference, "bf16-copy")
    ids = [s.sample_id for s in reference.samples]
    for seed in range(5):
        chosen = random.Random(seed).sample(ids, 300)
        verdict = judge(subset(reference, chosen), subset(twin, chosen), seed=seed)
        assert verdict.status == "PASS", verdict.message
        assert verdict.findings == []
        assert verdict.n == 300 and verdict.retention == 1.0
    photos = caption_reference()
    names = list(PHOTOS)
    for seed in range(5):
        chosen = random.Random(seed).sample(names, 16)
        verdict = judge(subset(photos, chosen), subset(variant_of(photos, "bf16-copy"), chosen), seed=seed)
        assert verdict.status == "PASS", verdict.message


def test_a_good_variant_with_a_few_flips_both_ways_passes_on_the_full_set():
    reference = gsm8k_reference()
    rng = random.Random(3)

    def few_flips(sample: SampleResult, _rng: random.Random) -> None:
        if rng.random() < 0.015:  # about 20 answers change each way, as a weight-only scheme does
            sample.scores["exact_match"] = 1.0 - sample.scores["exact_match"]
            sample.output += " Let me double-check."

    verdict = judge(reference, variant_of(reference, "w4a16", few_flips))
    assert verdict.status == "PASS", verdict.message
    assert verdict.details["worse"] > 0 and verdict.details["better"] > 0


def test_half_the_right_answers_flipped_wrong_is_degraded_or_broken():
    reference = gsm8k_reference()
    verdict = judge(reference, variant_of(reference, "w4a4", flip_wrong(0.5)))
    assert verdict.status in ("DEGRADED", "BROKEN"), verdict.message
    assert verdict.retention == pytest.approx(0.5, abs=0.06)
    hi = verdict.details["retention_interval"][1]
    assert hi < 0.95
    # the message is the whole story in words
    for needed in ("exact_match", "reference", "variant", "difference", "interval", "0.95 threshold", "n=1319", "McNemar"):
        assert needed in verdict.message


def test_empty_images_while_text_passes_is_broken_and_the_cause_is_named():
    gsm8k = gsm8k_reference(n=400)
    text = judge(gsm8k, variant_of(gsm8k, "w4a4"))
    photos = caption_reference()
    image = judge(photos, variant_of(photos, "w4a4", all_empty))
    assert text.status == "PASS", text.message
    assert image.status == "BROKEN", image.message
    assert "empty: 24 of 24 variant outputs vs 0 of 24 for the reference" in image.message
    assert json.loads(json.dumps(image.to_json()))["details"]["collapse"]["comparisons"]  # the report can store it
    assert any("media_ignored" in f for f in image.findings)  # empty with or without the image
    card = {"activation_quantized": True, "scheme": "NVFP4"}
    (finding,) = diagnose([text, image], card)
    for needed in ("text passes", "image is BROKEN", "NVFP4", "activation scales calibrated on text", "weight-only", "calibration data",
                   "unquantized"):
        assert needed in finding, needed


def test_the_message_gives_the_one_sided_p_that_decides():
    """7 answers flipped wrong and 1 right out of 30: two-sided exact p 0.070, one-sided 0.035 < 0.05."""
    reference = gsm8k_reference(n=30, accuracy=1.0)
    flips = {f"gsm8k-{i:04d}": 0.0 for i in range(7)} | {"gsm8k-0029": 1.0}
    reference.samples[29].scores["exact_match"] = 0.0

    def flip(sample, rng):
        if sample.sample_id in flips:
            sample.scores["exact_match"] = flips[sample.sample_id]

    verdict = judge(reference, variant_of(reference, "w4a4", flip), Thresholds(min_retention=0.95, broken_retention=0.5))
    assert (verdict.details["worse"], verdict.details["better"]) == (7, 1)
    assert "exact McNemar p=0.0703, one-sided 0.0352, which decides" in verdict.message
    assert verdict.status == "DEGRADED", verdict.message


def test_three_samples_are_inconclusive_whatever_they_show():
    reference = gsm8k_reference(n=3, accuracy=1.0)
    for variant in (variant_of(reference, "copy"), variant_of(reference, "w4a4", flip_wrong(1.0))):
        verdict = judge(reference, variant)
        assert verdict.status == "INCONCLUSIVE", verdict.message
        assert "n=3" in verdict.message
    photos = subset(caption_reference(), ["astronaut", "coffee", "rocket"])
    verdict = judge(photos, variant_of(photos, "w4a4", all_empty))
    assert verdict.status == "INCONCLUSIVE", verdict.message
    assert "collapse suspected but not shown at 95% confidence" in verdict.message


# --- direction, thresholds, the statistics' say ---


def test_wer_is_gated_on_the_absolute_increase_never_a_ratio():
    perfect = speech_reference([0.0] * 20)
    slightly_worse = variant_of(perfect, "fp8", lambda s, rng: s.scores.update(wer=0.01 if int(s.sample_id[-2:]) % 2 else 0.0))
    verdict = judge(perfect, slightly_worse)
    assert verdict.status == "PASS", verdict.message  # +0.005 absolute; a ratio against 0 would be infinite
    assert verdict.retention is None and verdict.threshold == 0.02
    assert "allowed increase 0.020" in verdict.message
    worse = variant_of(speech_reference(), "w4a4", lambda s, rng: s.scores.update(wer=s.scores["wer"] + rng.uniform(0.08, 0.14)))
    verdict = judge(speech_reference(), worse)
    assert verdict.status == "DEGRADED", verdict.message
    assert verdict.difference == pytest.approx(0.11, abs=0.02)


def test_garbled_transcripts_are_broken():
    reference = speech_reference()

    def garble(sample: SampleResult, rng: random.Random) -> None:
        sample.output = " ".join("".join(rng.choice("qxzvkjwpbtd") for _ in range(rng.randint(3, 7))) for _ in range(10))
        sample.scores["wer"] = 1.0

    verdict = judge(reference, variant_of(reference, "w4a4", garble))
    assert verdict.status == "BROKEN", verdict.message
    assert "garbled: 20 of 20 variant outputs" in verdict.message


def test_ignoring_the_image_is_broken():
    photos = caption_reference()

    def generic(sample: SampleResult, rng: random.Random) -> None:
        sample.output = "A photo of an object on a table."  # same words for the photo and the blank image
        sample.scores = {"similarity": 0.3, "key_object_recall": 0.0}

    verdict = judge(photos, variant_of(photos, "w4a4", generic))
    assert verdict.status == "BROKEN", verdict.message
    assert "media_ignored: 24 of 24" in verdict.message and "a blank image" in verdict.message


def test_a_secondary_metric_can_only_make_it_worse():
    photos = caption_reference()

    def lose_objects(sample: SampleResult, rng: random.Random) -> None:
        if sample.media[0] != "blank.png":
            sample.scores["key_object_recall"] = max(0.0, sample.scores["key_object_recall"] - 0.5)

    verdict = judge(photos, variant_of(photos, "w4a4", lose_objects))
    assert verdict.details["metrics"]["similarity"]["status"] == "PASS"
    assert verdict.status in ("DEGRADED", "BROKEN"), verdict.message
    assert any(f.startswith("key_object_recall:") for f in verdict.findings)


def test_a_reference_at_zero_cannot_show_a_loss():
    reference = gsm8k_reference(n=60, accuracy=0.0)
    verdict = judge(reference, variant_of(reference, "w4a4"))
    assert verdict.status == "INCONCLUSIVE"
    assert "no loss can show" in verdict.message


def test_thresholds_change_the_verdict():
    reference = speech_reference()
    worse = variant_of(reference, "w4a4", lambda s, rng: s.scores.update(wer=s.scores["wer"] + 0.05))
    assert judge(reference, worse).status == "DEGRADED"
    assert judge(reference, worse, Thresholds(max_increase=0.1, broken_increase=0.5)).status == "PASS"
    assert judge(reference, worse, Thresholds(max_increase=0.01, broken_increase=0.03)).status == "BROKEN"


def test_samples_are_paired_by_id_and_the_unpaired_are_reported():
    reference = speech_reference()
    variant = variant_of(reference, "fp8")
    variant.samples = list(reversed(variant.samples[2:]))
    verdict = judge(reference, variant)
    assert verdict.n == 18 and verdict.status == "PASS"
    assert verdict.details["unpaired"]["reference_only"] == ["1089-134686-0000", "1089-134686-0001"]
    assert "2 reference-only and 0 variant-only samples left out" in verdict.message
    variant.samples.append(copy.deepcopy(variant.samples[0]))
    with pytest.raises(ValueError, match="two samples with id"):
        judge(reference, variant)


def test_bootstrap_seed_makes_verdicts_reproducible():
    reference = speech_reference()
    noisy = variant_of(reference, "w4a16", lambda s, rng: s.scores.update(wer=max(0.0, s.scores["wer"] + rng.uniform(-0.03, 0.04))))
    first = judge(reference, noisy, seed=5, resamples=1000)
    assert judge(reference, noisy, seed=5, resamples=1000).interval == first.interval
    assert judge(reference, noisy, seed=6, resamples=1000).interval != first.interval


# --- reference, errors, skips ---


def test_the_reference_gets_reference():
    reference = gsm8k_reference(n=50)
    verdict = judge(reference, reference)
    assert verdict.status == "REFERENCE"
    assert verdict.reference_value == pytest.approx(sum(s.scores["exact_match"] for s in reference.samples) / 50)
    assert "0 empty" in verdict.message


def test_a_babbling_reference_is_flagged_on_its_own_verdict():
    reference = speech_reference()
    for sample in reference.samples:
        sample.output = "zzkq vvbt xxqp wwjr kkdz"
    verdict = judge(reference, reference)
    assert verdict.status == "REFERENCE"
    assert any("cannot show a variant's collapse" in f for f in verdict.findings)


def test_errors_and_skips_carry_their_reason():
    reference = gsm8k_reference(n=20)
    failed = variant_of(reference, "w4a4")
    failed.status, failed.reason = "error", "model.safetensors is truncated -- fix: re-download the checkpoint"
    verdict = judge(reference, failed)
    assert verdict.status == "ERROR" and "truncated" in verdict.message
    skipped = variant_of(reference, "w4a4")
    skipped.status, skipped.reason = "skipped", "the model takes no image input"
    assert judge(reference, skipped).status == "SKIPPED"
    broken_reference = copy.deepcopy(reference)
    broken_reference.status, broken_reference.reason = "error", "out of memory"
    verdict = judge(broken_reference, variant_of(reference, "w4a4"))
    assert verdict.status == "ERROR" and "the reference bf16 failed" in verdict.message


# --- diagnosis ---


def _panel(image_edit=None, text_edit=None, audio_edit=None):
    gsm8k, photos, speech = gsm8k_reference(n=400), caption_reference(), speech_reference()
    return [
        judge(gsm8k, variant_of(gsm8k, "v", text_edit)),
        judge(photos, variant_of(photos, "v", image_edit)),
        judge(speech, variant_of(speech, "v", audio_edit)),
    ]


def test_diagnosis_for_weight_only_points_at_the_modality_path():
    verdicts = _panel(image_edit=all_empty)
    (finding,) = diagnose(verdicts, {"activation_quantized": False, "scheme": "NVFP4A16"})
    assert "weight-only" in finding and "projectors" in finding and "MISSING" in finding
    (finding,) = diagnose(verdicts, None)
    assert "a quant card would say which" in finding
    (finding,) = diagnose(verdicts, {"activation_quantized": True, "scheme": "NVFP4", "activations_ran_quantized": False})
    assert "did not quantize activations" in finding and "not the cause" in finding


def test_diagnosis_names_every_broken_modality_and_stays_quiet_when_all_pass():
    def silence(sample: SampleResult, rng: random.Random) -> None:
        sample.output = ""
        sample.scores["wer"] = 1.0

    verdicts = _panel(image_edit=all_empty, audio_edit=silence)
    (finding,) = diagnose(verdicts, {"activation_quantized": True, "scheme": "W4A4", "calibration_datasets": ["ultrachat_200k"]})
    assert "image and audio are BROKEN" in finding and "ultrachat_200k" in finding
    assert diagnose(_panel(), {"activation_quantized": True}) == []


def test_diagnosis_when_text_breaks_too():
    def wrong_and_empty(sample: SampleResult, rng: random.Random) -> None:
        sample.output, sample.scores["exact_match"] = "", 0.0

    def silence(sample: SampleResult, rng: random.Random) -> None:
        sample.output, sample.scores["wer"] = "", 1.0

    verdicts = _panel(image_edit=all_empty, text_edit=wrong_and_empty, audio_edit=silence)
    assert [v.status for v in verdicts] == ["BROKEN", "BROKEN", "BROKEN"]
    (finding,) = diagnose(verdicts, {"activation_quantized": True})
    assert "every modality is BROKEN, text included" in finding
    assert diagnose(verdicts[:2], {"activation_quantized": True})[0].startswith("every modality")


def test_mixed_collapse_is_caught_by_the_union_of_detectors():
    photos = caption_reference()
    names = list(PHOTOS)

    def half_empty_half_garbled(sample: SampleResult, rng: random.Random) -> None:
        index = names.index(sample.sample_id)
        if index < 10:
            sample.output = ""
        elif index < 20:
            sample.output = "ĠÃ¤ zqxv Ġkrrb wvvq ĠâĢ plkj"
        sample.scores = {"similarity": 0.05, "key_object_recall": 0.0} if index < 20 else sample.scores

    verdict = judge(photos, variant_of(photos, "w4a4", half_empty_half_garbled))
    assert verdict.status == "BROKEN", verdict.message
    comparisons = {c["detector"]: c for c in verdict.details["collapse"]["comparisons"]}
    assert comparisons["empty"]["excess"] < 0.5 and comparisons["garbled"]["excess"] < 0.5
    assert any(f.startswith("collapsed: 20 of 24") for f in verdict.findings)


def test_five_bundled_utterances_all_garbled_are_enough_for_broken():
    reference = subset(speech_reference(), [f"1089-134686-{i:04d}" for i in range(5)])

    def garble(sample: SampleResult, rng: random.Random) -> None:
        sample.output, sample.scores["wer"] = "xq zzv kkrt wvbn pqq jjd", 1.0

    verdict = judge(reference, variant_of(reference, "w4a4", garble))
    assert verdict.status == "BROKEN", verdict.message  # exact one-sided p = 1/32
    assert verdict.details["metrics"]["wer"]["status"] == "INCONCLUSIVE"  # quality alone needs min_samples
    four = subset(reference, [f"1089-134686-{i:04d}" for i in range(4)])
    assert judge(four, variant_of(four, "w4a4", garble)).status == "INCONCLUSIVE"  # p = 1/16


def test_judge_takes_the_run_settings_and_the_card(tmp_path):
    from omnicheck.config import load_settings

    (tmp_path / "pyproject.toml").write_text(
        "[tool.omnicheck]\nconfidence = 0.9\nseed = 4\nbootstrap_resamples = 500\n"
        "[tool.omnicheck.thresholds.speech_wer]\nmax_increase = 0.1\nbroken_increase = 0.5\n",
        encoding="utf-8",
    )
    settings = load_settings(tmp_path, environ={})
    reference = speech_reference()
    worse = variant_of(reference, "w4a4", lambda s, rng: s.scores.update(wer=s.scores["wer"] + 0.05))
    verdict = judge(reference, worse, settings)
    assert verdict.status == "PASS" and verdict.threshold == 0.1  # the per-probe threshold applied
    assert verdict.details["confidence"] == 0.9 and "500 resamples, seed 4" in verdict.details["method"]
    assert not verdict.message.startswith("PASS")  # the plugin prefixes the status itself
    card = {"activation_quantized": True, "scheme": "NVFP4", "activations_ran_quantized": False}
    verdict = judge(reference, worse, settings, card=card)
    assert any("ran with its activations unquantized" in f for f in verdict.findings)


def test_agreement_gate_for_a_random_weight_model_panel():
    # a random-weight reference babbles: scores and detectors cannot tell a broken vision path; agreement can
    rng = random.Random(9)
    syllables = ["ka", "lo", "mi", "zu", "te", "ran", "vek", "op", "ish", "ul"]

    def babble() -> str:
        return " ".join("".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(12))

    photos = caption_reference()
    for sample in photos.samples:
        sample.output, sample.scores = babble(), {"similarity": 0.05, "key_object_recall": 0.0}
    for sample in photos.counterfactual:
        sample.output = babble()
    gsm8k = gsm8k_reference(n=60, accuracy=0.0)
    for sample in gsm8k.samples:
        sample.output = babble()

    def random_projector(sample: SampleResult, _rng: random.Random) -> None:
        sample.output = babble()  # different babble for every image: the vision path was replaced

    gate = Thresholds(min_agreement=0.8, broken_agreement=0.3)
    assert judge(photos, variant_of(photos, "copy"), gate).status != "BROKEN"
    assert judge(photos, variant_of(photos, "w4a4", random_projector)).status != "BROKEN"  # off by default
    image = judge(photos, variant_of(photos, "w4a4", random_projector), gate)
    assert image.status == "BROKEN", image.message
    assert "output_agreement: BROKEN" in image.message and "broken_agreement=0.3" in image.message
    assert judge(gsm8k, variant_of(gsm8k, "w4a4")).status == "INCONCLUSIVE"  # the reference scores 0
    text = judge(gsm8k, variant_of(gsm8k, "w4a4"), gate)
    assert text.status == "PASS" and "decides, as the metric cannot" in text.message
    text = judge(gsm8k, variant_of(gsm8k, "w4a4", random_projector), gate)
    assert text.status == "BROKEN"
    few = subset(gsm8k, [s.sample_id for s in gsm8k.samples[:5]])
    assert judge(few, variant_of(few, "copy"), gate).status == "INCONCLUSIVE"  # min_samples still holds
