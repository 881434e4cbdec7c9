"""OFA supernet quality: inherited accuracy vs the same subnets trained from scratch.

Trains a reduced ``mobilenetv3_ofa`` supernet with the library's default schedule
(``supernets.sandwich_schedule``: every kind elastic from the first step, the largest
and smallest subnet at one drawn resolution per step) for 48 epochs on
``--dataset`` (default ``digits_aug``), then for random subnets (plus the largest and
the smallest) compares the held-out accuracy with inherited weights (+ BN
recalibration) against the same subnet trained standalone from scratch. Reports:

* the mean accuracy gap (mean standalone - mean inherited, in points);
* Kendall tau between the inherited ranking and the seed-averaged standalone one;
* the noise ceiling: Kendall tau between two standalone seeds of the same subnets
  (a predictor of standalone accuracy cannot rank better than the training noise lets).

"The same budget" here is the OFA convention of a **fixed standalone recipe**, not
"as many epochs as the supernet": every subnet is trained from scratch with SGD
(Nesterov, lr 0.05 cosine, batch 64) for ``--standalone-epochs`` epochs, whatever the
supernet's own budget, so supernet variants are compared against one fixed ground
truth (and the cache below can serve them all). The default is 12 epochs (4 and 8
epochs, also measured, leave subnets 10.7 and 3.0 points lower on digits_aug at 12/16 px; see
docs/decisions/supernet-quality-protocol.md). The default space keeps all four resolutions of the reduced
``mobilenetv3_ofa`` (12-24 px): with 12/16 px only, the subnets differed by less than
the standalone seed noise and no ranking could be measured.

Standalone results are cached in ``--cache`` (a CSV keyed by dataset, split, space
options, subnet key, seed, epochs, learning rate and batch size), so a second run with
another supernet configuration reuses them; trained supernets are kept under
``bench/out/supernet_quality_runs/<config hash>/`` so evaluation-only options
(``--calib-images``) do not retrain. ``--stage standalone`` only fills the cache
(run it beside a supernet run).

    python bench/supernet_quality.py [--quick] [--dataset digits_aug] [--subnets 16] [--threads 1]

The last line is ``supernet_kendall_tau: <value>``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _results import BenchRun, results_option
from scipy.stats import kendalltau, spearmanr
from torch.utils.data import TensorDataset

from search_spaces import get_space
from supernets import (
    OFASupernet,
    OFATrainConfig,
    accuracy,
    evaluate_subnet,
    sandwich_schedule,
    train_supernet,
)
from supernets.data import load_dataset

OUT = Path(__file__).resolve().parent / "out"
CACHE_FIELDS = ("dataset", "heldout", "data_seed", "space_options", "arch", "seed", "epochs", "lr",
                "batch", "accuracy", "seconds")
INHERITED_FIELDS = ("run", "dataset", "heldout", "calib_images", "arch", "inherited", "config")


def train_standalone(module: torch.nn.Module, data, epochs: int, lr: float, batch: int,
                     seed: int) -> torch.nn.Module:
    """SGD (Nesterov, momentum 0.9, cosine to 0) from scratch on ``data.train``."""
    x, y = data.train.tensors
    per_epoch = max(1, len(x) // batch)
    total = epochs * per_epoch
    opt = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=3e-5)
    module.train()
    step = 0
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        for i in range(per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            for group in opt.param_groups:
                group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / total))
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(module(x[idx]), y[idx]).backward()
            opt.step()
            step += 1
    return module.eval()


def _arch_seed(seed: int, key: str) -> int:
    """Seed of one standalone training: depends on the seed index and the subnet only."""
    return int(np.random.SeedSequence([seed, int(key, 16)]).generate_state(1)[0]) % (2**31)


class StandaloneCache:
    """Standalone accuracies in a CSV, keyed by everything the training depends on."""

    def __init__(self, path: Path | None, common: dict[str, str]) -> None:
        self.path, self.common = path, common

    def _key(self, row: dict[str, str]) -> tuple:
        return tuple(str(row[k]) for k in CACHE_FIELDS[:-2])

    def lookup(self, arch: str, seed: int) -> float | None:
        if self.path is None or not self.path.is_file():
            return None
        want = self._key({**self.common, "arch": arch, "seed": seed})
        with open(self.path, newline="") as fh:
            for row in csv.DictReader(fh):
                if self._key(row) == want:
                    return float(row["accuracy"])
        return None

    def add(self, arch: str, seed: int, acc: float, seconds: float) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.is_file()
        with open(self.path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CACHE_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow({**self.common, "arch": arch, "seed": seed, "accuracy": f"{acc:.6f}",
                             "seconds": f"{seconds:.1f}"})


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode (tiny budgets, no caches)")
    parser.add_argument("--dataset", choices=("digits", "digits_aug"), default="digits_aug")
    parser.add_argument("--heldout", type=float, default=0.3,
                        help="fraction of the images held out (val + test, half each) for scoring "
                             "(0.3: the library's split)")
    parser.add_argument("--subnets", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=2, help="standalone trainings per subnet")
    parser.add_argument("--standalone-epochs", type=int, default=12)
    parser.add_argument("--standalone-lr", type=float, default=0.05)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[12, 16, 20, 24])
    parser.add_argument("--epochs", type=int, default=48,
                        help="supernet epochs (48: see docs/decisions/sandwich-resolution.md)")
    parser.add_argument("--lr", type=float, default=0.1, help="supernet peak learning rate")
    parser.add_argument("--n-random", type=int, default=2, help="random subnets per supernet step")
    parser.add_argument("--sandwich-resolution", choices=("extremes", "random"), default="random",
                        help="resolution of the largest and smallest subnet of each step "
                             "(supernets.PhaseConfig.sandwich_resolution)")
    parser.add_argument("--kd-weight", type=float, default=1.0)
    parser.add_argument("--kd-temperature", type=float, default=1.0)
    parser.add_argument("--calib-images", default="1024",
                        help="training images for BN recalibration of each subnet ('all': every one)")
    parser.add_argument("--stage", choices=("all", "standalone", "inherited"), default="all",
                        help="'standalone': only train the standalone subnets into the cache; "
                             "'inherited': only train (or reuse) the supernet and evaluate the subnets")
    parser.add_argument("--reverse", action="store_true",
                        help="with --stage standalone: go through the subnets last first (two such "
                             "runs in opposite orders share the work through the cache)")
    parser.add_argument("--only-seed", type=int, default=None,
                        help="with --stage standalone: train this seed index only")
    parser.add_argument("--wait", action="store_true",
                        help="wait for missing standalone results (filled by a --stage standalone "
                             "run beside this one) instead of training them")
    parser.add_argument("--cache", type=Path, default=OUT / "supernet_quality_standalone.csv")
    parser.add_argument("--export", type=Path, default=None, metavar="CSV",
                        help="also write the subnets (key, arch, accuracy = standalone seed mean, "
                             "inherited_accuracy, flops, params) here, the format of "
                             "bench/data/*_standalone.csv that predictor_quality.py reads")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    results_option(parser, "supernet_quality")
    args = parser.parse_args()
    if args.quick:
        args.subnets, args.standalone_epochs, args.seeds = 4, 1, 2
    return args


def main() -> None:
    args = parse_args()
    run = BenchRun(args.results, quick=args.quick)  # written by `report` (full runs only)
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, seed=args.seed, val_frac=args.heldout / 2,
                        test_frac=args.heldout / 2)
    heldout = TensorDataset(*(torch.cat([a, b]) for a, b in zip(data.val.tensors, data.test.tensors)))
    calib = len(data.train) if args.calib_images == "all" else int(args.calib_images)
    options = {"width_mult": args.width, "resolutions": list(args.resolutions),
               "input_shape": list(data.input_shape)}
    space = get_space("mobilenetv3_ofa", **options)
    common = {"dataset": args.dataset, "heldout": args.heldout, "data_seed": args.seed,
              "space_options": json.dumps(options, sort_keys=True),
              "epochs": args.standalone_epochs, "lr": args.standalone_lr, "batch": 64}
    cache = StandaloneCache(None if args.quick else args.cache, {k: str(v) for k, v in common.items()})

    # The subnets depend on the seed only (not on the trained weights).
    sampler = OFASupernet.from_space(space, data.num_classes, data.input_shape, seed=args.seed)
    rng = np.random.default_rng(args.seed + 1)
    archs = [sampler.largest_arch, sampler.smallest()]
    while len(archs) < args.subnets:
        arch = sampler.sample(rng)
        if arch.key not in {a.key for a in archs}:
            archs.append(arch)
    del sampler
    print(f"{args.dataset}: {len(data.train)} train / {len(heldout)} held-out images "
          f"(one image = {100 / len(heldout):.3f} points); threads {args.threads}", flush=True)
    print(f"same budget = fixed standalone recipe: every subnet trained from scratch "
          f"{args.standalone_epochs} epochs (SGD lr {args.standalone_lr} cosine, batch 64, "
          f"{args.seeds} seeds), whatever the supernet's budget", flush=True)

    def standalone(i: int, arch) -> tuple[list[float], int]:
        accs, trained = [], 0
        for s in range(args.seeds):
            if args.only_seed is not None and s != args.only_seed:
                continue
            acc = cache.lookup(arch.key, s)
            while acc is None and args.wait:
                time.sleep(30)
                acc = cache.lookup(arch.key, s)
            if acc is None:
                t = time.perf_counter()
                seed = _arch_seed(s, arch.key)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    module = space.build(arch, data.num_classes, data.input_shape)
                    train_standalone(module, data, args.standalone_epochs, args.standalone_lr, 64, seed)
                acc = accuracy(module, heldout)
                cache.add(arch.key, s, acc, time.perf_counter() - t)
                trained += 1
            accs.append(acc)
        return accs, trained

    if args.stage == "standalone":
        t0 = time.perf_counter()
        order = list(enumerate(archs))
        for i, arch in reversed(order) if args.reverse else order:
            accs, trained = standalone(i, arch)
            print(f"{i:>2} {arch.key} " + " ".join(f"{100 * a:6.2f}" for a in accs) +
                  f" ({trained} trained, {time.perf_counter() - t0:.0f} s)", flush=True)
        return

    phases = sandwich_schedule(args.epochs, lr=args.lr, n_random=args.n_random,
                               sandwich_resolution=args.sandwich_resolution)
    if args.quick:
        phases = tuple(dataclasses.replace(p, steps=3, warmup_steps=0) for p in phases)
    config = OFATrainConfig(phases=phases, batch_size=64, seed=args.seed, checkpoint_every=100,
                            kd_weight=args.kd_weight, kd_temperature=args.kd_temperature)
    ident = json.dumps({"config": config.to_dict(), "space_options": options, "data": args.dataset,
                        "heldout": args.heldout}, sort_keys=True)
    run_id = hashlib.sha256(ident.encode()).hexdigest()[:12]
    run_dir = OUT / "supernet_quality_runs" / ("quick" if args.quick else run_id)
    print(f"supernet {run_id}: {args.epochs} epochs, lr {args.lr}, n_random {args.n_random}, "
          f"kd weight {args.kd_weight} temperature {args.kd_temperature}, sandwich resolution "
          f"{args.sandwich_resolution}; BN recalibration on "
          f"{min(calib, len(data.train))} training images; training (or resuming) in {run_dir} ...",
          flush=True)
    t0 = time.perf_counter()
    result = train_supernet(space, config, data, run_dir, resume=not args.quick, progress=False,
                            space_options=options)
    t_super = time.perf_counter() - t0
    net = result.supernet

    inherited, alone = [], []
    trained = 0
    t1 = time.perf_counter()
    rows = []
    for arch in archs:  # inherited first: standalone results may still be coming (--wait)
        inh = evaluate_subnet(net, arch, data, heldout, calib_images=calib, seed=args.seed)
        inherited.append(inh)
        rows.append({"run": run_id, "dataset": args.dataset, "heldout": args.heldout,
                     "calib_images": calib, "arch": arch.key, "inherited": f"{inh:.6f}",
                     "config": ident})
    if not args.quick:
        path = OUT / "supernet_quality_inherited.csv"
        new = not path.is_file()
        with open(path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=INHERITED_FIELDS)
            if new:
                writer.writeheader()
            writer.writerows(rows)
    if args.stage == "inherited":
        print(f"supernet in {t_super:.0f} s; inherited accuracy (%): " +
              " ".join(f"{100 * a:.2f}" for a in inherited) + f"; mean {100 * np.mean(inherited):.2f}")
        return
    print(f"{'subnet':<18} {'res':>3} {'MFLOPs':>7} {'inherited':>9} " +
          " ".join(f"{'seed' + str(s):>6}" for s in range(args.seeds)), flush=True)
    for i, arch in enumerate(archs):
        accs, n = standalone(i, arch)
        trained += n
        alone.append(accs)
        flops = space.complexity(arch, data.input_shape, data.num_classes).flops / 1e6
        label = "largest" if i == 0 else "smallest" if i == 1 else arch.key
        print(f"{label:<18} {arch['resolution.size']:>3} {flops:7.2f} {100 * inherited[i]:9.2f} " +
              " ".join(f"{100 * a:6.2f}" for a in accs), flush=True)
    t_eval = time.perf_counter() - t1
    if args.export is not None:
        export(args.export, space, archs, data, inherited, alone)
    report(args, result, t_super, t_eval, trained, np.array(inherited), np.array(alone), run)


def export(path: Path, space, archs, data, inherited: list[float], alone: list[list[float]]) -> None:
    """The subnets with both accuracies, as ``predictor_quality.py`` reads a standalone CSV."""
    flops, params = space.complexity_batch(archs, data.input_shape, data.num_classes)
    rows = [{"key": arch.key, "arch": arch.to_json(), "accuracy": f"{np.mean(accs):.6f}",
             "inherited_accuracy": f"{inh:.6f}", "flops": int(f), "params": int(n), "seeds": len(accs)}
            for arch, inh, accs, f, n in zip(archs, inherited, alone, flops, params, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} subnets to {path}")


def report(args, result, t_super: float, t_eval: float, trained: int, inherited: np.ndarray,
           alone: np.ndarray, run: BenchRun) -> None:
    """Print the gap, the taus and the noise ceiling; the last line is the tau."""
    seeds = range(alone.shape[1])
    mean_alone = alone.mean(1)
    tau = kendalltau(inherited, mean_alone).statistic
    rho = spearmanr(inherited, mean_alone).statistic
    per_seed = [kendalltau(inherited, alone[:, s]).statistic for s in seeds]
    ceiling = [kendalltau(alone[:, a], alone[:, b]).statistic for a in seeds for b in seeds if a < b]
    gap = 100 * (mean_alone.mean() - inherited.mean())
    print(f"supernet: {result.steps} steps ({args.epochs} epochs, width {args.width}, resolutions "
          f"{args.resolutions}) in {t_super:.0f} s (0 s: reused); {len(inherited)} subnets evaluated "
          f"in {t_eval:.0f} s, {trained} standalone trainings run ({alone.size - trained} from the cache)")
    print(f"mean accuracy: inherited {100 * inherited.mean():.2f}%, standalone "
          f"{100 * mean_alone.mean():.2f}%, gap (standalone - inherited) {gap:+.2f} points")
    print(f"largest: inherited {100 * inherited[0]:.2f}%, standalone {100 * mean_alone[0]:.2f}%; "
          f"smallest: inherited {100 * inherited[1]:.2f}%, standalone {100 * mean_alone[1]:.2f}%")
    print(f"inherited accuracy range {100 * inherited.min():.2f}..{100 * inherited.max():.2f}%; "
          f"standalone {100 * mean_alone.min():.2f}..{100 * mean_alone.max():.2f}%; "
          f"mean |seed difference| {100 * np.abs(alone[:, 0] - alone[:, -1]).mean():.2f} points")
    print(f"Kendall tau inherited vs each standalone seed: {', '.join(f'{t:.3f}' for t in per_seed)}")
    if ceiling:
        print(f"noise ceiling: Kendall tau standalone seed vs seed {np.mean(ceiling):.3f}")
    print(f"Spearman rho {rho:.3f}")
    run.note(f"{len(inherited)} subnets; supernet {result.steps} steps ({args.epochs} epochs, sandwich "
             f"resolution {args.sandwich_resolution}, width {args.width}, resolutions {args.resolutions}); "
             f"standalone {args.standalone_epochs} epochs x {alone.shape[1]} seeds; {args.dataset}")
    run.figure("gap (standalone - inherited)", round(float(gap), 2), "points", target="<= 1.5 points")
    run.figure("Spearman rho", round(float(rho), 3))
    if ceiling:
        run.figure("noise ceiling: tau standalone seed vs seed", round(float(np.mean(ceiling)), 3), show=True)
    run.figure("largest: inherited", round(100 * float(inherited[0]), 2), "%")
    run.figure("largest: standalone", round(100 * float(mean_alone[0]), 2), "%")
    run.figure("smallest: inherited", round(100 * float(inherited[1]), 2), "%")
    run.figure("smallest: standalone", round(100 * float(mean_alone[1]), 2), "%")
    run.figure("supernet_kendall_tau", round(float(tau), 3), target=">= 0.7", headline=True,
               note="inherited vs seed-averaged standalone accuracy")
    run.finish()


if __name__ == "__main__":
    main()
