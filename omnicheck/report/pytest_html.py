"""The verdict as a snippet for pytest-html's per-test extras; plugin.py imports this only when pytest-html runs."""

from __future__ import annotations

from typing import Any, Mapping

from omnicheck.report.figures import key_figure
from omnicheck.report.format import status_class
from omnicheck.report.render import environment


def pytest_html_extras(verdict_json: Mapping[str, Any]) -> str:
    """A small HTML snippet for one verdict, for pytest-html's per-test extras (extras.html(snippet))."""
    env = environment()
    status = str(verdict_json.get("status") or "")
    return env.get_template("_pytest_html.html.j2").render(
        verdict=verdict_json, status=status, status_class=status_class(status), figure=key_figure(verdict_json)
    )
