"""A realistic omnicheck.json document over real media, for the report tests (and for looking at the report).

The panel tells the story omnicheck exists for: bf16 reference; w4a16 (weight-only) passes everywhere; w4a4
(activations calibrated on text) keeps text but loses image, audio and video; a fourth variant fails to load.
Model outputs are written here (no model can caption in this sandbox), but every speech score and alignment is
computed by jiwer from the real transcripts, and the media are real files:
- speech: the bundled LibriVox recordings in fixtures/speech/9001 (Sense and Sensibility; public domain, from
  Debian's pocketsphinx-testdata, provenance in fixtures/manifest.json);
- images: scikit-learn's bundled china.jpg and flower.jpg (photos, CC-BY per scikit-learn's docs), or PIL
  drawings when scikit-learn is absent;
- video: short clips encoded here with av, panning across those photos.
Some outputs are hostile HTML on purpose: the report must show them as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_IMG = '<img src=x onerror=alert(1)>'


def _photos(media_dir: Path) -> list[Path]:
    try:
        import sklearn

        images = Path(sklearn.__file__).parent / "datasets" / "images"
        found = [images / "china.jpg", images / "flower.jpg"]
        if all(p.is_file() for p in found):
            return found
    except ImportError:
        pass
    from PIL import Image, ImageDraw

    out = []
    for name, color in (("drawn_sun.png", (250, 200, 40)), ("drawn_boat.png", (30, 90, 200))):
        image = Image.new("RGB", (640, 427), (200, 230, 250))
        draw = ImageDraw.Draw(image)
        draw.ellipse((220, 90, 420, 290), fill=color)
        draw.rectangle((0, 330, 640, 427), fill=(40, 120, 60))
        path = media_dir / name
        image.save(path)
        out.append(path)
    return out


def _speech(media_dir: Path) -> list[tuple[Path, str]]:
    """Four LibriVox utterances from the bundled LibriSpeech-layout fixture, lower-cased transcripts."""
    chapter = FIXTURES / "speech" / "9001" / "1"
    pairs = []
    for line in (chapter / "9001-1.trans.txt").read_text().splitlines():
        utt, _, words = line.partition(" ")
        pairs.append((chapter / f"{utt}.flac", words.lower()))
    return pairs[:4]


def _long_speech(media_dir: Path, parts: list[Path]) -> Path:
    """Several utterances joined: longer than the report's 10 s clip limit, to show trimming."""
    import numpy as np
    import soundfile

    audio = []
    for part in parts:
        data, rate = soundfile.read(part, dtype="float32")
        audio.append(data if data.ndim == 1 else data.mean(axis=1))
    joined = np.concatenate(audio)
    while joined.size < 16000 * 14:
        joined = np.concatenate([joined, joined])
    path = media_dir / "long_read_speech.flac"
    soundfile.write(path, joined, 16000)
    return path


