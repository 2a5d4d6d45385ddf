"""The transformers backend: any checkpoint folder, loaded once, asked through its processor's chat template.

Generic by construction: the Auto classes pick the model, the processor says which media it takes. Whisper-style
speech models (no chat template, audio in, transcript out) are handled as the one special family. Omni models that
also speak (Qwen2.5-Omni: a thinker writes, a talker speaks) are loaded whole and asked through their text writer.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from omnicheck.backends.base import Generation
from omnicheck.errors import FixtureError, ModelLoadError, UnsupportedModality
from omnicheck.tokens import Continuation, NotScored, TokenScores
from omnicheck.types import AudioPart, GenerationSettings, ImagePart, Message, Sample, TextPart, VideoPart
from omnicheck.variants import variant_label

SAMPLING_RATE = 16_000
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def read_config(path: Path) -> dict[str, Any]:
    """config.json of a checkpoint folder, or a ModelLoadError saying what the folder is instead."""
    if not path.exists():
        raise ModelLoadError(f"model path {str(path)!r} does not exist", "check the --model path")
    if not path.is_dir():
        raise ModelLoadError(
            f"model path {str(path)!r} is a file, not a checkpoint folder",
            "pass the folder that holds config.json and the weights",
        )
    config_file = path / "config.json"
    if not config_file.exists():
        raise ModelLoadError(
            f"{str(path)!r} is not a model folder (no config.json)",
            "pass a Hugging Face checkpoint folder (config.json + weights), e.g. one written by save_pretrained",
        )
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{config_file} is not valid JSON ({err})", "restore config.json from the original checkpoint")
    if not any(p.suffix in _WEIGHT_SUFFIXES for p in path.iterdir()):
        raise ModelLoadError(f"{str(path)!r} has a config.json but no weight files", "copy the *.safetensors files in too")
    return config


def check_safetensors(path: Path) -> None:
    """Catch truncated or corrupt weight files before transformers gives a long traceback."""
    import struct

    for file in sorted(path.glob("*.safetensors")):
        size = file.stat().st_size
        fix = f"re-download or re-export {file.name}"
        if size < 8:
            raise ModelLoadError(f"{file} is truncated ({size} bytes)", fix)
        with open(file, "rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            if header_len > size - 8:
                raise ModelLoadError(f"{file} is truncated or corrupt (header says {header_len} bytes)", fix)
            try:
                header = json.loads(handle.read(header_len))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ModelLoadError(f"{file} has a corrupt header", fix) from None
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + header_len + end > size:
            raise ModelLoadError(
                f"{file} is truncated: its tensors need {8 + header_len + end} bytes, the file has {size}", fix
            )


def _model_class(config: dict[str, Any]):
    import transformers

    model_type = config.get("model_type", "")
    if model_type == "whisper" or "speech_seq2seq" in model_type:
        return transformers.AutoModelForSpeechSeq2Seq
    has_media = any(k in config for k in ("vision_config", "audio_config", "thinker_config"))
    if has_media:
        for name in ("AutoModelForImageTextToText", "AutoModelForMultimodalLM", "AutoModelForCausalLM"):
            auto = getattr(transformers, name, None)
            mapping = getattr(auto, "_model_mapping", None)
            if auto is not None and mapping is not None and _maps(mapping, config):
                return auto
    return transformers.AutoModelForCausalLM


# Classes whose from_pretrained override only adds speech-output assets omnicheck never uses. Qwen2.5-Omni's
# requires spk_dict.pt (quantization tools do not write it) and breaks output_loading_info (transformers 5.24
# passes the (model, info) tuple to load_speakers), so these load through the base implementation.
_LOAD_WITHOUT_SPEECH_ASSETS = frozenset({"Qwen2_5OmniForConditionalGeneration"})


def _concrete_class(auto_class, config: dict[str, Any]):
    """The class an Auto class would instantiate for this checkpoint, or None if it cannot tell."""
    config_class = _config_class(config)
    if config_class is None or config_class not in auto_class._model_mapping:
        return None  # unknown architecture: the Auto class will say so itself
    return auto_class._model_mapping[config_class]


def _text_generator(model):
    """The module whose generate() writes text. A model that also outputs audio (Qwen2.5-Omni, Qwen3-Omni) writes
    through a text-only sub-model (its thinker); its own generate() would also run the talker."""
    from transformers import GenerationMixin

    if "audio" not in _modalities_attr(model, "output_modalities"):
        return model
    for child in model.children():
        if isinstance(child, GenerationMixin) and _modalities_attr(child, "output_modalities") == ("text",):
            return child
    return model


def _modalities_attr(model, name: str) -> tuple[str, ...]:
    value = getattr(model, name, None) or ("text",)
    return (value,) if isinstance(value, str) else tuple(value)


def _maps(mapping, config: dict[str, Any]) -> bool:
    config_class = _config_class(config)
    return config_class is not None and config_class in mapping


def _config_class(config: dict[str, Any]):
    """The transformers config class of a config.json's contents, or None for an architecture it does not know."""
    from transformers import AutoConfig

    try:
        return type(AutoConfig.for_model(**config))
    except Exception:
        return None


