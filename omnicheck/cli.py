"""The `omnicheck` command: `demo` runs the built-in panel; `inspect PATH [--json]` prints a checkpoint's quant
card and lints before any GPU time; `models whisper-base|smollm2` builds a real speech or text model from installed
packages and prints its folder; everything else is `pytest --model ...`.

Add a subcommand with a `cmd_NAME(args) -> int` function and a parser in `build_parser`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from omnicheck.errors import OmnicheckError


def format_card(card: dict[str, Any], lints: list[dict[str, Any]], execution: dict[str, str]) -> str:
    """The card as a terminal reader wants it: the verdict-relevant facts first, groups, then lints."""
    producer = card.get("producer") or {}
    made_by = " ".join(str(v) for v in (producer.get("name"), producer.get("version")) if v) or "unknown"
    lines = [
        f"{card['path']}",
        f"  format      {card['format']} ({card['model_type']}), made by {made_by}",
        f"  scheme      {card['scheme']}  weight bits {card['weight_bits']}  "
        f"activations {'QUANTIZED' if card['activation_quantized'] else 'not quantized'}",
        f"  scope       {card['scope']}",
        f"  kv cache    {card['kv_cache']['format'] if card.get('kv_cache') else 'not quantized'}",
    ]
    calibration = card.get("calibration") or {}
    if calibration.get("recorded"):
        lines.append(f"  calibration {', '.join(calibration['datasets'])}")
    else:
        lines.append("  calibration not recorded in the checkpoint")
    if card.get("ignore"):
        lines.append(f"  ignore      {', '.join(card['ignore'])}")
    lines.append("  groups")
    for group, facts in card["groups"].items():
        act = f"; act {facts['activation']}" if facts.get("activation") else ""
        lines.append(f"    {group:17s} {facts['quantized_modules']}/{facts['modules']} quantized: {facts['weight']}{act}")
    lines.append("  runs here as")
    for key in ("weights", "activations", "kv_cache"):
        lines.append(f"    {key:11s} {execution[key]}")
    if lints:
        lines.append("  lints")
        for lint in lints:
            lines.append(f"    {lint['severity'].upper():7s} {lint['code']}: {lint['message']}")
    else:
        lines.append("  lints       none")
    return "\n".join(lines)


def cmd_inspect(args: argparse.Namespace) -> int:
    from omnicheck.formats import inspect_checkpoint

    path = Path(args.path)
    if not path.is_dir():
        print(f"omnicheck inspect: {path} is not a checkpoint folder -- fix: pass the folder with config.json",
              file=sys.stderr)
        return 2
    try:
        card = inspect_checkpoint(path, runtime_check=not args.static)
    except OmnicheckError as err:
        print(f"omnicheck inspect: {err}", file=sys.stderr)
        return 2
    data = card.to_json()
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print(format_card(data, data["lints"], data["execution_path"]))
    return 1 if card.errors() else 0


def cmd_models(args: argparse.Namespace) -> int:
    if args.name == "smollm2":
        from omnicheck.models.smollm2 import smollm2_folder as build
    else:
        from omnicheck.models.whisper_base import whisper_base_folder as build

    try:
        print(build(Path(args.cache) if args.cache else None))
    except OmnicheckError as err:
        print(f"omnicheck models: {err}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnicheck",
        description="Check quantized multimodal models against their reference. "
        "The main entry point is pytest: pytest --model bf16=PATH --model w4a4=PATH",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build the demo panel offline and check it end to end")
    demo.add_argument("pytest_args", nargs="*", help="anything else is passed to pytest (e.g. -m 'not video' -x)")
    inspect = sub.add_parser("inspect", help="print a checkpoint's quant card and lints (exit 1 on an error lint)")
    inspect.add_argument("path", help="checkpoint folder (config.json + safetensors)")
    inspect.add_argument("--json", action="store_true", help="print the card as JSON")
    inspect.add_argument("--static", action="store_true",
                         help="skip the run-time module-name check (no transformers import)")
    inspect.set_defaults(func=cmd_inspect)
    models = sub.add_parser("models", help="convert a packaged model into the cache once and print its folder "
                            "(for --model NAME=FOLDER)")
    models.add_argument("name", choices=["whisper-base", "smollm2"],
                        help="whisper-base: OpenAI Whisper base, speech only; "
                        "smollm2: SmolLM2-135M-Instruct (dequantized Q4_1), text only")
    models.add_argument("--cache", help="omnicheck cache root (default: $OMNICHECK_CACHE or ~/.cache/omnicheck)")
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"] and not {"-h", "--help"} & set(argv[1:]):
        from omnicheck.demo import run_demo

        # everything after `demo` goes to pytest untouched, in order (argparse would take its options for ours);
        # the demo subparser below exists only for --help
        return run_demo(argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