def _pan_video(photo: Path, out: Path, seconds: float = 3.0, fps: int = 12) -> Path:
    """A clip panning and zooming across a photo, encoded with av (H.264 when available, else MPEG-4)."""
    import av
    import numpy as np
    from PIL import Image

    width, height = 320, 240
    with Image.open(photo) as source:
        picture = source.convert("RGB")
    frames = int(seconds * fps)
    with av.open(str(out), mode="w") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            progress = i / max(1, frames - 1)
            zoom = 1.0 - 0.35 * progress
            box_w, box_h = picture.width * zoom, picture.height * zoom
            left = (picture.width - box_w) * progress
            top = (picture.height - box_h) * (1 - progress)
            crop = picture.resize((width, height), box=(left, top, left + box_w, top + box_h))
            frame = av.VideoFrame.from_ndarray(np.asarray(crop), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def _speech_sample(sample_id: str, path: Path, transcript: str, output: str) -> dict[str, Any]:
    import jiwer

    scored = jiwer.process_words(transcript, output if output.strip() else "<empty>")
    hyp_words = scored.hypotheses[0] if output.strip() else []
    alignment = [
        {
            "type": chunk.type,
            "ref_start_idx": chunk.ref_start_idx,
            "ref_end_idx": chunk.ref_end_idx,
            "hyp_start_idx": chunk.hyp_start_idx if output.strip() else 0,
            "hyp_end_idx": chunk.hyp_end_idx if output.strip() else 0,
        }
        for chunk in scored.alignments[0]
    ]
    if not output.strip():
        alignment = [{"type": "delete", "ref_start_idx": 0, "ref_end_idx": len(scored.references[0]),
                      "hyp_start_idx": 0, "hyp_end_idx": 0}]
    wer = scored.wer if output.strip() else 1.0
    return {
        "id": sample_id,
        "prompt": "Transcribe this audio exactly.",
        "media": [str(path)],
        "output": output,
        "target": transcript,
        "scores": {"wer": float(wer)},
        "extra": {"alignment": alignment, "ref_words": scored.references[0], "hyp_words": hyp_words,
                  "normalizer": "whisper_normalizer.english.EnglishTextNormalizer"},
    }


def _result(variant: str, probe: str, modality: str, metrics: list[dict[str, Any]], samples: list[dict[str, Any]],
            seconds: float, tokens: int, cached: bool = False, counterfactual: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    aggregates: dict[str, float] = {}
    for metric in metrics:
        values = [s["scores"][metric["name"]] for s in samples if metric["name"] in s["scores"]]
        if values:
            aggregates[metric["name"]] = sum(values) / len(values)
    aggregates["n"] = float(len(samples))
    return {
        "variant": variant, "probe": probe, "modality": modality, "status": "ok", "reason": "",
        "metrics": metrics, "aggregates": aggregates, "seconds": seconds, "generated_tokens": tokens,
        "cached": cached, "info": {}, "samples": samples, "counterfactual": counterfactual or [],
    }


GSM8K = [
    ("gsm8k-0", "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in dollars does she make every day at the farmers' market?", "18"),
    ("gsm8k-1", "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total does it take?", "3"),
    ("gsm8k-2", "Josh decides to try flipping a house. He buys a house for $80,000 and then puts in $50,000 in repairs. This increased the value of the house by 150%. How much profit did he make?", "70000"),
    ("gsm8k-3", "James decides to run 3 sprints 3 times a week. He runs 60 meters each sprint. How many total meters does he run a week?", "540"),
]
GSM8K_OUTPUTS = {
    "bf16": ["16 - 3 - 4 = 9 eggs are sold.\n9 * 2 = 18\n#### 18", "Half of 2 is 1, so 2 + 1 = 3\n#### 3",
             "Value: 80000 * 2.5 = 200000. Profit: 200000 - 130000 = 70000\n#### 70000", "3 * 3 * 60 = 540\n#### 540"],
    "w4a16": ["16 - 3 - 4 = 9 eggs are sold.\n9 * 2 = 18\n#### 18", "Half of 2 is 1, so 2 + 1 = 3\n#### 3",
              "Value: 80000 * 1.5 = 120000. Profit: 120000 - 130000 = -10000\n#### -10000", "3 * 3 * 60 = 540\n#### 540"],
    "w4a4": ["She has 16 - 3 - 4 = 9 eggs left.\n9 * 2 = 18\n#### 18", "2 + 1 = 3\n#### 3",
             "Value: 80000 * 2.5 = 200000. Profit: 200000 - 130000 = 70000\n#### 70000", "3 * 60 = 180\n#### 180"],
}

CAPTION_TARGETS = [
    ["A traditional Chinese pagoda-roofed temple among green trees under a blue sky."],
    ["A close-up of a pink flower with yellow stamens."],
]
CAPTION_OUTPUTS = {
    "bf16": ["A Chinese temple with a curved tiled roof surrounded by trees under a clear blue sky.",
             "A pink flower with yellow stamens in close-up, green leaves behind it."],
    "w4a16": ["A Chinese temple with a curved tiled roof surrounded by green trees under a blue sky.",
              "A pink flower with yellow stamens in close-up."],
    "w4a4": [HOSTILE_SCRIPT, HOSTILE_IMG + " the the the the the the the the the"],
}
CAPTION_SCORES = {
    "bf16": [(0.86, 1.0), (0.91, 1.0)],
    "w4a16": [(0.88, 1.0), (0.90, 1.0)],
    "w4a4": [(0.02, 0.0), (0.05, 0.0)],
}

VIDEO_OUTPUTS = {
    "bf16": ["The camera slowly pans across a temple roof and zooms in on the trees.",
             "A slow zoom over a pink flower, moving from the petals to the centre."],
    "w4a16": ["The camera pans across a temple roof and zooms in towards the trees.",
              "A slow zoom over a pink flower moving toward its centre."],
    "w4a4": ["", "ggg ggg ggg ggg ggg ggg ggg ggg ggg ggg ggg ggg ggg ggg"],
}
VIDEO_SCORES = {"bf16": [0.81, 0.84], "w4a16": [0.79, 0.83], "w4a4": [0.0, 0.03]}


def _speech_outputs(transcripts: list[str]) -> dict[str, list[str]]:
    def drop(words: str, every: int) -> str:
        return " ".join(w for i, w in enumerate(words.split()) if i % every != every - 1)

    bf16 = [t.replace("prudently", "prudent") for t in transcripts]
    w4a16 = [t.replace("prudently", "prudent").replace("disposed", "disposal") for t in transcripts]
    w4a4 = [drop(t.replace("ill", "will").replace("amiable", "a mile"), 3) + " the the the" for t in transcripts]
    w4a4[-1] = ""
    return {"bf16": bf16, "w4a16": w4a16, "w4a4": w4a4}


def _verdict(variant: str, probe: str, modality: str, status: str, metric: str, reference: float, value: float,
             interval: tuple[float, float], threshold: float, retention: bool, n: int, message: str,
             findings: list[str] | None = None, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "variant": variant, "probe": probe, "modality": modality, "status": status, "message": message,
        "metric": metric, "reference_value": reference, "variant_value": value, "difference": value - reference,
        "interval": list(interval), "threshold": threshold,
        "retention": (value / reference) if retention and reference else None, "n": n,
        "findings": findings or [],
        "details": {"retention_interval": [max(0.0, 1 + interval[0] / reference), 1 + interval[1] / reference]
                    if retention and reference else None, **(details or {})},
    }


def build_document(media_dir: Path) -> dict[str, Any]:
    """The whole omnicheck.json document; media files it needs are written under media_dir."""
    media_dir.mkdir(parents=True, exist_ok=True)
    photos = _photos(media_dir)
    speech = _speech(media_dir)
    long_speech = _long_speech(media_dir, [p for p, _ in speech])
    speech.append((long_speech, " ".join(t for _, t in speech)))
    videos = [_pan_video(photo, media_dir / f"pan_{photo.stem}.mp4") for photo in photos]
    transcripts = [t for _, t in speech]
    speech_outputs = _speech_outputs(transcripts)

    variant_names = ["bf16", "w4a16", "w4a4"]
    binary = [{"name": "exact_match", "higher_is_better": True, "kind": "binary"}]
    caption_metrics = [{"name": "similarity", "higher_is_better": True, "kind": "continuous"},
                       {"name": "key_object_recall", "higher_is_better": True, "kind": "continuous"}]
    wer_metrics = [{"name": "wer", "higher_is_better": False, "kind": "continuous"}]
    video_metrics = [{"name": "similarity", "higher_is_better": True, "kind": "continuous"}]

    results = []
    for variant in variant_names:
        gsm = [
            {"id": sid, "prompt": q, "media": [], "output": out, "target": answer,
             "scores": {"exact_match": float(out.rstrip().endswith(f"#### {answer}"))}, "extra": {}}
            for (sid, q, answer), out in zip(GSM8K, GSM8K_OUTPUTS[variant])
        ]
        results.append(_result(variant, "gsm8k", "text", binary, gsm, 41.2, 880, cached=variant == "bf16"))
        captions = [
            {"id": f"caption-{photo.stem}", "prompt": "Describe this image in one sentence.", "media": [str(photo)],
             "output": out, "target": target, "scores": {"similarity": sim, "key_object_recall": recall},
             "extra": {}}
            for photo, out, target, (sim, recall) in zip(photos, CAPTION_OUTPUTS[variant], CAPTION_TARGETS, CAPTION_SCORES[variant])
        ]
        blanks = [
            {**c, "media": [], "output": c["output"] if variant == "w4a4" else "A plain grey square.", "scores": {}, "extra": {}}
            for c in captions
        ]
        results.append(_result(variant, "image_caption", "image", caption_metrics, captions, 12.5, 120,
                               counterfactual=blanks))
        speech_samples = [
            _speech_sample(f"librivox-{path.stem}", path, transcript, out)
            for (path, transcript), out in zip(speech, speech_outputs[variant])
        ]
        results.append(_result(variant, "speech_wer", "audio", wer_metrics, speech_samples, 20.3, 310))
        video_samples = [
            {"id": f"video-{video.stem}", "prompt": "Describe what happens in this video.", "media": [str(video)],
             "output": out, "target": "A camera pans and zooms across a still photograph.",
             "scores": {"similarity": score}, "extra": {}}
            for video, out, score in zip(videos, VIDEO_OUTPUTS[variant], VIDEO_SCORES[variant])
        ]
        results.append(_result(variant, "video_describe", "video", video_metrics, video_samples, 30.1, 96))

    def agg(variant: str, probe: str, metric: str) -> float:
        return next(r["aggregates"][metric] for r in results if r["variant"] == variant and r["probe"] == probe)

    diagnosis = ("text passes while image, audio and video collapse, and the quant card shows activation "
                 "quantization calibrated on text: the stored input scales clip multimodal activations. Fix: a "
                 "weight-only scheme (NVFP4A16), multimodal calibration data, or keep the towers and projectors "
                 "unquantized.")

    def sample_ids(variant: str, probe: str) -> list[str]:
        return next([s["id"] for s in r["samples"]] for r in results if r["variant"] == variant and r["probe"] == probe)

    def collapse(variant: str, probe: str, fired: dict[str, list[int]]) -> dict[str, Any]:
        """The gate's details.collapse: one comparison per detector, and the per-sample reasons."""
        ids = sample_ids(variant, probe)
        flags: dict[str, dict[str, str]] = {}
        for detector, positions in fired.items():
            for i in positions:
                flags.setdefault(ids[i], {})[detector] = f"{detector} fired on {ids[i]}"
        comparisons = [
            {"detector": d, "n": len(ids), "variant": len(fired.get(d, [])), "reference": 0,
             "only_variant": len(fired.get(d, [])), "only_reference": 0,
             "excess": len(fired.get(d, [])) / len(ids), "p_value": 0.5 ** len(fired.get(d, [])), "example": ""}
            for d in ("empty", "loop", "garbled", "media_ignored")
        ]
        return {"comparisons": comparisons, "threshold": 0.5, "flags": flags}

    verdicts = []
    for variant in variant_names:
        if variant == "bf16":
            for probe, modality, metric in (("gsm8k", "text", "exact_match"), ("image_caption", "image", "similarity"),
                                            ("speech_wer", "audio", "wer"), ("video_describe", "video", "similarity")):
                value = agg("bf16", probe, metric)
                n = len(sample_ids("bf16", probe))
                verdicts.append({"variant": "bf16", "probe": probe, "modality": modality, "status": "REFERENCE",
                                 "message": f"{probe} on bf16 (the reference): {metric} {value:.3g} over {n} samples",
                                 "metric": metric, "reference_value": value, "variant_value": value, "difference": None,
                                 "interval": None, "threshold": None, "retention": None, "n": n, "findings": [],
                                 "details": {"collapse_counts": {"empty": 0, "loop": 0, "garbled": 0,
                                                                 "media_ignored": 0, "collapsed": 0}}})
            continue
        broken = variant == "w4a4"
        ref_gsm, var_gsm = agg("bf16", "gsm8k", "exact_match"), agg(variant, "gsm8k", "exact_match")
        verdicts.append(_verdict(
            variant, "gsm8k", "text", "INCONCLUSIVE" if variant == "w4a16" else "PASS", "exact_match", ref_gsm, var_gsm,
            (-0.5, 0.25), 0.95, True, 4,
            f"gsm8k on {variant}: exact_match {var_gsm:.2f} vs reference {ref_gsm:.2f} (retention {var_gsm / ref_gsm:.0%}); "
            "4 samples are too few to decide at 95% confidence (McNemar p=1.0); run --omnicheck-tier full",
            details={"threshold_kind": "min_retention", "method": "mcnemar", "worse": 1, "better": 0,
                     "collapse": collapse(variant, "gsm8k", {})},
        ))
        ref_cap, var_cap = agg("bf16", "image_caption", "similarity"), agg(variant, "image_caption", "similarity")
        verdicts.append(_verdict(
            variant, "image_caption", "image", "BROKEN" if broken else "PASS", "similarity", ref_cap, var_cap,
            (-0.87, -0.83) if broken else (-0.02, 0.03), 0.05, True, 2,
            (f"image_caption on {variant}: outputs collapsed: media_ignored: 2 of 2 variant outputs vs 0 of 2 for the "
             f"reference; similarity {var_cap:.2f} vs reference {ref_cap:.2f}; " + diagnosis) if broken
            else f"image_caption on {variant}: similarity {var_cap:.2f} vs reference {ref_cap:.2f}, within the allowed drop",
            findings=["media_ignored: 2 of 2 variant outputs vs 0 of 2 for the reference: the image is ignored",
                      "loop: 1 of 2 variant outputs are repetition loops"] if broken else [],
            details={"threshold_kind": "max_drop",
                     "collapse": collapse(variant, "image_caption", {"loop": [1], "media_ignored": [0, 1]} if broken else {})},
        ))
        ref_wer, var_wer = agg("bf16", "speech_wer", "wer"), agg(variant, "speech_wer", "wer")
        verdicts.append(_verdict(
            variant, "speech_wer", "audio", "BROKEN" if broken else "DEGRADED", "wer", ref_wer, var_wer,
            (var_wer - ref_wer - 0.12, var_wer - ref_wer + 0.1) if broken else (0.004, 0.03), 0.02, False, len(speech),
            f"speech_wer on {variant}: WER {var_wer:.1%} vs reference {ref_wer:.1%}: +{(var_wer - ref_wer) * 100:.1f} "
            "points, allowed +2 points" + ("; " + diagnosis if broken else ""),
            details={"threshold_kind": "max_increase",
                     "collapse": collapse(variant, "speech_wer", {"empty": [4]} if broken else {})},
        ))
        ref_vid, var_vid = agg("bf16", "video_describe", "similarity"), agg(variant, "video_describe", "similarity")
        verdicts.append(_verdict(
            variant, "video_describe", "video", "BROKEN" if broken else "PASS", "similarity", ref_vid, var_vid,
            (-0.85, -0.76) if broken else (-0.03, 0.01), 0.05, True, 2,
            f"video_describe on {variant}: similarity {var_vid:.2f} vs reference {ref_vid:.2f}"
            + ("; " + diagnosis if broken else ", within the allowed drop"),
            findings=["empty: 1 of 2 variant outputs", "garbled: 1 of 2 variant outputs are not English words"] if broken else [],
            details={"threshold_kind": "max_drop",
                     "collapse": collapse(variant, "video_describe", {"empty": [0], "garbled": [1]} if broken else {})},
        ))

    matrix = {
        "bf16": {"text": "REFERENCE", "image": "REFERENCE", "audio": "REFERENCE", "video": "REFERENCE"},
        "w4a16": {"text": "INCONCLUSIVE", "image": "PASS", "audio": "DEGRADED", "video": "PASS"},
        "w4a4": {"text": "PASS", "image": "BROKEN", "audio": "BROKEN", "video": "BROKEN"},
        "mlp_missing": {"text": "ERROR", "image": "ERROR", "audio": "ERROR", "video": "ERROR"},
    }
    nvfp4_card = {
        "format": "compressed-tensors", "scheme": "NVFP4 (W4A4)", "producer": "llmcompressor 0.14.0.1",
        "groups": {
            "attention q/k/v/o": {"weights": "fp4 e2m1, group 16", "activations": "fp4, static global scale"},
            "mlp": {"weights": "fp4 e2m1, group 16", "activations": "fp4, static global scale"},
            "vision projector": {"weights": "fp4 e2m1, group 16", "activations": "fp4, static global scale"},
            "lm_head": None,
        },
        "kv_cache": None,
        "calibration": {"datasets": ["ultrachat_200k"], "samples": 512},
        "ignore": ["lm_head", "re:.*embed_audio.*"],
    }
    a16_card = {**nvfp4_card, "scheme": "NVFP4A16 (weight-only)",
                "groups": {k: ({**v, "activations": None} if v else None) for k, v in nvfp4_card["groups"].items()}}
    variants = [
        {"name": "bf16", "location": "/ckpt/gemma4-unified-bf16", "is_reference": True, "backend": "hf",
         "fingerprint": "3f9a0c1d2e7b44aa9c10", "model_type": "gemma4_unified", "modalities": ["text", "image", "audio", "video"],
         "quant_card": None, "lints": [], "execution_path": {"weights": "bf16", "activations": "bf16", "kv_cache": "bf16"},
         "load_seconds": 1.2, "peak_rss_mb": 912, "error": None},
        {"name": "w4a16", "location": "/ckpt/gemma4-unified-nvfp4a16", "is_reference": False, "backend": "hf",
         "fingerprint": "7c21b0e9aa0f45d1b2c3", "model_type": "gemma4_unified", "modalities": ["text", "image", "audio", "video"],
         "quant_card": a16_card, "lints": [{"severity": "warning", "code": "tower-quantized",
                                            "message": "the vision projector is quantized: a known cause of dead modalities"}],
         "execution_path": {"weights": "dequantized (compressed-tensors)", "activations": "not quantized", "kv_cache": "bf16"},
         "load_seconds": 2.9, "peak_rss_mb": 1004, "error": None},
        {"name": "w4a4", "location": "/ckpt/gemma4-unified-nvfp4", "is_reference": False, "backend": "hf",
         "fingerprint": "d0e4f5a6b7c8d9e0f1a2", "model_type": "gemma4_unified", "modalities": ["text", "image", "audio", "video"],
         "quant_card": nvfp4_card,
         "lints": [{"severity": "error", "code": "act-quant-multimodal",
                    "message": "activation quantization on modules that consume image/audio embeddings, calibrated on text only (ultrachat_200k)"},
                   {"severity": "warning", "code": "tower-quantized", "message": "the vision projector is quantized"}],
         "execution_path": {"weights": "dequantized (compressed-tensors)", "activations": "emulated fp4 (fake-quant)", "kv_cache": "bf16"},
         "load_seconds": 3.4, "peak_rss_mb": 1010, "error": None},
        {"name": "mlp_missing", "location": "/ckpt/gemma4-unified-ignore-mismatch", "is_reference": False, "backend": "hf",
         "fingerprint": None, "model_type": "gemma4_unified", "modalities": [], "quant_card": None, "lints": [],
         "execution_path": None, "load_seconds": None, "peak_rss_mb": None,
         "error": "load reported MISSING keys: model.embed_vision.patch_dense.weight_packed -- fix: make the ignore list use runtime module names"},
    ]
    findings = [
        {"variant": "w4a4", "modality": None, "severity": "error", "code": "diagnosis", "message": diagnosis},
        {"variant": "w4a4", "modality": "image", "severity": "warning", "code": "activation-range",
         "message": "layers 0-1 clip 41% of image activations under the text-calibrated global input scale (text: 0.3%)"},
        {"variant": "w4a4", "modality": "image", "severity": "info", "code": "hostile-output",
         "message": "an output contained markup: " + HOSTILE_IMG},
    ]
    speed = [
        {"variant": r["variant"], "probe": r["probe"], "seconds": r["seconds"], "generated_tokens": r["generated_tokens"],
         "tokens_per_s": r["generated_tokens"] / r["seconds"],
         "execution_path": next(v["execution_path"] for v in variants if v["name"] == r["variant"]),
         "label": "eager transformers on CPU; not a deployment benchmark"}
        for r in results if r["probe"] in ("gsm8k", "speech_wer")
    ]
    return {
        "schema_version": 1,
        "omnicheck_version": "0.1.0",
        "created": "2026-11-23T14:05:09+00:00",
        "run": {
            "argv": ["pytest", "--model", "bf16=/ckpt/gemma4-unified-bf16", "--model", "w4a16=/ckpt/gemma4-unified-nvfp4a16",
                     "--model", "w4a4=/ckpt/gemma4-unified-nvfp4", "--model", "mlp_missing=/ckpt/gemma4-unified-ignore-mismatch",
                     "--reference", "bf16"],
            "tier": "smoke", "reference": "bf16", "probes": ["gsm8k", "image_caption", "speech_wer", "video_describe"],
            "settings": {"max_new_tokens": 64, "batch_size": 8, "do_sample": False},
            "thresholds": {"confidence": 0.95, "text": {"min_retention": 0.95}, "image": {"min_retention": 0.9},
                           "audio": {"max_wer_increase": 0.02}, "video": {"min_retention": 0.9},
                           "collapse": {"max_rate": 0.1}},
        },
        "environment": {"python": "3.11.7", "platform": "Linux-6.1-x86_64", "device": "cpu (2 cores)",
                        "packages": {"torch": "2.14.1", "transformers": "5.23.0", "compressed-tensors": "0.20.0",
                                     "lm-eval": "0.4.13", "jiwer": "4.0.0", "av": "18.1.0"}},
        "variants": variants,
        "results": results,
        "verdicts": verdicts,
        "matrix": matrix,
        "findings": findings,
        "speed": speed,
    }
