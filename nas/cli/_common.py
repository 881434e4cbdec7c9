"""Helpers shared by CLI commands (light imports only: see ``nas.cli``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nas.errors import ConfigError


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["width_mult=0.5", "resolutions=[32,48]"]`` -> options; values are JSON or strings."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"space option {pair!r} must look like key=value")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def space_from_args(name: str, option_pairs: list[str] | None) -> Any:
    from search_spaces import get_space

    return get_space(name, **parse_options(option_pairs))


def read_arch(text: str) -> Any:
    """An architecture from inline JSON or from a path to a JSON file."""
    from search_spaces import Architecture

    stripped = text.strip()
    if not stripped.startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"architecture {text!r} is neither JSON nor an existing file")
        try:
            stripped = path.read_text()
            data = json.loads(stripped) if stripped.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"architecture file {path}: not valid JSON ({exc})") from None
        if isinstance(data, dict) and "arch" in data and isinstance(data["arch"], dict):
            return Architecture(data["arch"])
    return Architecture.from_json(stripped)


def count(lowest: int = 0, highest: int = 10_000_000):
    """An argparse ``type``: an integer in [lowest, highest] (a bad one is argparse's one line)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not lowest <= value <= highest:
            raise argparse.ArgumentTypeError(f"must be in [{lowest}, {highest:,}], got {value}")
        return value

    parse.__name__ = "count"
    return parse


def add_space_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--option", "-O", action="append", metavar="KEY=VALUE",
                        help="space factory option, e.g. -O width_mult=0.5 (repeatable)")


def run_dir(out: str | None, name: str) -> Path:
    """``--out``, else ``runs/<name>`` in the working directory."""
    return Path(out) if out else Path("runs") / name
