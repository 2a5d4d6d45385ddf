"""A model behind an OpenAI-compatible server (vLLM, SGLang): the runtime that will really serve a release.

Only the standard library is imported here; media readers (librosa, av, PIL) and lm-eval load on first use.

How the server is asked:
- identity: GET /v1/models (the id, or URL#served-name) and GET /version; the quantization, dtype and KV cache
  dtype from vLLM's /server_info (only with VLLM_SERVER_DEV_MODE=1) or SGLang's /get_server_info. When neither
  answers, describe() says "not reported by server" rather than guess from the checkpoint.
- modalities: one tiny request per media kind (a 32x32 image, 0.5 s of silence, a 2-frame video), max_tokens 1,
  on first use of `modalities`; a 4xx answer means the model does not take that kind. Video counts as taken when
  the server takes video_url, or images (then frames are sent).
- generation: chat completions at temperature 0, fixed max_tokens and seed, several requests in flight (bounded),
  retries with exponential backoff on connection errors, timeouts and 5xx; a refused request (4xx) fails that
  sample only: Generation(text="", extra={"error": one line}).
- an optional on-disk cache (one JSON file per request) is written as answers arrive, so a rerun after a crash
  sends only what is missing.
- the API key comes from $OMNICHECK_API_KEY (else $OPENAI_API_KEY) and is only ever sent as a request header.

LocalVLLMServer starts a vLLM server for a checkpoint folder (the tests use it) and turns a refusal to serve into
one BackendError line carrying vLLM's own root cause.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, cast

from omnicheck.backends.base import Generation
from omnicheck.errors import BackendError, OmnicheckError
from omnicheck.fixtures import sha256_file
from omnicheck.types import AudioPart, GenerationSettings, ImagePart, Message, Part, Sample, TextPart, VideoPart

API_KEY_ENVS = ("OMNICHECK_API_KEY", "OPENAI_API_KEY")
AUDIO_RATE = 16_000
QUANT_NOT_REPORTED = "not reported by server"

_IMAGE_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
               ".gif": "image/gif", ".bmp": "image/bmp"}
_VIDEO_MIME = {".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime", ".avi": "video/x-msvideo",
               ".mkv": "video/x-matroska"}


# --- HTTP ---


@dataclass(frozen=True)
class HttpAnswer:
    status: int  # 0: no answer (connection refused, reset, timed out)
    body: Any  # parsed JSON, or the raw text when it is not JSON
    problem: str = ""  # one line when status is 0 or >= 400

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status >= 500


def api_key() -> str | None:
    for env in API_KEY_ENVS:
        if os.environ.get(env):
            return os.environ[env]
    return None


def http_json(url: str, payload: Any = None, timeout: float = 30.0, key: str | None = None) -> HttpAnswer:
    """One HTTP exchange; never raises for network trouble or error statuses."""
    data = None if payload is None else json.dumps(payload).encode()
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=data, headers=headers, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpAnswer(response.status, _parse(response.read()))
    except urllib.error.HTTPError as err:
        body = _parse(err.read())
        return HttpAnswer(err.code, body, f"HTTP {err.code}: {_error_text(body)}")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        return HttpAnswer(0, None, _network_problem(err, timeout))


def _parse(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _error_text(body: Any) -> str:
    """The server's own words from an OpenAI-style error body, on one line."""
    message: Any = body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message", error) if isinstance(error, dict) else error
        if isinstance(body.get("detail"), (str, list)):
            message = body["detail"]
    return one_line(str(message))


def _network_problem(err: BaseException, timeout: float) -> str:
    reason = getattr(err, "reason", err)
    if isinstance(reason, (socket.timeout, TimeoutError)) or "timed out" in str(reason):
        return f"no answer within {timeout:g} s (timed out)"
    return f"no answer: {one_line(str(reason)) or type(reason).__name__}"


def one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def api_base(url: str) -> str:
    """http://host:8000, http://host:8000/ and http://host:8000/v1 all mean http://host:8000/v1."""
    base = url.rstrip("/")
    return base if re.search(r"/v\d+$", base) else base + "/v1"


def server_root(base: str) -> str:
    return re.sub(r"/v\d+$", "", base)


# --- neutral message -> chat-completions content parts ---


