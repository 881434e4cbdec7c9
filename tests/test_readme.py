"""The README's Python examples run as written, and its set-up commands match CI."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _blocks(lang: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write runs/ in the working directory
    blocks = _blocks("python")
    assert len(blocks) >= 2
    namespaces = []
    for code in blocks:
        namespaces.append({"__name__": "readme"})
        exec(compile(code, "README.md", "exec"), namespaces[-1])  # our own file
    pipeline = next(ns for ns in namespaces if "exported" in ns)
    # the exported model is the subnet as evaluated (BN recalibrated), and it is a good one
    assert pipeline["exported"] == pipeline["test_acc"]
    assert pipeline["test_acc"] > 0.85


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = [b.strip() for b in _blocks("bash")]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci
    assert all(c.startswith("pip install torch==2.13.0 && ") for c in commands)
