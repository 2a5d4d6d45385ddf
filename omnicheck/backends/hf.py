"""The transformers backend: any checkpoint folder, loaded once, asked through its processor's chat template.

Generic by construction: the Auto classes pick the model, the processor says which media it takes. Whisper-style
speech models (no chat template, audio in, transcript out) are handled as the one special family. Omni models that
also speak (Qwen2.5-Omni: a thinker writes, a talker speaks) are loaded whole and asked through their text writer.
"""

from __future__ import annotations

import functools
import gc
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from omnicheck.backends import decoding
from omnicheck.backends.base import Generation, Progress
from omnicheck.checkpoint import (
    LOAD_WITHOUT_SPEECH_ASSETS,
    check_safetensors,
    concrete_class,
    load_processor,
    model_class,
    read_config,
    text_generator,
)
from omnicheck.engines import in_process_engine
from omnicheck.errors import ModelLoadError, OmnicheckError, UnsupportedModality, first_line
from omnicheck.messages import SAMPLING_RATE, load_audio, media_inputs, to_hf
from omnicheck.tokens import Continuation, NotScored, TokenScores
from omnicheck.types import AudioPart, GenerationSettings, Sample
from omnicheck.variants import variant_label

if TYPE_CHECKING:
    from omnicheck.variants import Variant


