"""OFA supernet quality on digits: inherited accuracy vs training from scratch.

Trains a reduced ``mobilenetv3_ofa`` supernet with the library's default schedule
(``supernets.sandwich_schedule``: every kind elastic from the first step), then for random
subnets compares the accuracy with inherited weights (+ BN recalibration) against
the same subnet trained standalone from scratch (SGD, cosine schedule, batch 64,
``--standalone-epochs`` epochs) with ``--seeds`` seeds. Reports:

* the mean accuracy gap (mean standalone - mean inherited, in points);
* Kendall tau between the inherited ranking and the seed-averaged standalone one;
* the noise ceiling: Kendall tau between two standalone seeds of the same subnets
  (a predictor of standalone accuracy cannot rank better than the training noise lets).

Digits is easy and standalone accuracies of these subnets span ~2 points, so the
defaults hold out half of the images (898 val + test images scored, 899 train; one
image is 0.11 points) and report the seed-vs-seed noise ceiling. (Adding resolution 8
to widen the spread was tried: it hurt the shared weights badly, random subnets'
inherited accuracy fell to 55-80%; see bench/README.md.)

    python bench/supernet_quality.py [--quick] [--subnets 20] [--seeds 2] [--threads 2]

The last line is ``supernet_kendall_tau: <value>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau, spearmanr
from torch.utils.data import TensorDataset

from search_spaces import get_space
from supernets import OFATrainConfig, evaluate_subnet, sandwich_schedule, train_supernet
from supernets._ofa.evaluate import accuracy
from supernets.data import load_dataset


def train_standalone(module: torch.nn.Module, data, epochs: int, lr: float, batch: int,
                     seed: int) -> torch.nn.Module:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode (tiny budgets)")
    parser.add_argument("--subnets", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=2, help="standalone trainings per subnet")
    parser.add_argument("--epochs", type=int, default=24, help="supernet epochs (all phases)")
    parser.add_argument("--standalone-epochs", type=int, default=12)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[12, 16])
    parser.add_argument("--heldout", type=float, default=0.5,
                        help="fraction of the images held out (val + test) for scoring")
    parser.add_argument("--lr", type=float, default=0.1, help="supernet peak learning rate")
    parser.add_argument("--standalone-lr", type=float, default=0.05)
    parser.add_argument("--calib-images", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.subnets, args.standalone_epochs, args.seeds = 4, 1, 2
    torch.set_num_threads(args.threads)
    data = load_dataset("digits", seed=args.seed, val_frac=args.heldout / 2, test_frac=args.heldout / 2)
    heldout = TensorDataset(*(torch.cat([a, b]) for a, b in zip(data.val.tensors, data.test.tensors)))
    options = {"width_mult": args.width, "resolutions": list(args.resolutions),
               "input_shape": list(data.input_shape)}
    space = get_space("mobilenetv3_ofa", **options)
    phases = sandwich_schedule(args.epochs, lr=args.lr)
    if args.quick:
        phases = tuple(dataclasses.replace(p, steps=3, warmup_steps=0) for p in phases)
    config = OFATrainConfig(space="mobilenetv3_ofa", space_options=options, phases=phases,
                            batch_size=64, seed=args.seed, checkpoint_every=10**6,
                            calib_images=args.calib_images)
    print(f"threads {args.threads}; {len(data.train)} train / {len(heldout)} held-out images; "
          f"phases {[(p.name, p.epochs, p.schedule) for p in phases]}; training the supernet ...",
          flush=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        result = train_supernet(space, config, data, run_dir, resume=False, progress=False)
    t_super = time.perf_counter() - t0
    net = result.supernet
    rng = np.random.default_rng(args.seed + 1)
    archs = [net.largest_arch, net.smallest()]
    while len(archs) < args.subnets:
        arch = net.sample(rng)
        if arch.key not in {a.key for a in archs}:
            archs.append(arch)
    inherited, standalone = [], []
    t1 = time.perf_counter()
    seeds = list(range(args.seeds))
    print(f"{'subnet':<18} {'res':>3} {'MFLOPs':>7} {'inherited':>9} " +
          " ".join(f"{'seed' + str(s):>6}" for s in seeds))
    for i, arch in enumerate(archs):
        inh = evaluate_subnet(net, arch, data, heldout, calib_images=args.calib_images, seed=args.seed)
        accs = []
        for s in seeds:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(args.seed + 1000 * s + i)
                module = space.build(arch, data.num_classes, data.input_shape)
            train_standalone(module, data, args.standalone_epochs, args.standalone_lr, 64,
                             args.seed + 1000 * s + i)
            accs.append(accuracy(module, heldout))
        inherited.append(inh)
        standalone.append(accs)
        flops = space.complexity(arch, data.input_shape, data.num_classes).flops / 1e6
        label = "largest" if i == 0 else "smallest" if i == 1 else arch.key
        print(f"{label:<18} {arch['resolution.size']:>3} {flops:7.2f} {100 * inh:9.2f} " +
              " ".join(f"{100 * a:6.2f}" for a in accs), flush=True)
    t_alone = time.perf_counter() - t1
    inherited, standalone = np.array(inherited), np.array(standalone)
    mean_alone = standalone.mean(1)
    tau = kendalltau(inherited, mean_alone).statistic
    rho = spearmanr(inherited, mean_alone).statistic
    per_seed = [kendalltau(inherited, standalone[:, s]).statistic for s in seeds]
    ceiling = [kendalltau(standalone[:, a], standalone[:, b]).statistic
               for a in seeds for b in seeds if a < b]
    gap = 100 * (mean_alone.mean() - inherited.mean())
    print(f"supernet: {result.steps} steps ({args.epochs} epochs, width {args.width}, resolutions "
          f"{args.resolutions}) in {t_super:.0f} s; {len(archs)} subnets evaluated and trained "
          f"standalone ({args.seeds} seeds x {args.standalone_epochs} epochs) in {t_alone:.0f} s")
    print(f"mean accuracy: inherited {100 * inherited.mean():.2f}%, standalone "
          f"{100 * mean_alone.mean():.2f}%, gap (standalone - inherited) {gap:+.2f} points")
    print(f"largest: inherited {100 * inherited[0]:.2f}%, standalone {100 * mean_alone[0]:.2f}%; "
          f"smallest: inherited {100 * inherited[1]:.2f}%, standalone {100 * mean_alone[1]:.2f}%")
    print(f"standalone accuracy range {100 * mean_alone.min():.2f}..{100 * mean_alone.max():.2f}%; "
          f"mean |seed difference| {100 * np.abs(standalone[:, 0] - standalone[:, -1]).mean():.2f} points")
    print(f"Kendall tau inherited vs each standalone seed: {', '.join(f'{t:.3f}' for t in per_seed)}")
    if ceiling:
        print(f"noise ceiling: Kendall tau standalone seed vs seed {np.mean(ceiling):.3f}")
    print(f"Spearman rho {rho:.3f}")
    print(f"supernet_kendall_tau: {tau:.3f}")


if __name__ == "__main__":
    main()