class HFBackend:
    """One loaded transformers model. Close it before loading the next variant."""

    def __init__(self, path: Path | str, name: str | None = None, device: str | None = None, dtype: str | None = None):
        import torch
        import transformers

        self.path = Path(path)
        self.name = name or self.path.name
        self.config_dict = read_config(self.path)
        check_safetensors(self.path)
        self.model_type = self.config_dict.get("model_type", "unknown")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        start = time.perf_counter()
        model_class = _model_class(self.config_dict)
        torch_dtype = getattr(torch, dtype) if dtype else "auto"
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        os.environ.setdefault("TQDM_DISABLE", "1")  # compressed-tensors' per-layer bars would flood CI logs
        from omnicheck.formats import read_card

        self.card = read_card(self.path)
        if self.card.format == "modelopt":
            # transformers refuses ModelOpt exports; omnicheck dequantizes and emulates them itself
            from omnicheck.formats.modelopt import load_modelopt_model

            self.model, self.load_info = load_modelopt_model(self.path, device=self.device, dtype=dtype, card=self.card)
        else:
            self.model = self._from_pretrained(model_class, torch_dtype)
            self.load_info = {}
        self.model.to(self.device).eval()
        self.generator = _text_generator(self.model)
        if self.generator is not self.model:
            self.generator.generation_config = self.model.generation_config  # the checkpoint's stop tokens
        self.processor, self.tokenizer = _load_processor(self.path)
        self.is_speech_seq2seq = model_class.__name__ == "AutoModelForSpeechSeq2Seq"
        self.modalities = frozenset(self._modalities())
        self.load_seconds = time.perf_counter() - start
        self._lm = None
        self.on_batch: Callable[[int, int], None] | None = None  # progress: (samples done, samples asked)

    def _from_pretrained(self, model_class, torch_dtype):
        from transformers import PreTrainedModel

        load = model_class.from_pretrained
        concrete = _concrete_class(model_class, self.config_dict)
        if concrete is not None and concrete.__name__ in _LOAD_WITHOUT_SPEECH_ASSETS:
            load = functools.partial(PreTrainedModel.from_pretrained.__func__, concrete)
        try:
            model, info = load(self.path, dtype=torch_dtype, output_loading_info=True, local_files_only=True)
        except OSError as err:
            raise ModelLoadError(f"transformers could not read {self.path}: {_first_line(err)}", "check the weight files") from None
        except (ValueError, RuntimeError, KeyError) as err:
            raise ModelLoadError(
                f"transformers refused {self.path} ({self.model_type}): {_first_line(err)}",
                "check that this transformers version supports the architecture and quantization format "
                "(run `omnicheck inspect PATH`)",
            ) from None
        _refuse_bad_load(self.path, info)
        return model

    # --- capability ---

    def _modalities(self) -> set[str]:
        if self.is_speech_seq2seq:
            return {"audio"}
        found = {"text"} if self.tokenizer is not None else set()
        proc = self.processor
        cfg = self.config_dict
        if proc is not None and getattr(proc, "image_processor", None) is not None and _has(cfg, "vision_config"):
            found.add("image")
        if proc is not None and getattr(proc, "feature_extractor", None) is not None and _has(cfg, "audio_config"):
            found.add("audio")
        if proc is not None and getattr(proc, "video_processor", None) is not None and _has(cfg, "vision_config"):
            found.add("video")
        return found

    def describe(self) -> dict[str, Any]:
        import torch

        params = sum(p.numel() for p in self.model.parameters())
        weights_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        device_name = torch.cuda.get_device_name(0) if self.device.startswith("cuda") else "cpu"
        return {
            "backend": "hf",
            "model_type": self.model_type,
            "model_class": type(self.model).__name__,
            "generates_with": type(self.generator).__name__,
            "dtype": str(next(self.model.parameters()).dtype).replace("torch.", ""),
            "device": device_name,
            "cpu_threads": torch.get_num_threads(),
            "parameters": params,
            "resident_bytes": weights_bytes,
            "modalities": sorted(self.modalities),
            "load_seconds": round(self.load_seconds, 3),
            "execution_path": self.card.execution_path(),
        }

    # --- generation ---

    def generate(self, samples: Sequence[Sample], settings: GenerationSettings) -> list[Generation]:
        out: list[Generation] = []
        for start in range(0, len(samples), max(1, settings.batch_size)):
            batch = samples[start : start + settings.batch_size]
            out.extend(self._generate_batch(batch, settings))
            if self.on_batch is not None:
                self.on_batch(len(out), len(samples))
        return out

    def _generate_batch(self, batch: Sequence[Sample], settings: GenerationSettings) -> list[Generation]:
        import torch

        for sample in batch:
            needed = {p.kind for m in sample.messages for p in m.media()} - set(self.modalities)
            if needed:
                raise UnsupportedModality(
                    f"{variant_label(self.name, self.model_type)} takes no {', '.join(sorted(needed))} input",
                    "this probe does not apply to this model",
                )
            if self.is_speech_seq2seq and not any(isinstance(p, AudioPart) for p in sample.messages[-1].media()):
                raise UnsupportedModality(
                    f"{variant_label(self.name, self.model_type)} transcribes audio; sample {sample.id} has none",
                    "this probe does not apply to this model",
                )
        inputs = self._inputs(batch)
        inputs = inputs.to(self.device)
        if self.is_speech_seq2seq:  # the feature extractor gives float32; an fp16 checkpoint's conv1 refuses it
            inputs["input_features"] = inputs["input_features"].to(self.model.dtype)
        kwargs: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens, "do_sample": settings.do_sample}
        if not self.is_speech_seq2seq:
            kwargs["pad_token_id"] = self.tokenizer.pad_token_id
        else:
            kwargs.update(self._speech_task())
            if inputs["input_features"].shape[-1] > self.processor.feature_extractor.nb_max_frames:
                kwargs["return_timestamps"] = True  # long-form needs them; refuses a config that says False
        with torch.inference_mode():
            sequences = self.generator.generate(**inputs, **kwargs)
        if not self.is_speech_seq2seq:
            sequences = sequences[:, inputs["input_ids"].shape[1] :]
        results = []
        for row in sequences:
            tokens = _count_generated(row, self._stop_ids())
            text = self.tokenizer.decode(row[:tokens], skip_special_tokens=True).strip()
            results.append(Generation(text=text, tokens=tokens))
        return results

    def _speech_task(self) -> dict[str, str]:
        """A multilingual Whisper whose generation config names no task (and no forced_decoder_ids) detects the
        language but then decodes without <|transcribe|>, and its transcripts degrade into repetition: ask for
        transcription. English-only Whisper has no task tokens and takes no task argument."""
        gen = self.model.generation_config
        if getattr(gen, "task_to_id", None) and getattr(gen, "task", None) is None and not gen.forced_decoder_ids:
            return {"task": "transcribe"}
        return {}

    def _stop_ids(self) -> set[int]:
        ids = set()
        gen = self.generator.generation_config
        for value in (gen.eos_token_id, gen.pad_token_id, self.tokenizer.pad_token_id, self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif value:
                ids.update(value)
        return ids

    def _inputs(self, batch: Sequence[Sample]):
        if self.is_speech_seq2seq:
            audio = [load_audio(p.path) for s in batch for p in s.messages[-1].media() if isinstance(p, AudioPart)]
            if max(len(a) for a in audio) > self.processor.feature_extractor.n_samples:
                # over 30 s: the default truncates to the first window; untruncated features make generate()
                # transcribe window by window (Whisper's long-form algorithm)
                return self.processor(audio, sampling_rate=SAMPLING_RATE, return_tensors="pt", truncation=False,
                                      padding="longest", return_attention_mask=True)
            return self.processor(audio, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        texts, images, audios, videos = [], [], [], []
        for sample in batch:
            sample_images = []
            # a tokenizer-only (text) model's chat template may take content only as a string (SmolLM2's does)
            conversation = [_to_hf_message(m, as_string=self.processor is None) for m in sample.messages]
            template_owner = self.processor if self.processor is not None else self.tokenizer
            texts.append(template_owner.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True))
            for message in sample.messages:
                for part in message.media():
                    if isinstance(part, ImagePart):
                        sample_images.append(load_image(part.path))
                    elif isinstance(part, AudioPart):
                        audios.append(load_audio(part.path))
                    elif isinstance(part, VideoPart):
                        videos.append(load_video(part.path, part.num_frames))
            if sample_images:
                images.append(sample_images)
        if self.processor is None:
            return self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        if images:
            kwargs["images"] = images
        if audios:
            kwargs["audio"] = audios
        if videos:
            kwargs["videos"] = [v for v, _ in videos]
            kwargs["video_metadata"] = [m for _, m in videos]
            kwargs["do_sample_frames"] = False
        return self.processor(**kwargs)

    # --- teacher forcing ---

    def score_continuations(self, continuations: Sequence[Continuation], top_k: int = 20,
                            batch_size: int = 8) -> list[TokenScores | NotScored]:
        """Per continuation, this model's next-token distributions along the given answer (one forward pass)."""
        from omnicheck.backends.hf_scoring import score_continuations

        return score_continuations(self, continuations, top_k, batch_size)

    # --- lm-eval ---

    def lm_eval_model(self, batch_size: int = 8):
        if self._lm is None:
            if "text" not in self.modalities:
                raise UnsupportedModality(f"{variant_label(self.name, self.model_type)} has no text generation", "skip text probes")
            from lm_eval.models.huggingface import HFLM

            self._lm = HFLM(pretrained=self.generator, tokenizer=self.tokenizer, batch_size=batch_size, device=self.device)
        return self._lm

    def close(self) -> None:
        import torch

        self._lm = None
        self.model = self.generator = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _has(config: dict[str, Any], key: str) -> bool:
    if config.get(key):
        return True
    thinker = config.get("thinker_config") or {}
    return bool(thinker.get(key))


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def _refuse_bad_load(path: Path, info: dict[str, Any]) -> None:
    """A load with missing or unexpected keys runs on random weights: never let it through silently."""
    missing = [k for k in info.get("missing_keys", []) if not k.endswith(("inv_freq", "position_ids"))]
    unexpected = list(info.get("unexpected_keys", []))
    mismatched = [str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", [])]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({', '.join(sorted(missing)[:4])}{', ...' if len(missing) > 4 else ''})")
    if unexpected:
        problems.append(
            f"{len(unexpected)} unexpected ({', '.join(sorted(unexpected)[:4])}{', ...' if len(unexpected) > 4 else ''})"
        )
    if mismatched:
        problems.append(f"{len(mismatched)} with mismatched shapes ({', '.join(mismatched[:4])})")
    if problems:
        raise ModelLoadError(
            f"loading {path} left weights uninitialized or unused: {'; '.join(problems)}",
            "those modules would run with random weights; check the quantization ignore list against the model's "
            "module names (`omnicheck inspect PATH`) and re-export",
        )


def _load_processor(path: Path):
    from transformers import AutoProcessor, AutoTokenizer

    processor = None
    has_processor = any((path / f).exists() for f in ("processor_config.json", "preprocessor_config.json"))
    if has_processor:
        try:
            processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, TypeError, KeyError, ImportError) as err:
            raise ModelLoadError(
                f"the processor in {path} could not be loaded: {_first_line(err)}",
                "save the processor with the checkpoint (processor.save_pretrained(PATH))",
            ) from None
    tokenizer = getattr(processor, "tokenizer", None) if processor is not None else None
    if tokenizer is None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise ModelLoadError(
                f"no tokenizer in {path}: {_first_line(err)}",
                "save the tokenizer with the checkpoint (tokenizer.save_pretrained(PATH))",
            ) from None
        if processor is None:
            tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return processor, tokenizer