def data_uri(mime: str, raw: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def image_part(path: Path) -> dict[str, Any]:
    mime = _IMAGE_MIME.get(path.suffix.lower())
    raw = path.read_bytes() if mime else _to_png(path)
    return {"type": "image_url", "image_url": {"url": data_uri(mime or "image/png", raw)}}


def _to_png(path: Path) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    with Image.open(path) as image:
        image.convert("RGB").save(out, format="PNG")
    return out.getvalue()


def audio_part(path: Path) -> dict[str, Any]:
    """Any audio file -> 16 kHz mono 16-bit WAV, read the way the transformers backend reads it."""
    import numpy as np

    from omnicheck.backends.hf import load_audio

    pcm = (np.clip(load_audio(path), -1.0, 1.0) * 32767).astype("<i2").tobytes()
    raw = wav_bytes(pcm, AUDIO_RATE)
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(raw).decode("ascii"), "format": "wav"}}


def wav_bytes(pcm16: bytes, rate: int) -> bytes:
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm16)
    return out.getvalue()


def video_part(path: Path) -> dict[str, Any]:
    mime = _VIDEO_MIME.get(path.suffix.lower(), "video/mp4")
    return {"type": "video_url", "video_url": {"url": data_uri(mime, path.read_bytes())}}


def video_frame_parts(path: Path, num_frames: int) -> list[dict[str, Any]]:
    """The frames the transformers backend would sample, as JPEG image parts, for servers that take no video."""
    from PIL import Image

    from omnicheck.backends.hf import load_video

    frames, _ = load_video(path, num_frames)
    parts = []
    for frame in frames:
        out = io.BytesIO()
        Image.fromarray(frame).convert("RGB").save(out, format="JPEG", quality=90)
        parts.append({"type": "image_url", "image_url": {"url": data_uri("image/jpeg", out.getvalue())}})
    return parts


def content_parts(parts: Sequence[Part], video_as_frames: bool) -> str | list[dict[str, Any]]:
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    content: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            content.append(image_part(Path(part.path)))
        elif isinstance(part, AudioPart):
            content.append(audio_part(Path(part.path)))
        elif isinstance(part, VideoPart):
            if video_as_frames:
                content.extend(video_frame_parts(Path(part.path), part.num_frames))
            else:
                content.append(video_part(Path(part.path)))
    return content


def chat_messages(messages: Sequence[Message], video_as_frames: bool = False) -> list[dict[str, Any]]:
    return [{"role": m.role, "content": content_parts(m.parts, video_as_frames)} for m in messages]


def has_video(sample: Sample) -> bool:
    return any(isinstance(p, VideoPart) for m in sample.messages for p in m.parts)


# --- the resume cache ---


def messages_digest(messages: Sequence[Message]) -> str:
    """Text verbatim, media by content: the same question from a moved file is the same question."""
    neutral = []
    for message in messages:
        parts = []
        for part in message.parts:
            if isinstance(part, TextPart):
                parts.append(["text", part.text])
            else:
                entry: list[Any] = [part.kind, sha256_file(Path(part.path))]
                if isinstance(part, VideoPart):
                    entry.append(part.num_frames)
                parts.append(entry)
        neutral.append([message.role, parts])
    return hashlib.sha256(json.dumps(neutral).encode()).hexdigest()


