"""A local vLLM server for the served tests: started from a given interpreter, health-polled, stopped with its
process group. A refusal to serve becomes one BackendError line carrying vLLM's own root cause.

Only the tests start servers: a user points --model at a server they run themselves.
"""

from __future__ import annotations

import http.server
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

from omnicheck.backends.http import http_json, server_root
from omnicheck.errors import BackendError, one_line

_GENERIC_FAILURES = ("Engine core initialization failed", "See root cause above", "See stack trace (above)",
                     "please check the stack trace above")
_LOG_PREFIX = re.compile(r"^(?:\(\w+ pid=\d+\)\s*)?")
_LEVEL = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+\S+\s+\S+\s+\[[^\]]*\]\s*")
_RAISED = re.compile(r"^((?:\w+\.)*\w*(?:Error|Exception)): (.+)$")
_KERNEL_MISSING = re.compile(r"kernel|wna16|not (?:available|implemented|supported)|expect A to be", re.I)


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
    kernel for this quantization scheme on this machine). check_first_answer=False returns at /health, so a client
    meets a missing kernel on its own first request, as it would against a server someone else started.
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
        check_first_answer: bool = True,
        port: int | None = None,
    ):
        self.model_dir = Path(model_dir)
        self.port = port or free_port()  # chosen by the caller when a client is told the URL before the start
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
        self._check_first_answer = check_first_answer
        self._wait_healthy(start_timeout)

    def _wait_healthy(self, start_timeout: float) -> None:
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._refuse(f"exit {self.process.returncode}")
            if http_json(f"{server_root(self.url)}/health", timeout=2.0).ok:
                if self._check_first_answer:
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
        if _KERNEL_MISSING.search(cause):
            fix = "serve it where that kernel exists (e.g. a GPU), or pick another scheme"
        else:
            fix = "`omnicheck inspect --vllm VERSION` on the checkpoint names what that vLLM reads and the config lacks"
        raise BackendError(f"vLLM refused to serve {self.model_dir.name} ({one_line(how, 120)}): {cause}",
                           f"{fix}; log: {self.log_path}")

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


class ForwardingProxy:
    """An HTTP proxy on 127.0.0.1 in front of a real server, for the failures a real vLLM cannot be made to show on
    demand. `intercept` sees each POST body and returns either the body to forward (changed or not) or a
    (status, payload) answer of its own; GETs are forwarded unchanged."""

    def __init__(self, upstream_port: int, intercept: Callable[[bytes], bytes | tuple[int, bytes]]):
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                outcome = intercept(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if isinstance(outcome, tuple):
                    self._answer(*outcome)
                else:
                    self._forward(outcome)

            def _forward(self, body: bytes | None) -> None:
                request = urllib.request.Request(f"http://127.0.0.1:{upstream_port}{self.path}", data=body,
                                                 headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        self._answer(response.status, response.read())
                except urllib.error.HTTPError as err:
                    self._answer(err.code, err.read())

            def _answer(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
