"""image_caption, speech_wer and video_describe on the bundled real media: loading, scoring, counterfactuals,
user data in the same layouts, and each probe end to end on a tiny real gemma4_unified model."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from omnicheck.errors import FixtureError
from omnicheck.probes import PROBES, common, load_probe, modality_of
from omnicheck.probes.speech_wer import read_librispeech, word_errors
from omnicheck.types import AudioPart, GenerationSettings, ImagePart, Sample, VideoPart

MEDIA_PROBES = [name for name in PROBES if modality_of(name) != "text"]
UNRELATED = "A bowl of tomato soup on a kitchen counter next to a loaf of bread."


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("OMNICHECK_CACHE", str(tmp_path_factory.getbasetemp() / "omnicheck-cache"))


def _media(sample: Sample) -> list[Path]:
    return [p.path for m in sample.messages for p in m.media()]


# --- loading ---


@pytest.mark.parametrize("name", MEDIA_PROBES)
def test_bundled_samples_are_valid_and_smoke_is_a_spread_subset(name):
    probe = load_probe(name)
    full = probe.load_samples("full")
    smoke = probe.load_samples("smoke")
    assert len({s.id for s in full}) == len(full) >= 3
    assert len(smoke) == min(probe.smoke_size, len(full))
    assert {s.id for s in smoke} <= {s.id for s in full}
    for sample in full:
        (message,) = sample.messages
        assert message.role == "user" and message.text.strip()
        (path,) = _media(sample)
        assert path.is_file() and path.stat().st_size > 1000
        assert sample.target


def test_each_probe_sends_its_own_kind_of_media():
    part_of = {"image": ImagePart, "audio": AudioPart, "video": VideoPart}
    kinds = {name: type(load_probe(name).load_samples("smoke")[0].messages[0].media()[0]) for name in MEDIA_PROBES}
    assert kinds == {name: part_of[modality_of(name)] for name in MEDIA_PROBES}
    video = load_probe("video_describe").load_samples("smoke")[0].messages[0].media()[0]
    assert video.num_frames == 8


def test_unknown_tier_is_refused():
    with pytest.raises(ValueError, match="unknown tier"):
        load_probe("image_caption").load_samples("huge")


# --- speech scoring ---


def test_reference_transcripts_score_zero_and_shuffled_ones_do_not():
    probe = load_probe("speech_wer")
    rng = random.Random(0)
    for sample in probe.load_samples("full"):
        assert probe.score(sample, sample.target) == {"wer": 0.0, "empty": 0.0}
        # Whisper's normalizer makes case and punctuation irrelevant
        assert probe.score(sample, sample.target.lower().capitalize() + ".")["wer"] == 0.0
        words = sample.target.split()
        if len(set(words)) < 2:  # "FIVE FIVE" reads the same in any order
            continue
        shuffled = words[:]
        while shuffled == words:
            rng.shuffle(shuffled)
        assert probe.score(sample, " ".join(shuffled))["wer"] > 0.0


def test_empty_transcript_is_all_deletions():
    probe = load_probe("speech_wer")
    sample = probe.load_samples("smoke")[0]
    assert probe.score(sample, "") == {"wer": 1.0, "empty": 1.0}
    assert probe.score(sample, " ... ")["empty"] == 1.0


def test_alignment_is_plain_json_and_adds_up():
    detail = word_errors("HE WAS NOT AN ILL DISPOSED YOUNG MAN", "he was not an illness those young man")
    assert detail["substitutions"] == 2 and detail["hits"] == 6 and detail["deletions"] == 0
    assert detail["wer"] == pytest.approx(2 / 8)
    assert json.loads(json.dumps(detail["alignment"])) == detail["alignment"]
    assert [c["type"] for c in detail["alignment"]] == ["equal", "substitute", "equal"]
    substituted = detail["alignment"][1]
    assert detail["ref_words"][substituted["ref_start_idx"] : substituted["ref_end_idx"]] == ["ill", "disposed"]
    assert detail["hyp_words"][substituted["hyp_start_idx"] : substituted["hyp_end_idx"]] == ["illness", "those"]
    assert common.transcript_normalizer()[1].startswith("whisper-normalizer==")


def test_the_normalizer_treats_spelled_numbers_and_titles_alike():
    assert word_errors("MISTER SMITH PAID TWENTY DOLLARS", "Mr. Smith paid $20.")["wer"] == 0.0


# --- caption and description scoring (real MiniLM) ---


@pytest.mark.parametrize("name,recall", [("image_caption", "object_recall"), ("video_describe", "concept_recall")])
def test_a_relevant_description_beats_an_unrelated_one(name, recall):
    probe = load_probe(name)
    for sample in probe.load_samples("full"):
        relevant = probe.score(sample, sample.target[0])
        unrelated = probe.score(sample, UNRELATED)
        assert relevant[recall] > unrelated[recall], sample.id
        assert relevant["similarity"] > unrelated["similarity"] + 0.2, sample.id
        assert relevant["empty"] == unrelated["empty"] == 0.0


def test_a_paraphrase_is_closer_than_another_images_caption():
    probe = load_probe("image_caption")
    samples = {s.id: s for s in probe.load_samples("full")}
    cat = samples["chelsea"]
    own = probe.score(cat, "A photo of a cat's face with big green eyes.")
    other = probe.score(cat, samples["rocket"].target[0])
    assert own["object_recall"] == 1.0 and other["object_recall"] == 0.0
    assert own["similarity"] > other["similarity"]


def test_empty_caption_scores_zero_and_is_flagged():
    probe = load_probe("image_caption")
    sample = probe.load_samples("smoke")[0]
    assert probe.score(sample, "  ") == {"object_recall": 0.0, "similarity": 0.0, "cider_d": 0.0, "empty": 1.0}


def test_key_terms_match_word_forms_and_phrases_but_not_parts_of_words():
    terms = [["cat", "kitten"], ["bow tie", "bowtie"], ["stretch", "yawn"]]
    hit = common.key_term_recall("Two kittens; a man in a Bow-Tie is stretching.", terms)
    assert hit.recall == 1.0 and hit.missed == []
    miss = common.key_term_recall("A cathedral with a tie rack.", terms)
    assert miss.recall == 0.0 and miss.missed == ["cat", "bow tie", "stretch"]


def test_extra_lists_matched_and_missed_objects():
    probe = load_probe("image_caption")
    sample = next(s for s in probe.load_samples("full") if s.id == "coffee")
    extra = probe.extra(sample, "An espresso cup on a saucer.")
    assert extra == {"matched": ["coffee", "cup", "saucer"], "missed": ["spoon"]}


def test_fingerprints_change_when_the_targets_do(tmp_path):
    _librispeech_tree(tmp_path)
    speech = load_probe("speech_wer", tmp_path)
    before = speech.fingerprint()
    trans = tmp_path / "121" / "121726" / "121-121726.trans.txt"
    trans.write_text(trans.read_text().replace("COUNTRY", "NATION"))
    assert speech.fingerprint()["transcripts"] != before["transcripts"]

    bundled = Path(__file__).resolve().parents[2] / "fixtures" / "images"
    shutil.copy(bundled / "horse.jpg", tmp_path / "horse.jpg")
    row = {"id": "h", "file": "horse.jpg", "references": ["A horse."], "key_objects": [["horse"]]}
    (tmp_path / "captions.jsonl").write_text(json.dumps(row) + "\n")
    captions = load_probe("image_caption", tmp_path)
    first = captions.fingerprint()
    (tmp_path / "captions.jsonl").write_text(json.dumps(dict(row, key_objects=[["pony"]])) + "\n")
    assert captions.fingerprint()["references"] != first["references"]
    assert load_probe("image_caption").fingerprint()["similarity"]["encoder"] == common.ENCODER_NAME


# --- counterfactuals ---


def test_image_counterfactual_is_a_grey_picture_of_the_same_size():
    from PIL import Image

    probe = load_probe("image_caption")
    sample = probe.load_samples("smoke")[0]
    blank = probe.counterfactual(sample)
    assert blank.id == sample.id and blank.messages[0].text == sample.messages[0].text
    (original,), (grey,) = _media(sample), _media(blank)
    with Image.open(original) as a, Image.open(grey) as b:
        assert a.size == b.size
        assert b.convert("RGB").getextrema() == ((128, 128),) * 3
    assert _media(probe.counterfactual(sample)) == [grey]  # written once, reused


def test_speech_counterfactual_is_silence_of_the_same_length():
    import soundfile as sf

    probe = load_probe("speech_wer")
    sample = probe.load_samples("smoke")[0]
    (original,), (silent,) = _media(sample), _media(probe.counterfactual(sample))
    audio, rate = sf.read(silent)
    assert rate == sf.info(original).samplerate and len(audio) == sf.info(original).frames
    assert not audio.any()


def test_video_counterfactual_freezes_the_first_frame():
    import av
    import numpy as np

    probe = load_probe("video_describe")
    sample = next(s for s in probe.load_samples("full") if s.id == "carphone_pristine")
    (original,), (frozen,) = _media(sample), _media(probe.counterfactual(sample))

    def frames(path):
        with av.open(str(path)) as container:
            return [f.to_ndarray(format="rgb24").astype(float) for f in container.decode(video=0)]

    source, still = frames(original), frames(frozen)
    assert len(still) == len(source) and still[0].shape == source[0].shape
    assert np.abs(still[-1] - still[0]).mean() < 2.0  # the same picture throughout
    assert np.abs(source[-1] - source[0]).mean() > 10.0  # the real clip moves
    assert np.abs(still[0] - source[0]).mean() < 8.0  # and it is the clip's first frame


# --- user data in the bundled layouts ---


def _librispeech_tree(root: Path) -> dict[str, str]:
    """Two speakers in the LibriSpeech layout, FLAC written by soundfile from the bundled speech."""
    import soundfile as sf

    bundled = {u.id: u for u in read_librispeech(Path(__file__).resolve().parents[2] / "fixtures" / "speech")}
    picks = {"1089-134686-0000": "9001-1-0880", "1089-134686-0001": "9001-1-0930", "121-121726-0000": "9003-1961-0000"}
    transcripts: dict[str, str] = {}
    for new_id, old_id in picks.items():
        speaker, chapter, _ = new_id.split("-")
        folder = root / speaker / chapter
        folder.mkdir(parents=True, exist_ok=True)
        audio, rate = sf.read(bundled[old_id].audio)
        sf.write(folder / f"{new_id}.flac", audio, rate)
        transcripts[new_id] = bundled[old_id].transcript
        with open(folder / f"{speaker}-{chapter}.trans.txt", "a") as handle:
            handle.write(f"{new_id} {transcripts[new_id]}\n")
    return transcripts


def test_librispeech_reader_takes_a_user_split(tmp_path):
    transcripts = _librispeech_tree(tmp_path / "test-clean")
    for root in (tmp_path / "test-clean", tmp_path):  # the split itself or the folder above it
        utterances = read_librispeech(root)
        assert [u.id for u in utterances] == sorted(transcripts)
        assert all(u.audio.is_file() and u.transcript == transcripts[u.id] for u in utterances)
    probe = load_probe("speech_wer", tmp_path / "test-clean")
    samples = probe.load_samples("full")
    assert [s.id for s in samples] == sorted(transcripts)
    assert all(probe.score(s, s.target)["wer"] == 0.0 for s in samples)
    assert probe.fingerprint()["data"] == str(tmp_path / "test-clean")


def test_librispeech_reader_errors_are_one_line(tmp_path):
    with pytest.raises(FixtureError, match="does not exist"):
        read_librispeech(tmp_path / "absent")
    with pytest.raises(FixtureError, match=r"no \*\.trans\.txt transcripts under"):
        read_librispeech(tmp_path)
    _librispeech_tree(tmp_path / "split")
    (tmp_path / "split" / "121" / "121726" / "121-121726-0000.flac").unlink()
    with pytest.raises(FixtureError, match=r"no 121-121726-0000\.flac beside the transcript") as err:
        read_librispeech(tmp_path / "split")
    assert "\n" not in str(err.value)


def test_a_corrupt_user_audio_file_is_skipped_before_any_model_and_all_corrupt_is_one_line(tmp_path):
    _librispeech_tree(tmp_path)
    (tmp_path / "1089" / "134686" / "1089-134686-0000.flac").write_bytes(b"fLaC" + b"\0" * 64)
    probe = load_probe("speech_wer", tmp_path)
    assert [s.id for s in probe.load_samples("full")] == ["1089-134686-0001", "121-121726-0000"]
    (skipped,) = probe.skipped
    assert skipped["id"] == "1089-134686-0000" and "1089-134686-0000.flac cannot be read" in skipped["reason"]
    for flac in tmp_path.rglob("*.flac"):
        flac.write_bytes(b"fLaC" + b"\0" * 64)
    with pytest.raises(FixtureError, match=r"audio .*\.flac cannot be read .*\(and 2 more\)") as err:
        load_probe("speech_wer", tmp_path).load_samples("full")
    assert "\n" not in str(err.value)


def test_user_caption_set_in_the_bundled_schema(tmp_path):
    bundled = Path(__file__).resolve().parents[2] / "fixtures" / "images"
    shutil.copy(bundled / "horse.jpg", tmp_path / "my horse.jpg")
    row = {"id": "h1", "file": "my horse.jpg", "references": ["A horse."], "key_objects": [["horse"]]}
    (tmp_path / "captions.jsonl").write_text(json.dumps(row) + "\n")
    probe = load_probe("image_caption", tmp_path)
    (sample,) = probe.load_samples("full")
    assert sample.id == "h1" and _media(sample) == [tmp_path / "my horse.jpg"]
    assert probe.score(sample, "a black horse")["object_recall"] == 1.0

    (tmp_path / "my horse.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(FixtureError, match=r"image .*my horse\.jpg cannot be read") as err:
        probe.load_samples("full")
    assert "\n" not in str(err.value)


def test_user_description_set_needs_every_field(tmp_path):
    (tmp_path / "descriptions.jsonl").write_text(json.dumps({"id": "x", "file": "x.mp4", "references": ["y"]}) + "\n")
    with pytest.raises(FixtureError, match=r"descriptions\.jsonl:1 lacks key_concepts"):
        load_probe("video_describe", tmp_path).load_samples("full")
    with pytest.raises(FixtureError, match="no descriptions.jsonl at"):
        load_probe("video_describe", tmp_path / "nothing-here").load_samples("full")


def test_an_altered_bundled_fixture_stops_the_probe(tmp_path, monkeypatch):
    from omnicheck import fixtures

    root = tmp_path / "fixtures"
    shutil.copytree(Path(__file__).resolve().parents[2] / "fixtures" / "video", root / "video")
    shutil.copy(Path(__file__).resolve().parents[2] / "fixtures" / "manifest.json", root / "manifest.json")
    (root / "video" / "bikes.mp4").write_bytes(b"\0" * 509868)
    monkeypatch.setenv(fixtures.ENV, str(root))
    with pytest.raises(FixtureError, match=r"bikes\.mp4 does not match its manifest .* fix: restore it"):
        load_probe("video_describe").load_samples("smoke")


# --- end to end on a tiny real model ---


@pytest.mark.slow
@pytest.mark.parametrize("name", MEDIA_PROBES)
def test_probe_runs_end_to_end_on_tiny_gemma4_unified(name, tiny_backend):
    probe = load_probe(name)
    samples = probe.load_samples("smoke")[:2]
    result = probe.run(tiny_backend, samples, GenerationSettings(max_new_tokens=8, batch_size=2))
    assert result.status == "ok" and result.probe == name and result.modality == probe.modality.value
    assert [s.sample_id for s in result.samples] == [s.id for s in samples]
    assert [s.sample_id for s in result.counterfactual] == [s.id for s in samples]
    for row in result.samples + result.counterfactual:
        assert set(row.scores) == {m.name for m in probe.metrics}
        assert row.scores["empty"] in (0.0, 1.0)
        assert row.media and all(Path(m).is_file() for m in row.media)
    assert result.counterfactual[0].media != result.samples[0].media
    assert result.aggregates["n"] == len(samples)
    assert 0 < result.generated_tokens <= 8 * len(samples)
    document = json.loads(json.dumps(result.to_json()))
    assert document["samples"][0]["extra"]
    if name == "speech_wer":
        assert result.info["normalizer"].startswith("whisper-normalizer==")
        assert result.aggregates["corpus_wer"] >= 0.0
        from omnicheck.report.diff import alignment_pieces  # the report draws the alignment the probe kept

        for row in result.samples:
            assert alignment_pieces(row.extra) is not None
