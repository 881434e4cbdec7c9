"""The ``nas`` command line: a thin layer over the Python API.

Each sub-command lives in its own module exposing ``register(subparsers)``, which
adds its parser and sets ``func(args) -> int``. Add a module to ``_COMMANDS`` to add
a command. Command modules import nothing heavy at module level (torch, the
packages): ``nas --help`` and every ``--help`` start without torch.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from nas.errors import ConfigError, is_user_error

__all__ = ["build_parser", "main"]

_OS_ERRORS = {
    errno.ENOSPC: "no space left on the device while writing",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "expected a file, found a folder",
    errno.EDQUOT: "disk quota exceeded while writing",
}

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


class _Version(argparse.Action):
    """``--version``: computed only when asked (it may run git)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kw) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from nas.manifest import version_string

        print(version_string())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas", description="Hardware-aware neural architecture search.")
    parser.add_argument("--version", action=_Version,
                        help="print the package version (and git commit) and exit")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                        help="import a Python module or .py file before the command runs, so that "
                             "the spaces, ops, engines, predictors, devices and objective types it "
                             "registers can be named (repeatable)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in _COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def _write_failed(exc: Exception) -> bool:
    """torch's own report of a failed write (``torch.save`` on a full disk says this, not ENOSPC)."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("PytorchStreamWriter failed" in text
                                              or "file write failed" in text)


def _load_plugins(specs: list[str]) -> None:
    """Import the ``--plugin`` modules (relative file paths: from the working directory)."""
    if not specs:
        return
    from search_spaces import SearchSpaceError, load_plugin

    for spec in specs:
        try:
            load_plugin(spec)
        except SearchSpaceError as exc:
            raise ConfigError(f"--plugin {spec}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nas`` console script; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.command_line = ["nas", *argv]  # recorded in each run folder's manifest.json
    try:
        _load_plugins(args.plugin)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"nas {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`nas ... | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except FileNotFoundError as exc:
        print(f"nas {args.command}: error: no such file: {exc.filename}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _OS_ERRORS:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"nas {args.command}: error: {_OS_ERRORS[exc.errno]}{where}", file=sys.stderr)
        return 2
    except Exception as exc:
        from nas.config import redact

        if _write_failed(exc):
            message = ("writing a file failed (is the disk full, or the file system read-only?); "
                       "torch said: " + str(exc).strip().splitlines()[-1][:200])
        elif is_user_error(exc):
            message = str(exc)
        else:
            raise
        print(f"nas {args.command}: error: {redact(message)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
