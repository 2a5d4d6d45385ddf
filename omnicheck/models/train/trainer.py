"""Train a small gemma4_unified from scratch on generated images, speech, video and text, then score it on held-out
data and save it as a checkpoint folder that AutoModelForImageTextToText + AutoProcessor load offline.

Every optimizer step sees one batch of each task (image captions, transcripts, video descriptions, GSM8K-style
arithmetic, IFEval-style instructions); the loss counts only the answer tokens.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from omnicheck.models.train import heldout, scenes, speech, text_tasks
from omnicheck.models.train.encode import PAD_LABEL, Encoder, Example, to_model_inputs, train_tokenizer

TASKS = ("image", "audio", "video", "gsm", "ifeval")


@dataclass
class TrainConfig:
    seed: int = 0
    vocab_size: int = 1024
    hidden: int = 256
    layers: int = 8
    intermediate: int = 768
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 64
    vision_dim: int = 128
    batch: dict[str, int] = field(default_factory=lambda: {"image": 80, "audio": 128, "video": 16, "gsm": 64, "ifeval": 32})
    weights: dict[str, float] = field(default_factory=lambda: {"image": 1.0, "audio": 2.0, "video": 1.0, "gsm": 1.0, "ifeval": 0.5})
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    warmup: int = 150
    steps: int = 0  # 0: as many as fit in train_seconds (the count reached is recorded; pass it back to repeat a run)
    train_seconds: float = 420.0
    audio_pool: int = 8_000
    workers: int = 14
    heldout: int = 64
    log_every: int = 25
    processes: int = 16  # espeak-ng synthesis

    @classmethod
    def debug(cls) -> "TrainConfig":
        """A few steps of a tiny model on a CPU: checks the pipeline end to end, learns nothing."""
        return cls(
            vocab_size=600, hidden=64, layers=2, intermediate=128, heads=2, kv_heads=1, head_dim=32, vision_dim=32,
            batch={"image": 2, "audio": 2, "video": 1, "gsm": 2, "ifeval": 2}, warmup=2, steps=4, train_seconds=120,
            audio_pool=24, workers=1, heldout=2, log_every=1, processes=2,
        )


# --- tokenizer and model ---


def tokenizer_corpus(seed: int, fewshot: Sequence[dict[str, str]]) -> list[str]:
    rng = random.Random(seed + 7)
    corpus: list[str] = []
    for _ in range(3000):
        corpus.append(scenes.random_scene(rng).caption)
        corpus.append(scenes.random_clip(rng, 4).description)
        corpus.append(speech.random_utterance(rng))
        p = text_tasks.random_problem(rng)
        corpus += [text_tasks.gsm_prompt(p.question), p.answer]
        i = text_tasks.random_instructed(rng)
        corpus += [i.prompt, i.response]
    for shot in fewshot:
        corpus += [text_tasks.gsm_prompt(shot["question"]), shot["answer"]] * 20
    prompts = [scenes.IMAGE_PROMPT, scenes.VIDEO_PROMPT, speech.AUDIO_PROMPT, "user", "model"]
    prompts += list(scenes.IMAGE_PROMPT_VARIANTS + scenes.VIDEO_PROMPT_VARIANTS + speech.AUDIO_PROMPT_VARIANTS)
    return corpus + prompts * 50


def model_config(tokenizer, cfg: TrainConfig):
    from omnicheck.models.tiny import gemma4_unified_config

    layer_types = ["full_attention" if (i + 1) % 4 == 0 else "sliding_attention" for i in range(cfg.layers)]
    layer_types[-1] = "full_attention"
    config = gemma4_unified_config(
        tokenizer, hidden=cfg.hidden, layers=cfg.layers, intermediate=cfg.intermediate, heads=cfg.heads,
        kv_heads=cfg.kv_heads, head_dim=cfg.head_dim, vision_dim=cfg.vision_dim, posemb=72, sliding_window=1024,
        layer_types=layer_types,
    )
    config._attn_implementation = "sdpa"
    return config


# --- the training stream ---


@dataclass
class AudioPool:
    texts: list[str]
    samples: np.ndarray  # all clips, int16, end to end
    offsets: np.ndarray  # clip i is samples[offsets[i]:offsets[i + 1]]

    def clip(self, i: int) -> np.ndarray:
        return self.samples[self.offsets[i] : self.offsets[i + 1]]


def build_audio_pool(size: int, seed: int, excluded: set[str], processes: int) -> AudioPool:
    rng = random.Random(seed + 11)
    jobs = []
    while len(jobs) < size:
        text = speech.random_utterance(rng)
        if text not in excluded:
            jobs.append((text, speech.random_voice(rng)))
    clips = speech.synthesize_many(jobs, processes)
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in clips])]).astype(np.int64)
    return AudioPool([t for t, _ in jobs], np.concatenate(clips), offsets)


def _user(media: str | None, text: str, rng: random.Random) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if media:
        parts = [{"type": media}] + parts if rng.random() < 0.7 else parts + [{"type": media}]
    return [{"role": "user", "content": parts}]


def _prompt(rng: random.Random, main: str, variants: Sequence[str]) -> str:
    return main if rng.random() < 0.8 else rng.choice(variants)


class ExampleMaker:
    """One training example of a task, drawn from the worker's own random streams."""

    def __init__(self, encoder: Encoder, pool: AudioPool, fewshot: Sequence[dict[str, str]], excluded: set[str]):
        self.encoder, self.pool, self.excluded = encoder, pool, excluded
        self.fewshot_history = heldout.fewshot_history(fewshot) if fewshot else []

    def make(self, task: str, rng: random.Random, nrng: np.random.Generator, eight_shot: bool = False) -> Example:
        enc = self.encoder
        if task == "image":
            scene = scenes.random_scene(rng)
            prompt = _prompt(rng, scenes.IMAGE_PROMPT, scenes.IMAGE_PROMPT_VARIANTS)
            return enc.example(task, _user("image", prompt, rng), scene.caption, images=[scenes.draw(scene.shapes, scene.background)])
        if task == "video":
            frames = 8 if rng.random() < 0.75 else 4
            clip = scenes.random_clip(rng, frames)
            prompt = _prompt(rng, scenes.VIDEO_PROMPT, scenes.VIDEO_PROMPT_VARIANTS)
            fps = scenes.VIDEO_FPS * frames / 8  # every clip lasts two seconds
            return enc.example(task, _user("video", prompt, rng), clip.description, videos=[(clip.render(), fps)])
        if task == "audio":
            i = rng.randrange(len(self.pool.texts))
            prompt = _prompt(rng, speech.AUDIO_PROMPT, speech.AUDIO_PROMPT_VARIANTS)
            waveform = speech.augment(self.pool.clip(i), nrng)
            return enc.example(task, _user("audio", prompt, rng), self.pool.texts[i], audio=[waveform])
        if task == "gsm":
            problem = self._fresh(rng, lambda: text_tasks.random_problem(rng), lambda p: text_tasks.gsm_prompt(p.question))
            history: list[dict[str, Any]] = []
            if eight_shot and self.fewshot_history:
                history = list(self.fewshot_history)
            elif rng.random() < 0.35:
                for _ in range(rng.randint(1, 3)):
                    shot = text_tasks.random_problem(rng)
                    history += [
                        {"role": "user", "content": text_tasks.gsm_prompt(shot.question)},
                        {"role": "assistant", "content": shot.answer},
                    ]
            messages = history + [{"role": "user", "content": text_tasks.gsm_prompt(problem.question)}]
            return enc.example(task, messages, problem.answer)
        if task == "ifeval":
            item = self._fresh(rng, lambda: text_tasks.random_instructed(rng), lambda i: i.prompt)
            return enc.example(task, [{"role": "user", "content": item.prompt}], item.response)
        raise ValueError(task)

    def _fresh(self, rng: random.Random, draw, key):
        while True:
            item = draw()
            if key(item) not in self.excluded:
                return item


