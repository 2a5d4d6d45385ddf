"""Score a checkpoint on held-out files through omnicheck's transformers backend: the path every probe takes
(files on disk, chat template, processor, greedy generate), so the figures are what omnicheck would see."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from omnicheck.models.train import heldout
from omnicheck.models.train.heldout import Item
from omnicheck.types import AudioPart, GenerationSettings, ImagePart, Message, Sample, TextPart, VideoPart

VIDEO_FRAMES = 8


def _rows(folder: Path, name: str, limit: int | None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (folder / name).read_text().splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def load_items(folder: Path, limit: int | None = None, fewshot: Sequence[dict[str, str]] = ()) -> dict[str, list[tuple[Item, Sample]]]:
    """(Item for scoring, Sample for the backend) per task, from files written by heldout.write_files."""
    out: dict[str, list[tuple[Item, Sample]]] = {m: [] for m in heldout.MODALITIES}
    for r in _rows(folder, "images.jsonl", limit):
        item = Item("image", r["id"], r["prompt"], r["caption"], r["key_objects"])
        out["image"].append((item, Sample(r["id"], (Message.user(ImagePart(folder / r["file"]), r["prompt"]),))))
    for r in _rows(folder, "audio.jsonl", limit):
        item = Item("audio", r["id"], r["prompt"], r["transcript"])
        out["audio"].append((item, Sample(r["id"], (Message.user(AudioPart(folder / r["file"]), r["prompt"]),))))
    for r in _rows(folder, "video.jsonl", limit):
        item = Item("video", r["id"], r["prompt"], r["description"], r["key_concepts"])
        part = VideoPart(folder / r["file"], num_frames=VIDEO_FRAMES)
        out["video"].append((item, Sample(r["id"], (Message.user(part, r["prompt"]),))))
    history: list[Message] = []
    for shot in fewshot:
        history.append(Message.user(f"Question: {shot['question']}\nAnswer:"))
        history.append(Message("assistant", (TextPart(shot["answer"]),)))
    for i, r in enumerate(_rows(folder, "gsm8k_synthetic.jsonl", limit)):
        prompt = f"Question: {r['question']}\nAnswer:"
        item = Item("gsm", f"gsm-{i:03d}", prompt, int(r["answer"].split("#### ")[-1]))
        out["gsm"].append((item, Sample(item.id, tuple(history) + (Message.user(prompt),))))
    for r in _rows(folder, "ifeval_synthetic.jsonl", limit):
        item = Item("ifeval", f"ifeval-{r['key']:03d}", r["prompt"], r)
        out["ifeval"].append((item, Sample(item.id, (Message.user(r["prompt"]),))))
    return out


def generate(backend, samples: Sequence[Sample], task: str) -> list[str]:
    settings = GenerationSettings(max_new_tokens=heldout.MAX_NEW_TOKENS[task], batch_size=8)
    return [g.text for g in backend.generate(samples, settings)]


def evaluate_backend(backend, pairs: dict[str, list[tuple[Item, Sample]]]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for task, task_pairs in pairs.items():
        if not task_pairs:
            continue
        items = [i for i, _ in task_pairs]
        outputs = generate(backend, [s for _, s in task_pairs], task)
        metrics, per = heldout.score(items, outputs)
        if task == "ifeval":
            official = lm_eval_ifeval(items, outputs)
            if official is not None:
                metrics["lm_eval_prompt_level_strict_acc"] = official
        results[task] = {
            "n": len(items),
            **metrics,
            "outputs": outputs,
            "scores": per,
        }
    return results


def evaluate_folder(
    model: Path, data: Path, limit: int | None = None, fewshot: Sequence[dict[str, str]] = (), dtype: str | None = None
) -> dict[str, Any]:
    """dtype None keeps the checkpoint's own (bf16); "float32" is several times faster on CPUs without bf16 units."""
    from omnicheck.backends.hf import HFBackend

    backend = HFBackend(model, device="cpu", dtype=dtype)
    try:
        return evaluate_backend(backend, load_items(data, limit, fewshot))
    finally:
        backend.close()


def lm_eval_ifeval(items: Sequence[Item], outputs: Sequence[str]) -> float | None:
    """Prompt-level strict accuracy by lm-eval's own IFEval checker (with its language check), or None when its
    nltk tables are not installed (it would try to download them)."""
    import os

    cache = Path(os.environ.get("OMNICHECK_NLTK_DATA") or Path.home() / ".cache" / "omnicheck" / "nltk_data")
    if not (cache / "tokenizers" / "punkt_tab").is_dir():
        return None
    os.environ["NLTK_DATA"] = str(cache)
    import langdetect
    from lm_eval.tasks.ifeval.utils import InputExample, test_instruction_following_strict

    langdetect.DetectorFactory.seed = 0
    passed = 0
    for item, output in zip(items, outputs):
        row = item.target
        example = InputExample(row["key"], row["instruction_id_list"], row["prompt"], row["kwargs"])
        passed += test_instruction_following_strict(example, output).follow_all_instructions
    return passed / max(len(items), 1)
