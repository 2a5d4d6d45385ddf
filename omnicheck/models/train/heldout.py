"""Held-out evaluation data: drawn from its own seed, never seen in training (texts are excluded from the training
stream by value), scored the way issue 8's targets are stated. Also written to files for omnicheck's probes."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from omnicheck.models.train import scenes, scoring, speech, text_tasks

MODALITIES = ("image", "audio", "video", "gsm", "ifeval")
HELDOUT_SEED = 20_261_123
MAX_NEW_TOKENS = {"image": 32, "audio": 32, "video": 24, "gsm": 64, "ifeval": 96}


@dataclass
class Item:
    task: str
    id: str
    prompt: str  # the user's text
    target: Any  # caption, transcript, description, number, or the IFEval row
    keys: list[str] = field(default_factory=list)  # key objects / concepts
    image: np.ndarray | None = None
    audio: np.ndarray | None = None  # int16, 16 kHz
    video: np.ndarray | None = None  # (frames, 384, 384, 3) uint8
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier turns (GSM8K few-shot)

    def messages(self) -> list[dict[str, Any]]:
        media = [{"type": self.task}] if self.task in ("image", "audio", "video") else []
        content = media + [{"type": "text", "text": self.prompt}]
        return self.history + [{"role": "user", "content": content}]


def fewshot_history(fewshot: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
    """lm-eval's gsm8k few-shot as multi-turn chat (fewshot_as_multiturn): question turns and answer turns."""
    history: list[dict[str, Any]] = []
    for shot in fewshot:
        history.append({"role": "user", "content": text_tasks.gsm_prompt(shot["question"])})
        history.append({"role": "assistant", "content": shot["answer"]})
    return history


def make_heldout(n: int, fewshot: Sequence[dict[str, str]] = (), seed: int = HELDOUT_SEED, with_audio: bool = True) -> dict[str, list[Item]]:
    rng = random.Random(seed)
    items: dict[str, list[Item]] = {m: [] for m in MODALITIES}
    for i in range(n):
        scene = scenes.random_scene(rng)
        scene.background = (255, 255, 255)
        items["image"].append(
            Item("image", f"image-{i:03d}", scenes.IMAGE_PROMPT, scene.caption, scene.key_objects, image=scenes.draw(scene.shapes))
        )
        clip = scenes.random_clip(rng)
        clip.background = (255, 255, 255)
        items["video"].append(Item("video", f"video-{i:03d}", scenes.VIDEO_PROMPT, clip.description, clip.concepts, video=clip.render()))
        problem = text_tasks.random_problem(rng)
        items["gsm"].append(
            Item("gsm", f"gsm-{i:03d}", text_tasks.gsm_prompt(problem.question), problem.value, history=fewshot_history(fewshot))
        )
        instructed = text_tasks.random_instructed(rng)
        items["ifeval"].append(Item("ifeval", f"ifeval-{i:03d}", instructed.prompt, instructed.ifeval_row(i)))
        text = speech.random_utterance(rng)
        items["audio"].append(Item("audio", f"audio-{i:03d}", speech.AUDIO_PROMPT, text, keys=[_voice_key(speech.random_voice(rng))]))
    if with_audio:
        jobs = [(it.target, _voice_from_key(it.keys[0])) for it in items["audio"]]
        lead = np.zeros(1600, dtype=np.int16)  # 100 ms of silence before speech, as recordings have
        for it, samples in zip(items["audio"], speech.synthesize_many(jobs, processes=8)):
            it.audio = np.concatenate([lead, samples, lead])
    return items


def _voice_key(v: speech.Voice) -> str:
    return f"{v.name}|{v.speed}|{v.pitch}"


def _voice_from_key(key: str) -> speech.Voice:
    name, speed, pitch = key.split("|")
    return speech.Voice(name, int(speed), int(pitch))


def excluded_texts(items: dict[str, list[Item]]) -> set[str]:
    """Texts the training stream must never produce."""
    out = {it.target for it in items["audio"]}
    out |= {it.prompt for it in items["gsm"]} | {it.prompt for it in items["ifeval"]}
    return out


def score(items: Sequence[Item], outputs: Sequence[str]) -> tuple[dict[str, float], list[float]]:
    """(aggregate metrics, per-item primary score) for one task."""
    if not items:
        return {}, []
    task = items[0].task
    if task == "audio":
        per = [scoring.word_errors(it.target, o) for it, o in zip(items, outputs)]
        wer = sum(e for e, _ in per) / max(sum(n for _, n in per), 1)
        return {"wer": wer}, [e / max(n, 1) for e, n in per]
    if task == "image":
        per = [scoring.key_object_recall(o, it.keys) for it, o in zip(items, outputs)]
        return {"key_object_recall": float(np.mean(per))}, per
    if task == "video":
        per = [scoring.concept_recall(o, it.keys) for it, o in zip(items, outputs)]
        return {"key_concept_recall": float(np.mean(per))}, per
    if task == "gsm":
        per = [scoring.gsm_correct(o, it.target) for it, o in zip(items, outputs)]
        return {"accuracy": float(np.mean(per))}, per
    if task == "ifeval":
        per = [scoring.ifeval_strict(o, it.target["instruction_id_list"], it.target["kwargs"]) for it, o in zip(items, outputs)]
        return {"prompt_level_strict_acc": float(np.mean(per))}, per
    raise ValueError(task)


