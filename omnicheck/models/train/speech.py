"""Spoken utterances: texts drawn from the shared vocabulary, synthesized by espeak-ng, resampled to 16 kHz.

espeak-ng is found on PATH, or in a bundle folder (binary + libs + English data) named by OMNICHECK_ESPEAK, which
the training script carries to machines without it (scripts/train_omni.py --bundle-espeak).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omnicheck.errors import FixtureError
from omnicheck.models.train.vocab import (
    ADJECTIVES,
    COLOURS,
    DIGIT_WORDS,
    KINDS,
    NAMES,
    NOUNS,
    NUMBER_WORDS,
    VERBS,
    plural,
)

AUDIO_PROMPT = "Transcribe this audio."
AUDIO_PROMPT_VARIANTS = ("What is said in this audio?", "Write down what you hear.")
SAMPLING_RATE = 16_000
ESPEAK_RATE = 22_050
VOICES = tuple(f"en-us+{v}" for v in ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4")) + (
    "en+m3",
    "en+f2",
)
PLACE_WORDS = ("left", "right", "top", "bottom", "center")


@dataclass(frozen=True)
class Voice:
    name: str
    speed: int  # words per minute
    pitch: int  # 0..99


def random_voice(rng: random.Random) -> Voice:
    return Voice(rng.choice(VOICES), rng.randint(125, 185), rng.randint(30, 70))


def random_utterance(rng: random.Random) -> str:
    """A lowercase transcript without punctuation: digits, word lists or a short templated sentence."""
    kind = rng.random()
    colour, shape, noun = rng.choice(list(COLOURS)), rng.choice(KINDS), rng.choice(NOUNS)
    if kind < 0.15:
        return " ".join(rng.choice(DIGIT_WORDS) for _ in range(rng.randint(3, 6)))
    if kind < 0.27:
        pool = list(COLOURS) + list(KINDS) + NOUNS + ADJECTIVES + VERBS + NUMBER_WORDS
        return " ".join(rng.choice(pool) for _ in range(rng.randint(2, 5)))
    count = rng.randint(2, 9)
    templates = (
        lambda: f"the {colour} {shape} is on the {rng.choice(PLACE_WORDS)}",
        lambda: f"{NUMBER_WORDS[count]} {colour} {plural(shape, count)}",
        lambda: f"please {rng.choice(VERBS)} the {rng.choice(ADJECTIVES)} {noun}",
        lambda: f"i see {NUMBER_WORDS[count]} {noun}s near the {rng.choice(NOUNS)}",
        lambda: f"the {noun} is {rng.choice(ADJECTIVES)} and {rng.choice(ADJECTIVES)}",
        lambda: f"{rng.choice(NAMES)} has {NUMBER_WORDS[count]} {colour} {plural(shape, count)}",
        lambda: f"{rng.choice(NAMES)} will {rng.choice(VERBS)} the {noun} at {rng.choice(NUMBER_WORDS[1:13])}",
        lambda: f"the {rng.choice(ADJECTIVES)} {noun} is next to the {colour} {shape}",
        lambda: f"can you {rng.choice(VERBS)} the {colour} {noun} please",
        lambda: f"{NUMBER_WORDS[count]} plus {rng.choice(NUMBER_WORDS[1:10])} is a number",
    )
    return rng.choice(templates)()


def espeak_command() -> tuple[list[str], dict[str, str]]:
    bundle = os.environ.get("OMNICHECK_ESPEAK")
    if bundle:
        root = Path(bundle)
        env = dict(os.environ, LD_LIBRARY_PATH=str(root / "lib"))
        return [str(root / "espeak-ng"), f"--path={root}"], env
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise FixtureError(
            "espeak-ng is not installed, so no speech can be synthesized",
            "apt-get install espeak-ng, or set OMNICHECK_ESPEAK to a bundle made by scripts/train_omni.py --bundle-espeak",
        )
    return [binary], dict(os.environ)


def synthesize(text: str, voice: Voice) -> np.ndarray:
    """16 kHz int16 samples of espeak-ng speaking text."""
    from scipy.signal import resample_poly

    command, env = espeak_command()
    result = subprocess.run(
        [*command, "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch), "--stdout", text],
        capture_output=True,
        env=env,
        check=False,
    )
    if result.returncode != 0 or len(result.stdout) <= 44:
        raise FixtureError(f"espeak-ng failed on {text!r}: {result.stderr.decode()[:200]}", "check the espeak-ng install")
    samples = np.frombuffer(result.stdout[44:], dtype="<i2").astype(np.float32)  # 44-byte RIFF header, then PCM
    resampled = resample_poly(samples, 320, 441)  # 22050 -> 16000 Hz
    return np.clip(np.round(resampled), -32768, 32767).astype(np.int16)


def _synthesize_job(job: tuple[str, Voice]) -> np.ndarray:
    return synthesize(*job)


def synthesize_many(jobs: list[tuple[str, Voice]], processes: int) -> list[np.ndarray]:
    if processes <= 1:
        return [_synthesize_job(j) for j in jobs]
    from multiprocessing import get_context

    with get_context("fork").Pool(processes) as pool:
        return pool.map(_synthesize_job, jobs, chunksize=32)


def augment(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Float waveform in [-1, 1] with random lead/tail silence, gain and faint noise (shifts the 640-sample grid)."""
    x = samples.astype(np.float32) / 32768.0
    lead, tail = int(rng.integers(0, 6400)), int(rng.integers(0, 3200))
    x = np.concatenate([np.zeros(lead, np.float32), x, np.zeros(tail, np.float32)])
    x = x * rng.uniform(0.35, 1.0)
    x = x + rng.normal(0, rng.uniform(0.0, 0.004), size=x.shape).astype(np.float32)
    return np.clip(x, -1, 1).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray) -> None:
    import wave

    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLING_RATE)
        handle.writeframes(samples.astype("<i2").tobytes())
