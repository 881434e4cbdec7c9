"""The ``nas`` command line: a thin layer over the Python API.

Each sub-command lives in its own module exposing ``register(subparsers)``,
which adds its parser and sets ``func(args) -> int``. Add a module to
``_COMMANDS`` to add a command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from nas.errors import USER_ERRORS

__all__ = ["main", "build_parser"]

_COMMANDS = (
    "nas.cli.spaces",
    "nas.cli.search",
    "nas.cli.lut",
    "nas.cli.supernet",
    "nas.cli.predict",
    "nas.cli.run",
    "nas.cli.darts",
    "nas.cli.sweep",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas", description="Hardware-aware neural architecture search."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in _COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nas`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"nas {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"nas {args.command}: error: no such file: {exc.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nas {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
