"""The CLI starts without torch, prints its version, and nothing imports ``nas.cli``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from nas.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)


def _imported(stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` output."""
    return {m.group(1).strip().split(".")[0]
            for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(.+)$", stderr, re.M)}


def test_help_does_not_import_torch():
    done = _python("-X", "importtime", "-m", "nas.cli", "--help")
    assert done.returncode == 0 and "usage: nas" in done.stdout
    imported = _imported(done.stderr)
    assert "nas" in imported  # the parsing worked
    assert not imported & {"torch", "numpy", "pandas", "search_spaces", "supernets", "hardware",
                           "predictors", "optuna"}, sorted(imported)


def test_no_subcommand_help_imports_torch():
    code = """
import sys
from nas.cli import build_parser, main
parser = build_parser()
commands = [a for a in parser._subparsers._group_actions[0].choices]
nested = {"supernet": ["train", "eval", "extract"], "darts": ["search", "plot"],
          "lut": ["build", "validate", "show"], "predict": ["list", "fit", "eval", "curve", "proxies"]}
for command in commands:
    for argv in ([command, "--help"], *([command, s, "--help"] for s in nested.get(command, []))):
        try:
            main(argv)
        except SystemExit:
            pass
print("TORCH", "torch" in sys.modules, len(commands))
"""
    done = _python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("TORCH False"), done.stdout[-500:]


def test_version(capsys):
    done = _python("-m", "nas.cli", "--version")
    assert done.returncode == 0 and re.match(r"hwnas \S+", done.stdout)
    from nas.manifest import git_commit, version

    assert version() in done.stdout
    if git_commit():
        assert git_commit().split("+")[0] in done.stdout


def test_nothing_imports_the_cli():
    """The CLI is the top floor: no module of the packages imports it."""
    offenders = []
    for package in ("nas", "search_spaces", "supernets", "predictors", "hardware"):
        for path in (ROOT / package).rglob("*.py"):
            if path.is_relative_to(ROOT / "nas" / "cli"):
                continue
            if re.search(r"^\s*(from|import)\s+nas\.cli\b", path.read_text(), re.M):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_user_errors_are_classified_without_importing_packages():
    code = """
import sys
from nas.errors import ConfigError, is_user_error
assert is_user_error(ConfigError("x")) and not is_user_error(RuntimeError("x"))
print("TORCH", "torch" in sys.modules)
"""
    done = _python("-c", code)
    assert done.returncode == 0 and "TORCH False" in done.stdout, done.stderr


def test_a_bug_is_not_reported_as_a_user_error(monkeypatch):
    import pytest

    from nas.cli import spaces

    def broken(args):
        raise TypeError("a bug")

    monkeypatch.setattr(spaces, "cmd_spaces", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["spaces"])


def test_package_names_resolve_lazily():
    import nas

    assert all(getattr(nas, name) is not None for name in nas.__all__)
    from nas.errors import USER_ERRORS, NasError

    assert NasError in USER_ERRORS and len(USER_ERRORS) == 6