def _stream_class():
    import torch

    class StepStream(torch.utils.data.IterableDataset):
        """Endless step bundles {task: collated batch}; each worker has its own seeded random streams."""

        def __init__(self, maker: ExampleMaker, cfg: TrainConfig):
            self.maker, self.cfg = maker, cfg

        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            worker = info.id if info else 0
            rng = random.Random(self.cfg.seed * 1009 + worker)
            nrng = np.random.default_rng(self.cfg.seed * 1009 + worker)
            while True:
                # Two forward passes a step (each pass costs mostly fixed overhead at this size): short sequences
                # together, long ones (video, 8-shot GSM8K) together, so little of either is padding.
                eight_shot = rng.random() < 0.35
                groups: dict[str, list[Example]] = {"short": [], "long": []}
                for task in TASKS:
                    long = task == "video" or (task == "gsm" and eight_shot)
                    groups["long" if long else "short"] += [
                        self.maker.make(task, rng, nrng, eight_shot) for _ in range(self.cfg.batch[task])
                    ]
                bundle = {}
                for name, examples in groups.items():
                    batch = self.maker.encoder.collate(examples)
                    batch["task_ids"] = np.array([TASKS.index(e.task) for e in examples], dtype=np.int64)
                    bundle[name] = batch
                yield bundle

    return StepStream


