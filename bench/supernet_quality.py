"""OFA supernet quality on digits: inherited accuracy vs training from scratch.

Trains a reduced ``mobilenetv3_ofa`` supernet with progressive shrinking (full,
kernel, depth, width; resolution elastic from the kernel phase), then for random
subnets compares the accuracy with inherited weights (+ BN recalibration) against
the same subnet trained standalone from scratch with the same recipe (SGD, cosine
schedule, batch size; ``--standalone-epochs`` epochs). Reports the Kendall tau of
the two rankings and the mean accuracy gap (standalone - inherited, in points).

    python bench/supernet_quality.py [--quick] [--subnets 30] [--threads 2]

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
from supernets import OFATrainConfig, evaluate_subnet, progressive_shrinking, train_supernet
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
    parser.add_argument("--subnets", type=int, default=30)
    parser.add_argument("--phase-epochs", type=int, default=2, help="epochs per shrinking phase")
    parser.add_argument("--standalone-epochs", type=int, default=8,
                        help="epochs per standalone subnet (default: the supernet's total)")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[12, 16])
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.subnets, args.standalone_epochs = 4, 1
    torch.set_num_threads(args.threads)
    data = load_dataset("digits", seed=args.seed)
    heldout = TensorDataset(*(torch.cat([a, b]) for a, b in zip(data.val.tensors, data.test.tensors)))
    options = {"width_mult": args.width, "resolutions": list(args.resolutions),
               "input_shape": list(data.input_shape)}
    space = get_space("mobilenetv3_ofa", **options)
    phases = progressive_shrinking(args.phase_epochs, lr=args.lr, n_random=2)
    if args.quick:
        phases = tuple(dataclasses.replace(p, steps=3) for p in phases)
    config = OFATrainConfig(space="mobilenetv3_ofa", space_options=options, phases=phases,
                            batch_size=64, seed=args.seed, checkpoint_every=10**6, calib_images=256)
    print(f"threads {args.threads}; training the supernet ...", flush=True)
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
    print(f"{'subnet':<18} {'MFLOPs':>7} {'inherited':>9} {'standalone':>10}")
    for i, arch in enumerate(archs):
        inh = evaluate_subnet(net, arch, data, heldout, calib_images=256, seed=args.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed + i)
            module = space.build(arch, data.num_classes, data.input_shape)
        train_standalone(module, data, args.standalone_epochs, args.lr, 64, args.seed)
        alone = accuracy(module, heldout)
        inherited.append(inh)
        standalone.append(alone)
        flops = space.complexity(arch, data.input_shape, data.num_classes).flops / 1e6
        label = "largest" if i == 0 else "smallest" if i == 1 else arch.key
        print(f"{label:<18} {flops:7.2f} {100 * inh:9.2f} {100 * alone:10.2f}", flush=True)
    t_alone = time.perf_counter() - t1
    tau = kendalltau(inherited, standalone).statistic
    rho = spearmanr(inherited, standalone).statistic
    gap = 100 * (np.mean(standalone) - np.mean(inherited))
    print(f"supernet: {result.steps} steps ({len(config.phases)} phases x {args.phase_epochs} epochs, "
          f"width {args.width}, resolutions {args.resolutions}) "
          f"in {t_super:.0f} s; {len(archs)} subnets evaluated and trained standalone "
          f"({args.standalone_epochs} epochs each) in {t_alone:.0f} s")
    print(f"mean accuracy: inherited {100 * np.mean(inherited):.2f}%, standalone "
          f"{100 * np.mean(standalone):.2f}%, gap (standalone - inherited) {gap:+.2f} points")
    print(f"Spearman rho {rho:.3f}")
    print(f"supernet_kendall_tau: {tau:.3f}")



if __name__ == "__main__":
    main()
