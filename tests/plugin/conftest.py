from __future__ import annotations

from importlib.metadata import entry_points

import pytest


def _installed() -> bool:
    return any(ep.name == "omnicheck" for ep in entry_points(group="pytest11"))


@pytest.fixture
def run_omnicheck(pytester, tmp_path):
    """Run pytest in-process with the omnicheck plugin on the given --model specs."""

    def run(*args: str):
        plugin = [] if _installed() else ["-p", "omnicheck.plugin"]
        return pytester.runpytest(
            *plugin, "-p", "no:cacheprovider", "--omnicheck-cache", str(tmp_path / "cache"),
            "--omnicheck-report", str(tmp_path / "reports"), *args,
        )

    return run