class ResponseCache:
    """One JSON file per request, written atomically as each answer arrives; errors are never cached."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def key(self, model: dict[str, Any], messages: Sequence[Message], settings: dict[str, Any]) -> str:
        blob = json.dumps({"model": model, "messages": messages_digest(messages), "settings": settings},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Generation | None:
        try:
            data = json.loads(self._path(key).read_text())
            return Generation(text=str(data["text"]), tokens=int(data["tokens"]), extra=dict(data["extra"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or unreadable (a crash mid-write leaves only a .tmp file): ask again

    def put(self, key: str, generation: Generation) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump({"text": generation.text, "tokens": generation.tokens, "extra": generation.extra}, handle)
        os.replace(tmp, path)

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.json"))


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
    silence = wav_bytes(b"\x00\x00" * (AUDIO_RATE // 2), AUDIO_RATE)
    return {
        "image": [{"type": "image_url", "image_url": {"url": data_uri("image/png", tiny_png())}}],
        "audio": [{"type": "input_audio",
                   "input_audio": {"data": base64.b64encode(silence).decode("ascii"), "format": "wav"}}],
        "video": [{"type": "video_url", "video_url": {"url": data_uri("video/mp4", tiny_mp4())}}],
    }


# --- the backend ---


class OpenAIBackend:
    """Backend protocol over an OpenAI-compatible server; see the module docstring for how it asks."""

    def __init__(
        self,
        variant: Any,
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
        self._modalities: frozenset[str] | None = None
        self._modality_evidence: dict[str, str] = {}
        self._lm: Any = None
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
            return QUANT_NOT_REPORTED
        reported = self._server_info["quantization"]
        return f"{reported or 'none'} (reported by server {self._server_info['source']})"

    def execution_path(self) -> dict[str, str]:
        """What runs, in the words the in-process backend uses; only what the server itself says."""
        version = self._server_info.get("version")
        kv = self._server_info.get("kv_cache_dtype")
        return {
            "runtime": f"OpenAI-compatible server at {self.base}, version {version or 'not reported by server'}",
            "weights": f"as served; quantization: {self.quantization()}",
            "activations": "whatever the server's kernels do: not reported by server",
            "kv_cache": f"{kv} (reported by server)" if kv else "not reported by server",
        }

    def describe(self) -> dict[str, Any]:
        card = {k: v for k, v in self._model_card.items() if k in ("id", "root", "parent", "owned_by", "max_model_len")}
        return {
            "backend": "openai",
            "model_type": f"served model {self.model}",
            "url": self.base,
            "model": self.model,
            "model_card": card,
            "server_version": self._server_info.get("version") or "not reported by server",
            "quantization": self.quantization(),
            "dtype": self._server_info.get("dtype") or "not reported by server",
            "kv_cache_dtype": self._server_info.get("kv_cache_dtype") or "not reported by server",
            "settings": {"temperature": 0, "seed": self.seed, "concurrency": self.concurrency,
                         "timeout_s": self.timeout, "retries": self.retries},
            "modalities": sorted(self.modalities),
            "execution_path": self.execution_path(),
            "video_input": "frames" if self._video_as_frames else "video_url",
            "modality_evidence": dict(self._modality_evidence),
            "api_key": "set" if self._key else "none",
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
                raise BackendError(f"{self.name}: could not learn whether the server takes {kind} ({answer.problem})",
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
        for attempt in range(tries):
            answer = http_json(f"{self.base}/chat/completions", payload, self.timeout, self._key)
            if not answer.retryable:
                self._server_down.clear()
                return answer
            if attempt + 1 < tries:
                time.sleep(self.backoff * 2**attempt)
        if answer.status == 0 and "timed out" not in answer.problem:
            self._server_down.set()
        return answer

    def _generate_one(self, sample: Sample, settings: GenerationSettings) -> Generation:
        video = has_video(sample)
        as_frames = video and self._video_as_frames
        try:
            payload = self._payload(chat_messages(sample.messages, as_frames), settings.max_new_tokens)
        except (OSError, ValueError, RuntimeError, OmnicheckError) as err:
            return _failure(f"cannot read the sample's media: {one_line(str(err))}", video, as_frames)
        answer = self._send(payload)
        if video and not as_frames and 400 <= answer.status < 500 and "video" in answer.problem.lower():
            # the server does not take video_url: send frames from now on, and say so per sample
            self._video_as_frames = as_frames = True
            payload["messages"] = chat_messages(sample.messages, True)
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

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="omnicheck-openai") as pool:
            list(pool.map(run, pending))
        return cast("list[Generation]", results)  # every index was filled: from the cache or by run()

    def score_continuations(self, continuations: Sequence[Any], top_k: int = 20, batch_size: int = 8) -> list[Any]:
        """Per continuation, the served model's distributions along the given answer (vLLM prompt log-probabilities;
        see omnicheck.backends.openai_scoring). batch_size is unused: requests go concurrently."""
        from omnicheck.backends.openai_scoring import score_continuations

        return score_continuations(self, continuations, top_k)

    def lm_eval_model(self) -> Any:
        """lm-eval's own chat-completions model over the same server (generate_until tasks; no loglikelihood).

        The server applies the model's chat template, so the LM reports a (placeholder) template: lm-eval then
        sends chat messages, which is the only form a chat-completions endpoint takes.
        """
        if self._lm is None:
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

    def close(self) -> None:
        return None


SERVER_CHAT_TEMPLATE = "applied by the server"


def server_chat_lm(**kwargs: Any) -> Any:
    """lm-eval's LocalChatCompletion that says it has a chat template (the server's), so prompts go as messages."""
    from lm_eval.models.openai_completions import LocalChatCompletion

    class ServerChatCompletion(LocalChatCompletion):
        def chat_template(self, chat_template: bool | str = False) -> str | None:
            return SERVER_CHAT_TEMPLATE if chat_template else None

        @property
        def tokenizer_name(self) -> str:
            return f"server:{self.model}"

    return ServerChatCompletion(**kwargs)


def _failure(problem: str, video: bool, as_frames: bool) -> Generation:
    extra: dict[str, Any] = {"error": one_line(problem)}
    if video:
        extra["video_input"] = "frames" if as_frames else "video_url"
    return Generation(text="", tokens=0, extra=extra)


# --- a local vLLM server, started and stopped by omnicheck (tests, or a user serving a folder) ---

_GENERIC_FAILURES = ("Engine core initialization failed", "See root cause above", "See stack trace (above)",
                     "please check the stack trace above")
_LOG_PREFIX = re.compile(r"^(?:\(\w+ pid=\d+\)\s*)?")
_LEVEL = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+\S+\s+\S+\s+\[[^\]]*\]\s*")
_RAISED = re.compile(r"^((?:\w+\.)*\w*(?:Error|Exception)): (.+)$")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_failure_cause(log: str) -> str:
    """The server's own root cause from its log: the first raised error that is not a generic wrapper.

    Only ERROR records and bare traceback lines count: vLLM logs harmless exceptions at WARNING (e.g. a oneDNN
    fallback) that must not be taken for the cause.
    """
    raised = []
    for raw in log.splitlines():
        line = _LOG_PREFIX.sub("", raw.strip())
        level = _LEVEL.match(line)
        if level and level.group(1) != "ERROR":
            continue
        line = _LEVEL.sub("", line)
        if (match := _RAISED.match(line)) is not None:
            raised.append(f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2)}")
    specific = [e for e in raised if not any(g in e for g in _GENERIC_FAILURES)]
    lines = [line for line in log.splitlines() if line.strip()]
    return one_line((specific or raised or lines[-1:] or ["(empty log)"])[0])


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class LocalVLLMServer:
    """`python -m vllm.entrypoints.openai.api_server` on 127.0.0.1 from a given interpreter, health-polled.

    Construction returns once /health answers and one token has been generated; if the process exits, the first
    request fails or the deadline passes, it is stopped and BackendError says the server's own root cause (e.g. no
    kernel for this quantization scheme on this machine).
    """

    def __init__(
        self,
        model_dir: Path | str,
        python: Path | str,
        log_path: Path | str,
        *,
        served_name: str | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        start_timeout: float = 300.0,
    ):
        self.model_dir = Path(model_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = Path(log_path)
        command = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model_dir),
                   "--host", "127.0.0.1", "--port", str(self.port), "--enforce-eager", *extra_args]
        if served_name:
            command += ["--served-model-name", served_name]
        self.command = command
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})}, start_new_session=True)
        self._wait_healthy(start_timeout)

    def _wait_healthy(self, start_timeout: float) -> None:
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._refuse(f"exit {self.process.returncode}")
            if http_json(f"{server_root(self.url)}/health", timeout=2.0).ok:
                self._first_answer()
                return
            time.sleep(1.0)
        self.stop()
        raise BackendError(f"vLLM did not become healthy within {start_timeout:g} s for {self.model_dir.name}",
                           f"raise the start timeout or read the log: {self.log_path}")

    def _first_answer(self) -> None:
        """One token through /v1/completions: a missing kernel can pass start-up and kill the engine here."""
        models = http_json(f"{self.url}/models", timeout=30.0)
        model = models.body["data"][0]["id"] if models.ok else str(self.model_dir)
        answer = http_json(f"{self.url}/completions",
                           {"model": model, "prompt": "Hello", "max_tokens": 1, "temperature": 0}, timeout=120.0)
        if answer.ok:
            return
        try:
            self.process.wait(timeout=30)  # a dead engine takes the server down; let it write its traceback
        except subprocess.TimeoutExpired:
            pass
        self._refuse(f"first request: {answer.problem}")

    def _refuse(self, how: str) -> None:
        self.stop()
        cause = start_failure_cause(self.log_path.read_text(errors="replace"))
        raise BackendError(
            f"vLLM refused to serve {self.model_dir.name} ({one_line(how, 120)}): {cause}",
            f"serve it where that kernel exists (e.g. a GPU), or pick another scheme; log: {self.log_path}")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def __enter__(self) -> "LocalVLLMServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the server's process group (API server + engine core), SIGKILL what is left after grace."""
        import signal

        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
            if not _group_alive(self.process.pid):
                break
            time.sleep(1.0)
        if not self._log.closed:
            self._log.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