class HFBackend:
    """One loaded transformers model. Close it before loading the next variant."""

    @classmethod
    def open(cls, variant: "Variant", *, device: str | None = None, cache_dir: Path | None = None) -> "HFBackend":
        return cls(variant.path, name=variant.name, device=device)

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
        auto_class = model_class(self.config_dict)
        torch_dtype = getattr(torch, dtype) if dtype else "auto"
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        os.environ.setdefault("TQDM_DISABLE", "1")  # compressed-tensors' per-layer bars would flood CI logs
        from omnicheck.formats import read_card

        self.card = read_card(self.path)
        out_of_memory = None
        try:
            if self.card.format == "modelopt":
                # transformers refuses ModelOpt exports; omnicheck dequantizes and emulates them itself
                from omnicheck.formats.modelopt import load_modelopt_model

                self.model, self.load_info = load_modelopt_model(self.path, device=self.device, dtype=dtype, card=self.card)
            else:
                self.model = self._from_pretrained(auto_class, torch_dtype)
                self.load_info = {}
                if self.card.kv_cache:  # transformers leaves a quantized KV cache in the model dtype: emulate it
                    from omnicheck.formats import kvcache

                    self.load_info = kvcache.attach(self.model, self.card, kvcache.kv_scale_tensors(self.path, self.card))
            self.model.to(self.device).eval()
        except Exception as err:
            if not decoding.is_out_of_memory(err):
                raise
            out_of_memory = decoding.out_of_memory_at_load(variant_label(self.name, self.model_type), self.path, err)
        if out_of_memory is not None:  # raised outside the except block, so the half-loaded weights can be freed
            self.model = None
            decoding.release_memory()
            raise out_of_memory
        self.generator = text_generator(self.model)
        if self.generator is not self.model:
            self.generator.generation_config = self.model.generation_config  # the checkpoint's stop tokens
        self.processor, self.tokenizer = load_processor(self.path)
        self.is_speech_seq2seq = auto_class.__name__ == "AutoModelForSpeechSeq2Seq"
        self.modalities = frozenset(self._modalities())
        self.decoder = decoding.Decoder(self.generator, self.device, variant_label(self.name, self.model_type),
                                        speech_seq2seq=self.is_speech_seq2seq)
        self.load_seconds = time.perf_counter() - start
        self._lm = None
        self.on_batch: Progress | None = None

    def _from_pretrained(self, auto_class, torch_dtype):
        from transformers import PreTrainedModel

        load = auto_class.from_pretrained
        concrete = concrete_class(auto_class, self.config_dict)
        if concrete is not None and concrete.__name__ in LOAD_WITHOUT_SPEECH_ASSETS:
            load = functools.partial(PreTrainedModel.from_pretrained.__func__, concrete)
        try:
            model, info = load(self.path, dtype=torch_dtype, output_loading_info=True, local_files_only=True)
        except OSError as err:
            raise ModelLoadError(f"transformers could not read {self.path}: {first_line(err)}", "check the weight files") from None
        except (ValueError, RuntimeError, KeyError) as err:
            raise ModelLoadError(
                f"transformers refused {self.path} ({self.model_type}): {first_line(err)}",
                "check that this transformers version supports the architecture and quantization format "
                "(run `omnicheck inspect PATH`)",
            ) from None
        _refuse_bad_load(self.path, info, stored_elsewhere=set(self.card.kv_scale_tensors))
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
            "engine": in_process_engine().to_json(),
            "decoding": self.decoder.plan.to_json(),
        }

    # --- generation ---

    def generate(self, samples: Sequence[Sample], settings: GenerationSettings) -> list[Generation]:
        """Longest samples first, in batches the decoder sizes; results in the order of `samples`."""
        order = decoding.longest_first(samples, decoding.length_key)
        one_token = replace(settings, max_new_tokens=1)
        record = self.decoder.batch_size(
            settings, len(samples), lambda rows: self._generate_batch([samples[i] for i in order[:rows]], one_token)
        )
        return self.decoder.run(samples, lambda batch: self._generate_batch(batch, settings), record,
                                decoding.length_key, settings.max_new_tokens, self.on_batch)

    def take_decoding(self) -> dict[str, Any]:
        """How the generate and lm-eval calls since the last take decoded and batched (recorded per probe)."""
        return self.decoder.take_calls()

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
            sequences = self.decoder.generate(self.generator.generate, inputs, kwargs, settings.max_new_tokens)
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
            # a tokenizer-only (text) model's chat template may take content only as a string (SmolLM2's does)
            conversation = [to_hf(m, as_string=self.processor is None) for m in sample.messages]
            template_owner = self.processor if self.processor is not None else self.tokenizer
            texts.append(template_owner.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True))
            sample_images, sample_audios, sample_videos = media_inputs(sample.messages)
            if sample_images:
                images.append(sample_images)
            audios.extend(sample_audios)
            videos.extend(sample_videos)
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

    # --- activation-range diagnosis ---

    def activation_ranges(self, samples: Mapping[str, Sequence[Sample]]) -> dict[str, Any]:
        """Hooks the text generator's quantized layers on one batch per modality (see formats/diagnosis.py)."""
        from omnicheck.formats.diagnosis import diagnose_activation_ranges

        inputs = {}
        for modality, batch in samples.items():
            try:
                inputs[modality] = [self._inputs(batch)]
            except OmnicheckError:
                continue
        try:
            return diagnose_activation_ranges(self.generator, inputs).to_json()
        except Exception as err:  # a diagnosis failure must not cost the verdicts already made
            return {"error": f"{type(err).__name__}: {err}"}

    # --- teacher forcing ---

    def score_continuations(self, continuations: Sequence[Continuation], top_k: int = 20,
                            batch_size: int = 8) -> list[TokenScores | NotScored]:
        """Per continuation, this model's next-token distributions along the given answer (one forward pass)."""
        from omnicheck.backends.hf_scoring import score_continuations

        return score_continuations(self, continuations, top_k, batch_size)

    # --- lm-eval ---

    def lm_eval_model(self, settings: GenerationSettings | None = None):
        """lm-eval's HFLM over the loaded model, batching as `settings` say (the probe's batch, or from memory)."""
        if self._lm is None:
            if "text" not in self.modalities:
                raise UnsupportedModality(f"{variant_label(self.name, self.model_type)} has no text generation", "skip text probes")
            self._lm = decoding.decoding_lm(self.generator, self.tokenizer, self.device, self.decoder)
        self._lm.omnicheck_settings = settings or GenerationSettings()
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


def _refuse_bad_load(path: Path, info: dict[str, Any], stored_elsewhere: set[str] = frozenset()) -> None:
    """A load with missing or unexpected keys runs on random weights: never let it through silently.
    stored_elsewhere: keys omnicheck reads itself (KV-cache scales), expected to be unexpected to transformers."""
    missing = [k for k in info.get("missing_keys", []) if not k.endswith(("inv_freq", "position_ids"))]
    unexpected = [k for k in info.get("unexpected_keys", []) if k not in stored_elsewhere]
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


def _count_generated(row, stop_ids: set[int]) -> int:
    for i, token in enumerate(row.tolist()):
        if token in stop_ids:
            return i
    return len(row)
