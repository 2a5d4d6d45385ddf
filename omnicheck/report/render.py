"""The one-file HTML review report, rendered from the omnicheck.json document (a plain dict, never live objects).

render_html(document, out_path) writes a self-contained page: CSS inline, media as data URIs, charts as inline SVG,
no network requests, readable with scripts disabled. All text from the document (model output above all) is
untrusted: the Jinja2 environment autoescapes everything and a Content-Security-Policy forbids any load but data:.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from pathlib import Path
from typing import Any, Mapping

from omnicheck.report.format import as_text, fmt_created, fmt_number, fmt_percent, fmt_signed, status_class
from omnicheck.report.media import DEFAULT_BUDGET_BYTES, MediaEncoder
from omnicheck.report.view_build import MAX_SAMPLES, build_view

TEMPLATE_DIR = Path(__file__).parent
MAIN_TEMPLATE = "template.html.j2"


def render_html(
    document: Mapping[str, Any],
    out_path: Path,
    json_name: str = "omnicheck.json",
    media_budget_bytes: int = DEFAULT_BUDGET_BYTES,
    max_samples: int = MAX_SAMPLES,
) -> Path:
    """Write the review report for an omnicheck.json document; returns the path written.

    media_budget_bytes caps the embedded media (past it, media is named, not embedded); max_samples caps the
    samples shown per variant and probe (worst first). Everything left out stays in the JSON document.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    html = render_html_string(document, json_name, media_budget_bytes, max_samples)
    out_path.write_text(html, encoding="utf-8")
    return out_path


def render_html_string(
    document: Mapping[str, Any],
    json_name: str = "omnicheck.json",
    media_budget_bytes: int = DEFAULT_BUDGET_BYTES,
    max_samples: int = MAX_SAMPLES,
) -> str:
    env = environment()
    encoder = MediaEncoder(budget_bytes=media_budget_bytes)
    view = build_view(document, json_name, encoder, max_samples)
    view.media_bytes = encoder.spent_bytes
    script = env.get_template("_filters.js.j2").render()
    styles = env.get_template("_style.css.j2").render()
    policy = (
        "default-src 'none'; img-src data:; media-src data:; "
        f"style-src 'unsafe-inline'; script-src {csp_hash(script)}; base-uri 'none'; form-action 'none'"
    )
    from markupsafe import Markup

    return env.get_template(MAIN_TEMPLATE).render(
        view=view, script=Markup(script), styles=Markup(styles), policy=policy
    )



def csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"



def environment() -> "Any":
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "svg.j2", "html"), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_number
    env.filters["signed"] = fmt_signed
    env.filters["pct"] = fmt_percent
    env.filters["status_class"] = status_class
    env.filters["created"] = fmt_created
    env.filters["shell"] = lambda argv: shlex.join(str(a) for a in argv) if isinstance(argv, (list, tuple)) else str(argv)
    env.filters["as_text"] = as_text
    env.filters["r1"] = lambda v: f"{float(v):.1f}"
    env.globals["is_mapping"] = lambda v: isinstance(v, Mapping)
    env.globals["is_sequence"] = lambda v: isinstance(v, (list, tuple))
    return env
