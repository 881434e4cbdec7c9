"""Version of the package and the manifest every run folder gets.

``manifest.json`` records what produced a run: the package version and git commit,
the command line, the resolved experiment, the Python and torch versions, where the
networks ran (device, precision, torch threads, data-parallel world size) and the
start time. This module imports neither torch nor the other packages at import time
(``nas --version`` uses it), only when a manifest is written.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from nas.config import redact

__all__ = ["MANIFEST", "git_commit", "version", "version_string", "write_manifest"]

MANIFEST = "manifest.json"
_ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def version() -> str:
    """The installed package's version (``importlib.metadata``), ``"unknown"`` if not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as metadata_version

    try:
        return metadata_version("hwnas")
    except PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the code's git checkout (``+dirty`` with uncommitted changes), or None
    when the code is not a git checkout (an installed wheel) or git is absent."""
    if not (_ROOT / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(_ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(_ROOT), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def version_string() -> str:
    """``"hwnas 0.1.0 (git 1a2b3c4d...)"``: what ``nas --version`` prints."""
    commit = git_commit()
    return f"hwnas {version()}" + (f" (git {commit})" if commit else "")


def write_manifest(run_dir: str | Path, experiment: Any, command: Sequence[str] | None = None,
                   compute: Mapping[str, Any] | None = None) -> Path:
    """Write ``<run_dir>/manifest.json`` (overwritten by each invocation in that folder).

    Args:
        run_dir: the run folder.
        experiment: the resolved experiment (a config dataclass or plain data).
        command: the command line (default ``sys.argv``).
        compute: where the networks run, as resolved (``supernets.Runtime.describe()``:
            device, precision, channels_last, threads, world_size); default: this
            process's torch threads and world size only.
    """
    import torch

    from nas.config import to_dict
    from nas.run._stages import atomic_write_text
    from supernets import distributed

    run_dir = Path(run_dir)
    resolved = dict(compute) if compute is not None else {
        "threads": torch.get_num_threads(), "world_size": distributed.world_size()}
    record = {
        "version": version(), "git_commit": git_commit(),
        "command": list(sys.argv if command is None else command),
        "experiment": redact(to_dict(experiment)),
        "python": platform.python_version(), "torch": torch.__version__,
        "platform": platform.platform(), "compute": resolved,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = run_dir / MANIFEST
    atomic_write_text(path, json.dumps(record, indent=1, default=str))
    return path
