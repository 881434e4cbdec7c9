"""Stage cache of a run directory: each stage's artefact is keyed by its inputs.

A stage is done when ``<run_dir>/.stages/<name>.json`` exists and records the
same key (a hash of the stage's inputs and of its upstream stages' keys). The
record is written last, atomically, after the artefact: a run killed mid-stage
leaves no record, so a later run redoes that stage instead of trusting a
half-written artefact.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.config import redact

__all__ = ["StageCache", "stable_hash", "atomic_write_text"]


def stable_hash(*parts: Any) -> str:
    """Hash of JSON-able parts (sorted keys), stable across processes."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


class StageCache:
    """Records finished stages of one run directory.

    Args:
        run_dir: the run directory.
        log: called with one summary line per stage.
    """

    def __init__(self, run_dir: str | Path, log: Callable[[str], None] = print) -> None:
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / ".stages"
        self.log = log
        self.timings: dict[str, float] = {}

    def _record(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def done(self, name: str, key: str) -> dict[str, Any] | None:
        """The stage's stored result if it finished with this key, else None."""
        path = self._record(name)
        if not path.is_file():
            return None
        record = json.loads(path.read_text())
        return record["result"] if record.get("key") == key else None

    def run(self, name: str, key: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Return the cached result of stage ``name`` for ``key``, or run ``fn`` and record it.

        ``fn`` returns a small JSON-able summary of what it wrote (paths, figures).
        """
        cached = self.done(name, key)
        if cached is not None:
            self.log(f"[{name}] cached ({key})")
            self.timings[name] = 0.0
            return cached
        start = time.perf_counter()
        result = fn()
        self.timings[name] = time.perf_counter() - start
        atomic_write_text(self._record(name), json.dumps({"key": key, "result": redact(result),
                                                          "seconds": self.timings[name]}, indent=1))
        return result

    def invalidate(self, name: str) -> None:
        self._record(name).unlink(missing_ok=True)
