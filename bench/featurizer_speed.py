"""Architectures per second of ``ArchFeaturizer.transform`` on new ``mobilenetv3_ofa`` archs.

Three featurizers with the predictors' default encoding (``compact``), on the same
batches of architectures the space's decision table draws (as search engines make
them), layer caches warm:

* ``complexity=False``: decisions only;
* ``complexity=True``: plus log FLOPs / params through ``space.complexity_batch``
  (the vectorised layer sums);
* ``per-arch (old)``: ``complexity=True`` computed as before, ``space.complexity``
  arch by arch (``space.layers`` then a Python sum), the baseline.

Each repeat draws fresh architectures and times the three in turn (the order
rotates), so machine drift hits all of them; the figure is the median rate over
repeats. Two sources of architectures: rows of the decision table (``sample_batch``,
what search engines make) and plain sampled dicts (``space.sample``: no index rows,
so every featurizer first looks each decision up). The last line is the speed-up of
``complexity=True`` over the old path on decision-table rows.

    python bench/featurizer_speed.py [--quick] [--n 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import numpy as np
import torch
from _results import BenchRun

from predictors import ArchFeaturizer
from search_spaces import SearchSpace, get_space


class PerArchFeaturizer:
    """``ArchFeaturizer(complexity=True)`` as it was before ``complexity_batch`` (the baseline):
    the other features batched, FLOPs and params through ``space.complexity`` arch by arch."""

    def __init__(self, space: SearchSpace, encoding: str) -> None:
        self.space = space
        self.plain = ArchFeaturizer(space, encoding=encoding, complexity=False)

    def transform(self, archs: list[Any]) -> np.ndarray:
        costs = [self.space.complexity(a) for a in archs]
        logs = np.log1p(np.array([[c.flops, c.params] for c in costs], float)).astype(np.float32)
        return np.concatenate([self.plain.transform(archs), logs], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 archs, 2 repeats")
    parser.add_argument("--n", type=int, default=10_000, help="architectures per batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    n, repeats = (1000, 2) if args.quick else (args.n, args.repeats)
    run = BenchRun("featurizer_speed", quick=args.quick)
    run.note(f"compact encoding, {n:,} new mobilenetv3_ofa archs per repeat, {repeats} repeats, "
             f"{args.threads} torch thread(s); rates are medians over repeats")
    torch.set_num_threads(args.threads)

    space = get_space("mobilenetv3_ofa")
    featurizers = {
        "complexity=False": ArchFeaturizer(space, encoding="compact", complexity=False),
        "complexity=True": ArchFeaturizer(space, encoding="compact", complexity=True),
        "per-arch (old)": PerArchFeaturizer(space, encoding="compact"),
    }
    # warm the per-layer caches (fvcore counts, the vector index) on other archs
    t0 = time.perf_counter()
    warm = space.sample_batch(2000, 10_000)
    featurizers["complexity=True"].transform(warm)
    print(f"warm-up: 2,000 archs, first layer counts and index fill {time.perf_counter() - t0:.1f} s")

    sources = {
        "decision-table rows (sample_batch, as search engines make them)": lambda r: space.sample_batch(n, r),
        "dicts without rows (space.sample one by one)": lambda r: [
            space.sample(np.random.default_rng([r, i])) for i in range(n)],
    }
    ratios = {}
    for (source, make), short in zip(sources.items(), ("table rows", "dicts"), strict=True):
        median = measure(featurizers, make, n, repeats, source, args.threads)
        cost = median["complexity=False"] / median["complexity=True"]
        print(f"  complexity=False / complexity=True: "
              f"{cost:.2f}x (cost of the complexity features); "
              f"complexity=True / per-arch (old): {median['complexity=True'] / median['per-arch (old)']:.1f}x")
        ratios[source] = median["complexity=True"] / median["per-arch (old)"]
        for name, rate in median.items():
            run.figure(f"{short}: {name}", round(rate), "archs/s")
        # the target: complexity features within ~2x of the decisions alone (engines' table rows)
        run.figure(f"{short}: complexity=False / complexity=True", round(cost, 2), "x",
                   target="<= 2x" if short == "table rows" else None)
        if short != "table rows":
            run.figure(f"{short}: complexity=True / per-arch (old)", round(ratios[source], 1), "x")
    run.figure("featurizer_speed_ratio", round(next(iter(ratios.values())), 1), "x", headline=True,
               note="complexity=True / per-arch (old), decision-table rows")
    run.finish()


def measure(featurizers: dict[str, Any], make: Any, n: int, repeats: int, source: str,
            threads: int) -> dict[str, float]:
    """Median archs/s of each featurizer over ``repeats`` fresh batches from ``make(repeat)``."""
    names = list(featurizers)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        archs = make(r)
        outputs = {}
        for name in names[r % len(names):] + names[: r % len(names)]:
            gc.collect()  # the old path leaves garbage: collect it outside the others' timing
            t0 = time.perf_counter()  # no featurizer caches per arch: the same archs stay "new"
            outputs[name] = featurizers[name].transform(archs)
            rates[name].append(n / (time.perf_counter() - t0))
        np.testing.assert_array_equal(outputs["complexity=True"], outputs["per-arch (old)"])
        np.testing.assert_array_equal(outputs["complexity=True"][:, :-2], outputs["complexity=False"])
    print(f"ArchFeaturizer.transform (compact encoding), {n:,} new mobilenetv3_ofa archs as {source}; "
          f"{repeats} repeats, {threads} torch thread(s): archs/s median [min-max]")
    median = {name: float(np.median(v)) for name, v in rates.items()}
    for name in names:
        print(f"  {name:18s} {median[name]:>10,.0f}  [{min(rates[name]):,.0f}-{max(rates[name]):,.0f}]")
    return median

if __name__ == "__main__":
    main()
