"""Results files of the benches: every script records its figures through :class:`BenchRun`.

A run writes ``bench/results/<name>.json`` (``--quick`` smoke runs write under
``bench/out/results/`` instead, so they never replace the committed figures) with the
command, the git commit and whether the tree was dirty, the machine, the load at the
start and the end, the timestamp, the wall time and the figures (name, value, unit,
target where the bench has one). It then prints the results path and, last, the
headline figures as ``name: value`` lines. ``python bench/report.py`` turns the
results files into the table of bench/README.md.

    run = BenchRun("lut_speed", quick=args.quick)
    ...
    run.figure("lut_speed", rate, "archs/s", target=">= 100000", headline=True)
    run.finish()
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import operator
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
QUICK_RESULTS = ROOT / "bench" / "out" / "results"
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Figure:
    """One figure of a bench: ``target`` is a string such as ``">= 0.9"`` or ``None``."""

    name: str
    value: float | int | str | None
    unit: str = ""
    target: str | None = None
    met: bool | None = None
    headline: bool = False
    show: bool = False
    note: str | None = None


def target_met(value: object, target: str | None) -> bool | None:
    """Whether ``value`` meets a target of the form ``"<op> <number>"`` (None if not such)."""
    if target is None or not isinstance(value, int | float):
        return None
    op, _, rest = target.partition(" ")
    try:  # the number may carry its unit: ">= 90%", ">= 2x", "<= 1.5 points"
        return bool(_OPS[op](value, float(rest.split()[0].replace(",", "").rstrip("%x"))))
    except (KeyError, ValueError, IndexError):
        return None


def load() -> dict[str, object]:
    """``os.getloadavg()`` and the ``uptime`` line (what other jobs were doing)."""
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        uptime = None
    return {"loadavg": [round(v, 2) for v in os.getloadavg()], "uptime": uptime}


def machine() -> dict[str, object]:
    """CPU model, cores and the versions the figures depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("numpy", "torch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), **versions}


def git_state() -> dict[str, object]:
    """HEAD and whether the tree differs from it (results files and Markdown not counted:
    they cannot change a figure)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
    try:
        commit = git("rev-parse", "HEAD").strip()
        changes = [line for line in git("status", "--porcelain", "--untracked-files=all").splitlines()
                   if not (line[3:].startswith("bench/results/") or line.endswith(".md"))]
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(changes)}


def results_option(parser: argparse.ArgumentParser, default: str) -> None:
    """``--results NAME``: for benches whose variants are separate current figures."""
    parser.add_argument("--results", default=default, metavar="NAME",
                        help=f"write the figures to bench/results/NAME.json (default {default})")


class BenchRun:
    """Collects one bench run's figures and writes its results file.

    Args:
        name: the results file's name (``bench/results/<name>.json``), usually the
            script's name.
        quick: a smoke run: written under ``bench/out/results/`` (not committed).
    """

    def __init__(self, name: str, *, quick: bool = False) -> None:
        self.name, self.quick = name, quick
        self.figures: list[Figure] = []
        self.notes: list[str] = []
        self._start = time.perf_counter()
        self._record: dict[str, object] = {
            "bench": name,
            "command": "python " + shlex.join(sys.argv),
            "argv": list(sys.argv),
            "reproduced": True,
            "quick": quick,
            "measured": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git": git_state(),
            "machine": machine(),
            "load_start": load(),
        }

    def figure(self, name: str, value: float | int | str | None, unit: str = "", *,
               target: str | None = None, met: bool | None = None, headline: bool = False,
               show: bool = False, note: str | None = None) -> None:
        """Record a figure; ``headline`` ones end the output as ``name: value`` and, like
        ``show`` ones and those with a target, appear in bench/README.md's table."""
        if isinstance(value, float):
            value = round(value, 6)
        if met is None:
            met = target_met(value, target)
        self.figures.append(Figure(name, value, unit, target, met, headline, show, note))

    def note(self, text: str) -> None:
        """A line of context kept in the results file (settings, caveats)."""
        self.notes.append(text)

    def finish(self) -> Path:
        """Write the results file, print its path, then the headline lines (the last lines)."""
        record = {**self._record, "load_end": load(),
                  "wall_s": round(time.perf_counter() - self._start, 1),
                  "notes": self.notes, "figures": [asdict(f) for f in self.figures]}
        path = write(self.name, record, quick=self.quick)
        print(f"results: {_shown(path)}")
        for f in self.figures:
            if f.headline:
                print(f"{f.name}: {'n/a' if f.value is None else f.value}")
        return path


def write(name: str, record: dict[str, object], *, quick: bool = False) -> Path:
    """Write ``record`` as ``<name>.json`` (committed results, or the quick folder)."""
    folder = QUICK_RESULTS if quick else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return path


def read_all(folder: Path = RESULTS) -> list[dict[str, object]]:
    """Every results file of ``folder``, sorted by name."""
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)
