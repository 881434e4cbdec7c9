"""Wall time of each stage of the quickstart (``nas run experiments/quickstart.yaml``).

Usage::

    python bench/quickstart.py                 # a fresh run in a temporary folder
    python bench/quickstart.py --run-dir DIR   # read the stage times an earlier run recorded

Each stage's time is what the run recorded in ``DIR/.stages/<stage>.json`` when the
stage ran (a stage reused from cache records 0 s in that run, so use a fresh folder).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _results import BenchRun

ROOT = Path(__file__).resolve().parents[1]


def stage_times(run_dir: Path) -> dict[str, float]:
    return {p.stem: float(json.loads(p.read_text())["seconds"])
            for p in sorted((run_dir / ".stages").glob("*.json"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "experiments" / "quickstart.yaml"))
    parser.add_argument("--run-dir", help="read the times of an existing run instead of running")
    args = parser.parse_args()
    run = BenchRun("quickstart")
    if args.run_dir:
        run_dir, wall = Path(args.run_dir), None
    else:
        from nas.experiment import load_experiment
        from nas.run import run_experiment

        run_dir = Path(tempfile.mkdtemp(prefix="quickstart-"))
        start = time.perf_counter()
        run_experiment(load_experiment(args.config, "run"), run_dir, progress=False, echo=False)
        wall = time.perf_counter() - start
    times = stage_times(run_dir)
    for name, seconds in times.items():
        print(f"{name:<28} {seconds:8.1f} s")
        run.figure(f"stage {name}", round(seconds, 1), "s")
    total = sum(times.values())
    print(f"{'stages total':<28} {total:8.1f} s" + (f"   (wall incl. set-up: {wall:.1f} s)" if wall else ""))
    run.figure("stages total", round(total, 1), "s", show=True)
    if args.run_dir:
        run.note(f"stage times read back from {args.run_dir} (recorded when that run ran)")
    run.figure("quickstart_total_s", round(wall if wall is not None else total, 1), "s",
               headline=True, note="wall time of the whole run incl. set-up" if wall else "stages total")
    run.finish()


if __name__ == "__main__":
    main()
