from __future__ import annotations

import json
import os
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import omnicheck

REPO = Path(omnicheck.__file__).resolve().parents[1]


def _installed() -> bool:
    return any(ep.name == "omnicheck" for ep in entry_points(group="pytest11"))


@pytest.fixture(scope="session")
def lm_eval_imported() -> None:
    """pytester drops the modules imported after its set-up; lm-eval's (datasets' Arrow types, torch's c10d ops)
    register themselves in C and fail when the next in-process run imports them again. A session fixture is set
    up before pytester, so what it imports stays."""
    import datasets  # noqa: F401
    import lm_eval.evaluator  # noqa: F401
    import lm_eval.models.huggingface  # noqa: F401
    import lm_eval.tasks  # noqa: F401


@pytest.fixture
def run_omnicheck(lm_eval_imported, pytester, tmp_path, monkeypatch):
    """Run pytest with the omnicheck plugin on the given --model specs: in-process, or in a fresh interpreter
    (subprocess=True) when the run imports lazily loaded torch modules (lm-eval does) that pytester would unload
    after an in-process run and that cannot be imported a second time."""

    def run(*args: str, subprocess: bool = False):
        plugin = [] if _installed() else ["-p", "omnicheck.plugin"]
        runner = pytester.runpytest
        if subprocess:
            runner = pytester.runpytest_subprocess
            # the same omnicheck as this process, also when it runs from a checkout that is not the installed one
            monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        return runner(
            *plugin, "-p", "no:cacheprovider", "--omnicheck-cache", str(tmp_path / "cache"),
            "--omnicheck-report", str(tmp_path / "reports"), *args,
        )

    return run


@pytest.fixture
def read_document(tmp_path):
    """The omnicheck.json that the last run_omnicheck run wrote."""
    return lambda: json.loads((tmp_path / "reports" / "omnicheck.json").read_text())
