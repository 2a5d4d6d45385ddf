"""A model behind an OpenAI-compatible server (vLLM, SGLang): the runtime that will really serve a release.

Only the standard library is imported here; media readers (librosa, av, PIL) and lm-eval load on first use.

How the server is asked:
- identity: GET /v1/models (the id, or URL#served-name) and GET /version; the quantization, dtype and KV cache
  dtype from vLLM's /server_info (only with VLLM_SERVER_DEV_MODE=1) or SGLang's /get_server_info. When neither
  answers, describe() says NOT_REPORTED rather than guess from the checkpoint.
- modalities: one tiny request per media kind (a 32x32 image, 0.5 s of silence, a 2-frame video), max_tokens 1,
  on first use of `modalities`; a 4xx answer means the model does not take that kind. Video counts as taken when
  the server takes video_url, or images (then frames are sent).
- generation: chat completions at temperature 0, fixed max_tokens and seed, several requests in flight (bounded),
  retries with exponential backoff on connection errors, timeouts and 5xx; a refused request (4xx) fails that
  sample only: Generation(text="", extra={"error": one line}).
- an optional on-disk cache (response_cache.py) is written as answers arrive, so a rerun after a crash sends only
  what is missing.
- the API key comes from $OMNICHECK_API_KEY (else $OPENAI_API_KEY) and is only ever sent as a request header.

The HTTP client is http.py, lm-eval's chat adapter lmeval_chat.py; the neutral message becomes chat-completions
content parts in omnicheck.messages.
"""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, cast

from omnicheck.backends.base import Generation, Progress
from omnicheck.backends.http import API_KEY_ENVS, HttpAnswer, api_base, api_key, http_json, server_root
from omnicheck.backends.lmeval_chat import server_chat_lm
from omnicheck.backends.response_cache import ResponseCache
from omnicheck.engines import Engine, served_engine
from omnicheck.errors import BackendError, OmnicheckError, one_line
from omnicheck.messages import SAMPLING_RATE, data_uri, has_video, to_openai, wav_bytes, wav_part
from omnicheck.types import GenerationSettings, Sample

if TYPE_CHECKING:
    from omnicheck.variants import Variant

NOT_REPORTED = "not reported by server"


# --- tiny media for the modality probe, made without any library ---