def _to_hf_message(message: Message, as_string: bool = False) -> dict[str, Any]:
    if as_string and not message.media():
        return {"role": message.role, "content": message.text}
    content = []
    for part in message.parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        else:
            content.append({"type": part.kind})
    return {"role": message.role, "content": content}


def _count_generated(row, stop_ids: set[int]) -> int:
    for i, token in enumerate(row.tolist()):
        if token in stop_ids:
            return i
    return len(row)


# --- media loading: one clear line when a file is missing or corrupt ---


def load_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError) as err:
        raise FixtureError(f"image {path} cannot be read ({_first_line(err)})", "restore or replace the file") from None


def load_audio(path: Path):
    import warnings

    import librosa
    import soundfile

    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        if rate != SAMPLING_RATE:
            audio = librosa.resample(audio, orig_sr=rate, target_sr=SAMPLING_RATE)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError):
        try:  # formats libsndfile cannot read (mp3, m4a) go through librosa's fallback decoder
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                audio, _ = librosa.load(str(path), sr=SAMPLING_RATE, mono=True)
        except Exception as err:  # the fallback raises several unrelated types for unreadable files
            raise FixtureError(f"audio {path} cannot be decoded ({_first_line(err)})", "restore or replace the file") from None
    if audio.size == 0:
        raise FixtureError(f"audio {path} is empty", "restore or replace the file")
    return audio


def load_video(path: Path, num_frames: int):
    from transformers.video_utils import load_video as hf_load_video

    try:
        return hf_load_video(str(path), num_frames=num_frames, backend="pyav")
    except Exception as err:  # av raises its own error family for broken containers
        raise FixtureError(f"video {path} cannot be decoded ({_first_line(err)})", "restore or replace the file") from None
