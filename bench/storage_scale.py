"""Storage at scale: evaluations/s stored, RSS per evaluation and resume time of a search.

A search with cheap objectives (nas.testing's toy problem on ``mobilenetv3_ofa``: linear
functions of the encoding, microseconds each, like a latency table or a predictor)
writes every evaluation to a SQLite study (``nsga2``, batches of 50, the experiment
default). At 10k, 50k and 200k evaluations it reports the end-to-end rate of the search
with storage (and, at the smallest size, without: an in-memory study), the growth of
the resident memory during the search per evaluation (sampled at each batch), and the
time to resume the finished study in a fresh process (open, index every evaluation,
rebuild the whole history and front).

    python bench/storage_scale.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import BenchRun  # noqa: E402

from nas import testing  # noqa: E402
from nas.search import evaluate_batch, get_engine, run_search  # noqa: E402
from search_spaces import get_space  # noqa: E402

BATCH = 50


def rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def search(n: int, storage: str | None, resume: bool = False) -> dict[str, float]:
    """Run (or resume) the bench's search to ``n`` evaluations; seconds and RSS figures."""
    problem = testing.toy_problem(get_space("mobilenetv3_ofa"))
    samples: list[int] = []

    def evaluator(archs):
        samples.append(rss_bytes())
        return evaluate_batch(problem, archs)

    start_rss = rss_bytes()
    t = time.perf_counter()
    result = run_search(problem, get_engine("nsga2", problem.space, seed=0, population_size=BATCH),
                        n, batch_size=BATCH, storage=storage, study_name="scale", resume=resume,
                        progress=False, evaluator=evaluator)
    seconds = time.perf_counter() - t
    assert len(result) == n and result.history["arch_key"].is_unique
    first = samples[0] if samples else start_rss
    return {"seconds": seconds, "rss_growth": (max(samples, default=first) - first),
            "rss_end": rss_bytes() - start_rss, "evaluated": len(samples) * BATCH}


def resume_in_fresh_process(n: int, storage: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--resume", storage, str(n)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--resume", nargs=2, metavar=("STORAGE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.resume:  # child: resume the finished study, print its figures as JSON
        print(json.dumps(search(int(args.resume[1]), args.resume[0], resume=True)))
        return
    run = BenchRun("storage_scale", quick=args.quick)
    sizes = (300, 1200) if args.quick else (10_000, 50_000, 200_000)
    memory = search(sizes[0], None)
    rate_memory = sizes[0] / memory["seconds"]
    print(f"in memory, {sizes[0]} evaluations: {rate_memory:.0f} evaluations/s")
    run.figure(f"in-memory rate at {sizes[0]}", round(rate_memory), "evaluations/s",
               note="engine + objectives, nothing stored")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/scale.db"
            stored = search(n, url)
            resumed = resume_in_fresh_process(n, url)
            size_mb = Path(tmp, "scale.db").stat().st_size / 2**20
        rate, per_eval = n / stored["seconds"], stored["rss_growth"] / n
        print(f"{n} evaluations: {rate:.0f} evaluations/s stored, RSS growth {per_eval:.0f} B/evaluation "
              f"during the search ({stored['rss_end'] / n:.0f} B/evaluation with the returned "
              f"history), resume {resumed['seconds']:.1f} s (re-evaluated {resumed['evaluated']}), "
              f"database {size_mb:.0f} MiB")
        last = n == sizes[-1]
        run.figure(f"stored rate at {n}", round(rate), "evaluations/s", target=">= 5000",
                   headline=last, note="end to end: engine, objectives, SQLite study")
        run.figure(f"RSS growth at {n}", round(per_eval), "B/evaluation", target="< 1024",
                   headline=last, note="during the search loop")
        run.figure(f"RSS with history at {n}", round(stored["rss_end"] / n), "B/evaluation",
                   note="after run_search returned its SearchResult (whole history)")
        run.figure(f"resume time at {n}", round(resumed["seconds"], 2), "s", target="< 30",
                   headline=last, note="fresh process: open, index, rebuild history and front")
        run.figure(f"database size at {n}", round(size_mb, 1), "MiB")
    run.finish()


if __name__ == "__main__":
    main()