def generate_with_processor(model, processor, items: Sequence[Item], batch_size: int = 16) -> list[str]:
    """Greedy answers through the real processor, as omnicheck's transformers backend asks (in-memory media)."""
    import torch
    from PIL import Image
    from transformers.video_utils import VideoMetadata

    outputs: list[str] = []
    device = next(model.parameters()).device
    tokenizer = processor.tokenizer
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        texts = [processor.apply_chat_template(it.messages(), tokenize=False, add_generation_prompt=True) for it in batch]
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        task = batch[0].task
        if task == "image":
            kwargs["images"] = [[Image.fromarray(it.image)] for it in batch]
        elif task == "audio":
            kwargs["audio"] = [it.audio.astype(np.float32) / 32768.0 for it in batch]
        elif task == "video":
            kwargs["videos"] = [it.video for it in batch]
            kwargs["video_metadata"] = [
                VideoMetadata(
                    total_num_frames=len(it.video), fps=scenes.VIDEO_FPS, width=384, height=384,
                    duration=len(it.video) / scenes.VIDEO_FPS, video_backend="pyav", frames_indices=list(range(len(it.video))),
                )
                for it in batch
            ]
            kwargs["do_sample_frames"] = False
        inputs = processor(**kwargs).to(device)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS[task], do_sample=False, pad_token_id=tokenizer.pad_token_id)
        for row in out[:, inputs["input_ids"].shape[1] :]:
            outputs.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    return outputs


def evaluate(generate: Callable[[Sequence[Item]], list[str]], items: dict[str, list[Item]]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for task, task_items in items.items():
        if not task_items:
            continue
        outputs = generate(task_items)
        metrics, per = score(task_items, outputs)
        results[task] = {
            "n": len(task_items),
            **metrics,
            "examples": [
                {"id": it.id, "target": it.target if task != "ifeval" else it.prompt, "output": o, "score": s}
                for it, o, s in list(zip(task_items, outputs, per))[:6]
            ],
        }
    return results


# --- files for omnicheck's probes and the tests ---


def write_files(items: dict[str, list[Item]], folder: Path) -> Path:
    """PNG images, 16-bit WAV audio, H.264 MP4 video (4 fps); targets both in this module's JSONLs and in the
    schemas omnicheck's probes read with --omnicheck-data: captions.jsonl (image_caption), descriptions.jsonl
    (video_describe), speech/ in LibriSpeech's layout (speech_wer), gsm8k_synthetic.jsonl (gsm8k: question,
    answer), ifeval_synthetic.jsonl (IFEval's input_data schema)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in MODALITIES}
    captions, descriptions = [], []
    for it in items["image"]:
        Image.fromarray(it.image).save(folder / f"{it.id}.png", optimize=True)
        rows["image"].append({"id": it.id, "file": f"{it.id}.png", "prompt": it.prompt, "caption": it.target, "key_objects": it.keys})
        captions.append({"id": it.id, "file": f"{it.id}.png", "references": [it.target], "key_objects": [[k] for k in it.keys]})
    transcripts: dict[Path, list[str]] = {}
    for number, it in enumerate(items["audio"]):
        speaker = 9000 + speech.VOICES.index(it.keys[0].split("|")[0])  # one LibriSpeech "speaker" per voice
        utt = f"{speaker}-1-{number:04d}"
        chapter = folder / "speech" / str(speaker) / "1"
        chapter.mkdir(parents=True, exist_ok=True)
        speech.write_wav(chapter / f"{utt}.wav", it.audio)
        transcripts.setdefault(chapter / f"{speaker}-1.trans.txt", []).append(f"{utt} {it.target.upper()}")
        file = f"speech/{speaker}/1/{utt}.wav"
        rows["audio"].append({"id": it.id, "file": file, "prompt": it.prompt, "transcript": it.target, "voice": it.keys[0]})
    for path, lines in transcripts.items():
        path.write_text("".join(line + "\n" for line in lines))
    for it in items["video"]:
        write_mp4(folder / f"{it.id}.mp4", it.video, scenes.VIDEO_FPS)
        rows["video"].append(
            {"id": it.id, "file": f"{it.id}.mp4", "prompt": it.prompt, "description": it.target, "key_concepts": it.keys}
        )
        descriptions.append({"id": it.id, "file": f"{it.id}.mp4", "references": [it.target], "key_concepts": [[k] for k in it.keys]})
    for it in items["gsm"]:
        question = it.prompt.removeprefix("Question: ").removesuffix("\nAnswer:")
        rows["gsm"].append({"question": question, "answer": f"#### {it.target}"})
    for it in items["ifeval"]:
        rows["ifeval"].append(it.target)
    names = {"image": "images.jsonl", "audio": "audio.jsonl", "video": "video.jsonl", "gsm": "gsm8k_synthetic.jsonl",
             "ifeval": "ifeval_synthetic.jsonl"}
    for task, name in names.items():
        _write_jsonl(folder / name, rows[task])
    _write_jsonl(folder / "captions.jsonl", captions)
    _write_jsonl(folder / "descriptions.jsonl", descriptions)
    write_manifest(folder, len(items["image"]))
    return folder


def write_manifest(folder: Path, n: int) -> None:
    from omnicheck.digest import sha256_file

    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")
    manifest = {
        "what": "held-out evaluation data for fixtures/omni-small, generated by this project (no dataset taken)",
        "command": f"python scripts/train_omni.py heldout --out {folder.name} --n {n}",
        "seed": HELDOUT_SEED,
        "tools": {
            "speech": "espeak-ng (Debian 1.51+dfsg-10+deb12u2), 22.05 kHz resampled to 16 kHz, 16-bit WAV",
            "video": "libx264 through av, crf 12, yuv420p, 4 fps, 8 frames, 384x384",
            "images": "PIL, 384x384 PNG",
        },
        "license": "Apache-2.0 (generated by omnicheck)",
        "sha256": {str(p.relative_to(folder)): sha256_file(p) for p in files},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