# --- training ---


def lr_at(step: int, fraction: float, cfg: TrainConfig) -> float:
    """Linear warm-up over the first steps, then a cosine over the run's fraction done (of its steps, or of its
    time budget when the step count is left open: step time varies, the budget does not)."""
    warm = min(1.0, (step + 1) / cfg.warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, fraction)))
    return cfg.lr * warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def _augment_pixels(pixels, generator):
    """Faint noise and a per-image colour shift, so video codecs' small colour errors look familiar."""
    import torch

    shape = pixels.shape
    shift = (torch.rand(shape[0], 1, 1, 3, device=pixels.device, generator=generator) - 0.5) * 0.06
    noise = torch.randn(shape, device=pixels.device, generator=generator) * 0.012
    view = pixels.view(shape[0], shape[1], -1, 3) + shift
    return (view.view(shape) + noise).clamp_(0, 1)


def task_losses(logits, labels, task_ids):
    """Mean answer-token loss per task present in a mixed batch: {task index: loss tensor}."""
    import torch.nn.functional as F

    targets = labels[:, 1:]
    per_token = F.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), targets, ignore_index=PAD_LABEL, reduction="none"
    )
    mask = (targets != PAD_LABEL).float()
    row_sum, row_count = (per_token * mask).sum(1), mask.sum(1)
    out = {}
    for t in task_ids.unique().tolist():
        rows = task_ids == t
        out[t] = row_sum[rows].sum() / row_count[rows].sum().clamp(min=1)
    return out


def init_audio_projection(model, hidden: int, scale: float = 0.15) -> None:
    """Start the audio projection (640 raw samples -> hidden) as a Hann-windowed Fourier basis at mel-spaced
    frequencies, cosine and sine rows in pairs: the first MLP can then read band energies at once instead of
    discovering a filterbank from scratch. Training moves it freely from there."""
    import torch

    frame = 640
    n = torch.arange(frame, dtype=torch.float64)
    window = torch.hann_window(frame, periodic=False, dtype=torch.float64)
    bands = hidden // 2
    mel = torch.linspace(2595 * math.log10(1 + 60 / 700), 2595 * math.log10(1 + 7600 / 700), bands, dtype=torch.float64)
    freqs = 700 * (10 ** (mel / 2595) - 1)
    rows = []
    for f in freqs.tolist():
        for wave in (torch.cos, torch.sin):
            row = window * wave(2 * math.pi * f * n / 16_000)
            rows.append(row / row.norm())
    weight = torch.stack(rows[:hidden]) * scale
    projection = model.model.embed_audio.embedding_projection
    with torch.no_grad():
        projection.weight.copy_(weight.to(projection.weight.dtype))


