"""The `omnicheck` command: `demo` runs the built-in panel; everything else is `pytest --model ...`."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnicheck",
        description="Check quantized multimodal models against their reference. "
        "The main entry point is pytest: pytest --model bf16=PATH --model w4a4=PATH",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="build the demo panel offline and check it end to end")
    demo.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to pytest (e.g. -m 'not video')")
    demo.set_defaults(func=cmd_demo)
    return parser


def cmd_demo(args: argparse.Namespace) -> int:
    from omnicheck.demo import run_demo

    return run_demo(args.pytest_args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