def tiny_png(size: int = 32) -> bytes:
    row = b"\x00" + bytes([128, 64, 32]) * size
    raw = zlib.compress(row * size)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def tiny_mp4(frames: int = 2, size: int = 32) -> bytes:
    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=2)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((size, size, 3), 60 * i, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return out.getvalue()


def probe_contents() -> dict[str, list[dict[str, Any]]]:
    silence = wav_bytes(b"\x00\x00" * (SAMPLING_RATE // 2), SAMPLING_RATE)
    return {
        "image": [{"type": "image_url", "image_url": {"url": data_uri("image/png", tiny_png())}}],
        "audio": [wav_part(silence)],
        "video": [{"type": "video_url", "video_url": {"url": data_uri("video/mp4", tiny_mp4())}}],
    }


# --- the backend ---


class OpenAIBackend:
    """Backend protocol over an OpenAI-compatible server; see the module docstring for how it asks."""

    @classmethod
    def open(cls, variant: "Variant", *, device: str | None = None, cache_dir: Path | None = None) -> "OpenAIBackend":
        return cls(variant, cache_dir=cache_dir)  # the server chose its device

    def __init__(
        self,
        variant: "Variant",
        *,
        cache_dir: Path | str | None = None,
        concurrency: int = 4,
        timeout: float = 300.0,
        retries: int = 3,
        backoff: float = 0.5,
        seed: int = 1234,
        connect_timeout: float = 10.0,
    ):
        self.name: str = variant.name
        self.base = api_base(variant.url)
        self.root = server_root(self.base)
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.seed = seed
        self._key = api_key()
        self._cache = ResponseCache(Path(cache_dir)) if cache_dir is not None else None
        self._video_as_frames = False
        self._server_down = threading.Event()
        self._last_failure: HttpAnswer | None = None  # the server's last 5xx, kept for requests after it goes down
        self._modalities: frozenset[str] | None = None
        self._modality_evidence: dict[str, str] = {}
        self._lm: Any = None
        self.on_batch: Progress | None = None
        self._model_card = self._pick_model(variant.served_name, connect_timeout)
        self.model: str = self._model_card["id"]
        self._server_info = self._ask_server_info(connect_timeout)

    # identity

    def _pick_model(self, served_name: str | None, timeout: float) -> dict[str, Any]:
        answer = http_json(f"{self.base}/models", timeout=timeout, key=self._key)
        if answer.status == 0:
            raise BackendError(f"cannot reach the server for {self.name} at {self.base}: {answer.problem}",
                               "start the server (and wait until /health answers) or fix the --model URL")
        if answer.status in (401, 403):
            raise BackendError(f"the server at {self.base} refused the API key ({answer.problem})",
                               f"set {API_KEY_ENVS[0]} (or {API_KEY_ENVS[1]}) to the server's key")
        if not answer.ok or not isinstance(answer.body, dict) or not answer.body.get("data"):
            raise BackendError(f"{self.base}/models did not list any model ({answer.problem or 'empty list'})",
                               "point --model at an OpenAI-compatible server's /v1 URL")
        cards = [c for c in answer.body["data"] if isinstance(c, dict) and "id" in c]
        ids = [c["id"] for c in cards]
        if served_name is not None:
            for card in cards:
                if served_name == card["id"]:
                    return card
            raise BackendError(f"the server at {self.base} does not serve {served_name!r} (it serves {ids})",
                               f"write --model {self.name}={self.base}#{ids[0]}")
        if len(cards) > 1:
            raise BackendError(f"the server at {self.base} serves several models: {ids}",
                               f"name one: --model {self.name}={self.base}#{ids[0]}")
        return cards[0]

    def _ask_server_info(self, timeout: float) -> dict[str, Any]:
        """What the server says about itself, from whichever of these it answers.

        vLLM: /version always; /server_info only with VLLM_SERVER_DEV_MODE=1 (its model_config names the
        quantization method and dtype). SGLang: /get_server_info (quantization, dtype, kv_cache_dtype).
        """
        info: dict[str, Any] = {}
        version = http_json(f"{self.root}/version", timeout=timeout, key=self._key)
        if version.ok and isinstance(version.body, dict) and version.body.get("version"):
            info["version"] = str(version.body["version"])
        vllm = http_json(f"{self.root}/server_info?config_format=json", timeout=timeout, key=self._key)
        if vllm.ok and isinstance(vllm.body, dict) and isinstance(vllm.body.get("vllm_config"), dict):
            config = vllm.body["vllm_config"]
            model = config.get("model_config") or {}
            info["quantization"] = model.get("quantization")
            info["dtype"] = model.get("dtype")
            info["kv_cache_dtype"] = (config.get("cache_config") or {}).get("cache_dtype")
            info["source"] = "/server_info"
            return info
        sglang = http_json(f"{self.root}/get_server_info", timeout=timeout, key=self._key)
        if sglang.ok and isinstance(sglang.body, dict):
            body = sglang.body
            info.setdefault("version", body.get("version"))
            for key in ("quantization", "dtype", "kv_cache_dtype"):
                info[key] = body.get(key)
            info["source"] = "/get_server_info"
        return info

    def quantization(self) -> str:
        """The server's own word, 'none' when it says there is none, or that it does not say."""
        if "quantization" not in self._server_info:
            return NOT_REPORTED
        reported = self._server_info["quantization"]
        return f"{reported or 'none'} (reported by server {self._server_info['source']})"

    def execution_path(self) -> dict[str, str]:
        """What runs, in the words the in-process backend uses; only what the server itself says."""
        kv = self._server_info.get("kv_cache_dtype")
        return {
            "runtime": f"{self.engine().label} at {self.base}",
            "weights": f"as served; quantization: {self.quantization()}",
            "activations": f"whatever the server's kernels do: {NOT_REPORTED}",
            "kernels": f"{NOT_REPORTED} (vLLM names the kernels it picks only in its log)",
            "kv_cache": f"{kv} (reported by server)" if kv else NOT_REPORTED,
        }

    def engine(self) -> Engine:
        """vLLM or SGLang by the owner its model card names, with the version the server reports."""
        return served_engine(self._model_card.get("owned_by"), self._server_info.get("version"))

    def describe(self) -> dict[str, Any]:
        card = {k: v for k, v in self._model_card.items() if k in ("id", "root", "parent", "owned_by", "max_model_len")}
        return {
            "backend": "openai",
            "model_type": f"served model {self.model}",
            "url": self.base,
            "model": self.model,
            "model_card": card,
            "server_version": self._server_info.get("version") or NOT_REPORTED,
            "quantization": self.quantization(),
            "dtype": self._server_info.get("dtype") or NOT_REPORTED,
            "kv_cache_dtype": self._server_info.get("kv_cache_dtype") or NOT_REPORTED,
            "settings": {"temperature": 0, "seed": self.seed, "concurrency": self.concurrency,
                         "timeout_s": self.timeout, "retries": self.retries},
            "modalities": sorted(self.modalities),
            "execution_path": self.execution_path(),
            "video_input": "frames" if self._video_as_frames else "video_url",
            "modality_evidence": dict(self._modality_evidence),
            "api_key": "set" if self._key else "none",
            "engine": self.engine().to_json(),
        }

    # modalities

    @property
    def modalities(self) -> frozenset[str]:
        if self._modalities is None:
            self._modalities = self._probe_modalities()
        return self._modalities

    def _probe_modalities(self) -> frozenset[str]:
        taken = {"text"}
        for kind, content in probe_contents().items():
            answer = self._send(self._payload([{"role": "user", "content": [*content, {"type": "text", "text": "Hi"}]}],
                                              max_tokens=1))
            if answer.retryable:
                raise BackendError(
                    f"{self.name}: could not learn whether the server takes {kind} ({self._problem(answer)})",
                    f"check the server at {self.root} (its log, /health) and run again")
            self._modality_evidence[kind] = "accepted" if answer.ok else answer.problem
            if answer.ok:
                taken.add(kind)
        if "video" not in taken and "image" in taken:
            self._video_as_frames = True
            taken.add("video")
            self._modality_evidence["video"] += " -> video sent as frames"
        return frozenset(taken)

    # generation

    def _settings(self, settings: GenerationSettings) -> dict[str, Any]:
        return {"max_tokens": settings.max_new_tokens, "temperature": 0, "seed": self.seed}

    def _payload(self, messages: list[dict[str, Any]], max_tokens: int) -> dict[str, Any]:
        return {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
                "seed": self.seed}

    def _send(self, payload: dict[str, Any]) -> HttpAnswer:
        """POST with retries on no-answer and 5xx; once the server is known down, one try only."""
        tries = 1 if self._server_down.is_set() else self.retries + 1
        answer = HttpAnswer(0, None, "not sent")
        said = None  # the last thing the server said before it stopped answering: usually the cause
        for attempt in range(tries):
            answer = http_json(f"{self.base}/chat/completions", payload, self.timeout, self._key)
            if not answer.retryable:
                self._server_down.clear()
                self._last_failure = None
                return answer
            if answer.status:
                said = self._last_failure = answer
            if attempt + 1 < tries:
                time.sleep(self.backoff * 2**attempt)
        if answer.status == 0 and "timed out" not in answer.problem:
            self._server_down.set()
            if said is not None:
                return HttpAnswer(0, None, f"{said.problem}; then {answer.problem}")
        return answer

    def _problem(self, answer: HttpAnswer) -> str:
        """The answer's problem; for a server gone silent, with the last thing it said before (its own reason)."""
        earlier = self._last_failure
        if answer.status == 0 and earlier is not None and earlier.problem not in answer.problem:
            return f"{earlier.problem}; then {answer.problem}"
        return answer.problem

    def _generate_one(self, sample: Sample, settings: GenerationSettings) -> Generation:
        video = has_video(sample)
        as_frames = video and self._video_as_frames
        try:
            payload = self._payload(to_openai(sample.messages, as_frames), settings.max_new_tokens)
        except (OSError, ValueError, RuntimeError, OmnicheckError) as err:
            return _failure(f"cannot read the sample's media: {one_line(str(err))}", video, as_frames)
        answer = self._send(payload)
        if video and not as_frames and 400 <= answer.status < 500 and "video" in answer.problem.lower():
            # the server does not take video_url: send frames from now on, and say so per sample
            self._video_as_frames = as_frames = True
            payload["messages"] = to_openai(sample.messages, True)
            answer = self._send(payload)
        if not answer.ok:
            what = "refused the request" if 400 <= answer.status < 500 else "failed"
            return _failure(f"server {what}: {answer.problem}", video, as_frames)
        try:
            choice = answer.body["choices"][0]
            text = (choice["message"]["content"] or "").strip()  # as the transformers backend returns it
        except (KeyError, IndexError, TypeError):
            return _failure(f"server answer has no choices[0].message.content: {one_line(str(answer.body))}",
                            video, as_frames)
        extra: dict[str, Any] = {"finish_reason": choice.get("finish_reason")}
        if video:
            extra["video_input"] = "frames" if as_frames else "video_url"
        tokens = int((answer.body.get("usage") or {}).get("completion_tokens") or 0)
        return Generation(text=text, tokens=tokens, extra=extra)

    def generate(self, samples: Sequence[Sample], settings: GenerationSettings) -> list[Generation]:
        results: list[Generation | None] = [None] * len(samples)
        # the served name and the checkpoint the server says it loaded; not the URL, so a restarted server resumes
        model_id = {"id": self.model, "root": self._model_card.get("root")}
        keys: list[str | None] = [None] * len(samples)
        pending: list[int] = []
        for index, sample in enumerate(samples):
            if self._cache is not None:
                try:
                    keys[index] = key = self._cache.key(model_id, sample.messages, self._settings(settings))
                except OSError:  # unreadable media: the request fails that sample, in one line, below
                    pending.append(index)
                    continue
                hit = self._cache.get(key)
                if hit is not None:
                    results[index] = Generation(hit.text, hit.tokens, {**hit.extra, "cache": "hit"})
                    continue
            pending.append(index)

        def run(index: int) -> None:
            generation = self._generate_one(samples[index], settings)
            results[index] = generation
            key = keys[index]
            if self._cache is not None and key is not None and "error" not in generation.extra:
                self._cache.put(key, generation)

        done = len(samples) - len(pending)
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="omnicheck-openai") as pool:
            for _ in pool.map(run, pending):  # in order, on this thread: progress is reported from here only
                done += 1
                if self.on_batch is not None:
                    self.on_batch(done, len(samples))
        return cast("list[Generation]", results)  # every index was filled: from the cache or by run()

    def activation_ranges(self, samples: Mapping[str, Sequence[Sample]]) -> dict[str, Any]:
        return {"available": False, "reason": "a served model's activations cannot be hooked from outside the server"}

    def score_continuations(self, continuations: Sequence[Any], top_k: int = 20, batch_size: int = 8) -> list[Any]:
        """Per continuation, the served model's distributions along the given answer (vLLM prompt log-probabilities;
        see omnicheck.backends.openai_scoring). batch_size is unused: requests go concurrently."""
        from omnicheck.backends.openai_scoring import score_continuations

        return score_continuations(self, continuations, top_k)

    def lm_eval_model(self, settings: GenerationSettings | None = None) -> Any:
        """lm-eval's own chat-completions model over the same server (generate_until tasks; no loglikelihood).

        The server applies the model's chat template, so the LM reports a (placeholder) template: lm-eval then
        sends chat messages, which is the only form a chat-completions endpoint takes. The server batches what
        arrives: `settings` has no batch to set here (concurrency is the client's knob).
        """
        if self._lm is None:
            self._check_answers()
            self._lm = server_chat_lm(
                base_url=f"{self.base}/chat/completions",
                model=self.model,
                tokenizer_backend=None,
                num_concurrent=self.concurrency,
                max_retries=self.retries,
                timeout=int(self.timeout),
                seed=self.seed,
                header={"Authorization": f"Bearer {self._key}"} if self._key else {},
            )
        return self._lm

    def _check_answers(self) -> None:
        """One token before handing the server to lm-eval, whose client retries a dead server for minutes and then
        reports only a connection error: a scheme without a kernel on the server's machine kills vLLM's engine on
        its first request, and the answer to this one says so."""
        answer = self._send(self._payload([{"role": "user", "content": "Hi"}], max_tokens=1))
        if answer.retryable:
            raise BackendError(
                f"the server for {self.name} at {self.base} fails requests ({self._problem(answer)})",
                "its log names the root cause (vLLM's engine dies on the first request when the machine has no "
                "kernel for the checkpoint's quantization scheme: serve it where that kernel exists)")

    def take_decoding(self) -> None:
        return None  # the server decodes: its batching is not visible here

    def close(self) -> None:
        return None


def _failure(problem: str, video: bool, as_frames: bool) -> Generation:
    extra: dict[str, Any] = {"error": one_line(problem)}
    if video:
        extra["video_input"] = "frames" if as_frames else "video_url"
    return Generation(text="", tokens=0, extra=extra)