def train(cfg: TrainConfig, out_dir: Path, fewshot: Sequence[dict[str, str]], device: str, log=print) -> dict[str, Any]:
    import torch
    from transformers import Gemma4UnifiedForConditionalGeneration

    from omnicheck.models.tiny import build_processor

    started = time.time()
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    tokenizer = train_tokenizer(tokenizer_corpus(cfg.seed, fewshot), cfg.vocab_size)
    processor = build_processor(tokenizer, video_frames=8)
    encoder = Encoder(tokenizer)
    config = model_config(tokenizer, cfg)
    model = Gemma4UnifiedForConditionalGeneration(config)
    init_audio_projection(model, cfg.hidden)
    model = model.to(device)
    params = sum(p.numel() for p in model.parameters())
    log(f"model: {params / 1e6:.2f}M parameters, vocab {len(tokenizer)}")

    t0 = time.time()
    items = heldout.make_heldout(cfg.heldout, fewshot)
    excluded = heldout.excluded_texts(items)
    pool = build_audio_pool(cfg.audio_pool, cfg.seed, excluded, cfg.processes)
    data_seconds = time.time() - t0
    log(f"held-out set and {len(pool.texts)} utterances ({len(pool.samples) / 16000 / 3600:.2f} h) in {data_seconds:.0f} s")

    maker = ExampleMaker(encoder, pool, fewshot, excluded)
    stream = _stream_class()(maker, cfg)
    loader = torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=cfg.workers, pin_memory=device.startswith("cuda"),
        prefetch_factor=2 if cfg.workers else None, persistent_workers=cfg.workers > 0,
        worker_init_fn=lambda _: torch.set_num_threads(1),
    )
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed_tokens" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed_tokens" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95), fused=device.startswith("cuda"),
    )
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    autocast = torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)

    curve: list[dict[str, Any]] = []
    window: dict[str, list[float]] = {t: [] for t in TASKS}
    wait = 0.0
    train_start = time.time()
    fetched = time.time()
    model.train()
    torch.backends.cuda.matmul.allow_tf32 = True
    step, failure, fraction = 0, None, 0.0
    try:
        for step, bundle in enumerate(loader):
            wait += time.time() - fetched
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, fraction, cfg)
            for batch in bundle.values():
                labels = batch["labels"].to(device, non_blocking=True)
                task_ids = batch["task_ids"].to(device, non_blocking=True)
                inputs = to_model_inputs(batch, device)
                for key in ("pixel_values", "pixel_values_videos"):
                    if key in inputs:
                        inputs[key] = _augment_pixels(inputs[key], generator)
                with autocast:
                    logits = model(**inputs, use_cache=False).logits
                losses = task_losses(logits, labels, task_ids)
                sum(loss * cfg.weights[TASKS[t]] for t, loss in losses.items()).backward()
                for t, loss in losses.items():
                    window[TASKS[t]].append(loss.detach())
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            elapsed = time.time() - train_start
            if cfg.steps:  # the cosine starts after warm-up
                fraction = max(0, step + 1 - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
                done = step + 1 >= cfg.steps
            else:
                fraction = elapsed / cfg.train_seconds
                done = fraction >= 1.0
            if (step + 1) % cfg.log_every == 0 or done:
                point = {"step": step + 1, "seconds": round(elapsed, 1), "lr": round(lr_at(step, fraction, cfg), 6)}
                point.update({t: round(torch.stack(v).mean().item(), 4) for t, v in window.items() if v})
                curve.append(point)
                window = {t: [] for t in TASKS}
                log(json.dumps(point))
            if done:
                break
            fetched = time.time()
    except Exception as err:  # save what was learned so far rather than nothing
        import traceback

        failure = f"step {step}: {type(err).__name__}: {err}"
        log(traceback.format_exc())
    train_seconds = time.time() - train_start
    steps_done = step + 1
    del loader

    model = model.to(torch.bfloat16).eval()
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, max_shard_size="15MB")
    processor.save_pretrained(out_dir)
    eval_start = time.time()
    try:
        scores = heldout.evaluate(lambda batch: heldout.generate_with_processor(model, processor, batch), items)
    except Exception as err:  # keep the trained weights even if scoring breaks
        scores = {"error": f"{type(err).__name__}: {err}"}
    eval_seconds = time.time() - eval_start
    log(json.dumps({t: {k: v for k, v in s.items() if k != "examples"} if isinstance(s, dict) else s for t, s in scores.items()}))
    record = {
        "config": asdict(cfg),
        "parameters": params,
        "steps": steps_done,
        "seconds": {
            "data": round(data_seconds, 1), "train": round(train_seconds, 1), "data_wait": round(wait, 1),
            "eval": round(eval_seconds, 1), "total": round(time.time() - started, 1),
        },
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        "failure": failure,
        "loss_curve": curve,
        "heldout": scores,
        "heldout_seed": heldout.HELDOUT_SEED,
    }
    (out_dir / "omnicheck_training.json").write_text(json.dumps(record, indent=1))
    return record
