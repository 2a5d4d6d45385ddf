"""The HTTP client of the served backend: one JSON exchange at a time, with the standard library only.

http_json never raises for network trouble or an error status: it answers HttpAnswer(status, body, problem),
problem being one line in the server's own words (or why nothing came back).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from omnicheck.errors import one_line

API_KEY_ENVS = ("OMNICHECK_API_KEY", "OPENAI_API_KEY")


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
    """$OMNICHECK_API_KEY, else $OPENAI_API_KEY; only ever sent as a request header."""
    for env in API_KEY_ENVS:
        if os.environ.get(env):
            return os.environ[env]
    return None


def http_json(url: str, payload: Any = None, timeout: float = 30.0, key: str | None = None) -> HttpAnswer:
    """One HTTP exchange (GET without payload, POST with); never raises for network trouble or error statuses."""
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


def api_base(url: str) -> str:
    """http://host:8000, http://host:8000/ and http://host:8000/v1 all mean http://host:8000/v1."""
    base = url.rstrip("/")
    return base if re.search(r"/v\d+$", base) else base + "/v1"


def server_root(base: str) -> str:
    return re.sub(r"/v\d+$", "", base)
