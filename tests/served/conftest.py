"""Real vLLM servers on this CPU, started and stopped by the tests.

The servers run from the separate vLLM venv that scripts/setup_vllm_env.sh builds ($OMNICHECK_VLLM_VENV, default
/work/venvs/vllm). Without it the whole directory is skipped for one reason; under CI it fails instead, since CI
builds it. One model per server; the text server lives for the session, the others for their test module, so at
most two servers (about 3.5 GB each) are up at once.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest
from vllm_server import LocalVLLMServer, log_tail

from omnicheck.errors import BackendError

REPO = Path(__file__).resolve().parents[2]
VLLM_VENV = Path(os.environ.get("OMNICHECK_VLLM_VENV", "/work/venvs/vllm"))
VLLM_PYTHON = VLLM_VENV / "bin" / "python"
MODELS_SCRIPT = REPO / "scripts" / "make_tiny_served_models.py"
START_TIMEOUT_S = float(os.environ.get("OMNICHECK_VLLM_START_TIMEOUT", "420"))

# float32 end to end, so greedy tokens can be compared with the transformers backend; the worker runs inside the
# engine process (uni) to save one more interpreter start.
SERVER_ARGS = ("--dtype", "float32", "--max-model-len", "4096", "--distributed-executor-backend", "uni",
               "--seed", "0")

_started: list[LocalVLLMServer] = []
_log_number = itertools.count()


def _vllm_missing_reason() -> str | None:
    if VLLM_PYTHON.exists():
        return None
    return (f"no vLLM venv at {VLLM_VENV}: build it with `bash scripts/setup_vllm_env.sh` "
            "(or set OMNICHECK_VLLM_VENV)")


@pytest.fixture(scope="session", autouse=True)
def vllm_python() -> Path:
    """Without the venv every test here is skipped for one reason; CI builds it first, so there it fails."""
    reason = _vllm_missing_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the served tests: {reason}")
        pytest.skip(reason)
    return VLLM_PYTHON


@pytest.fixture(scope="session")
def served_models_root() -> Path:
    return Path(os.environ.get("OMNICHECK_SERVED_MODELS") or REPO / ".cache" / "served-models")


@pytest.fixture(scope="session")
def tiny_model(served_models_root: Path) -> Callable[[str], Path]:
    """name -> folder of that tiny model, built on first use (the builder keeps folders whose recipe matches)."""

    def build(name: str) -> Path:
        folder = served_models_root / name
        result = subprocess.run([sys.executable, str(MODELS_SCRIPT), str(served_models_root), "--only", name],
                                capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if result.returncode != 0:
            pytest.fail(f"building tiny model {name} failed:\n{result.stderr[-3000:]}")
        return folder

    return build


@pytest.fixture(scope="session")
def serve(tmp_path_factory: pytest.TempPathFactory, vllm_python: Path) -> Callable[..., LocalVLLMServer]:
    """Start a server for a folder; a start failure fails the test with the server's cause and its log tail."""
    logs = tmp_path_factory.mktemp("vllm-logs")
    cache = tmp_path_factory.mktemp("vllm-cache")

    def start(model_dir: Path, *extra_args: str, dev_mode: bool = False, expect_failure: bool = False,
              check_first_answer: bool = True, port: int | None = None) -> LocalVLLMServer:
        # VLLM_ENABLE_V1_MULTIPROCESSING=0: without it vLLM's CPU platform replaces the uni executor asked for in
        # SERVER_ARGS with mp, and every start pays for a third interpreter (a worker process)
        env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
               "VLLM_CACHE_ROOT": str(cache), "VLLM_NO_USAGE_STATS": "1", "VLLM_LOGGING_COLOR": "0",
               "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
        if dev_mode:
            env["VLLM_SERVER_DEV_MODE"] = "1"  # exposes /server_info, where vLLM names the quantization
        log = logs / f"{model_dir.name}-{next(_log_number)}.log"
        try:
            server = LocalVLLMServer(model_dir, vllm_python, log, extra_args=[*SERVER_ARGS, *extra_args], env=env,
                                     start_timeout=START_TIMEOUT_S, check_first_answer=check_first_answer,
                                     port=port)
        except BackendError as err:
            if expect_failure:
                raise
            pytest.fail(f"{err}\n--- last lines of {log} ---\n{log_tail(log)}")
        _started.append(server)
        return server

    yield start
    for server in _started:
        server.stop()


@pytest.fixture(scope="session")
def text_server(serve, tiny_model) -> Iterator[LocalVLLMServer]:
    with serve(tiny_model("text")) as server:
        yield server


@pytest.fixture(scope="session")
def more_media(media, tmp_path_factory) -> dict[str, Path]:
    """A second image, clip and sound unlike the shared ones: the image rotated, the clip reversed, a chirp."""
    import av
    import numpy as np
    import soundfile as sf
    from PIL import Image

    root = tmp_path_factory.mktemp("more-media")
    with Image.open(media["image"]) as image:
        image.transpose(Image.Transpose.ROTATE_90).save(root / "rotated.png")
    with av.open(str(media["video"])) as source:
        frames = [f.to_ndarray(format="rgb24") for f in source.decode(video=0)]
    with av.open(str(root / "reversed.mp4"), "w") as out:
        stream = out.add_stream("mpeg4", rate=6)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for frame in reversed(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(255 - frame, format="rgb24")))
        out.mux(stream.encode())
    t = np.arange(32000) / 16000
    sf.write(root / "chirp.wav", 0.3 * np.sin(2 * np.pi * (200 + 900 * t) * t), 16000)
    return {"image": root / "rotated.png", "video": root / "reversed.mp4", "audio": root / "chirp.wav"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything here is slow (servers start in about a minute each); under `pytest -n N --dist loadgroup` it all
    stays on one worker, so each server starts once."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group("vllm-servers"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failed test that used a server gets that server's log tail in its report; the missing-venv skips all
    point at this file, so `pytest -rs` folds them into one line."""
    outcome = yield
    report = outcome.get_result()
    reason = _vllm_missing_reason()
    if report.skipped and reason and isinstance(report.longrepr, tuple) and report.longrepr[2].endswith(reason):
        report.longrepr = (__file__, 1, report.longrepr[2])
    if report.failed and call.when == "call":
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, LocalVLLMServer):
                report.sections.append((f"vLLM log tail ({value.log_path})", log_tail(value.log_path)))
