"""OFA supernet speed: training-step overhead of the supernet (largest subnet active)
against the same network built standalone, and the time of ``extract``.

    python bench/supernet_speed.py [--quick] [--threads 1]

Figures are ratios measured in one run (interleaved repeats, medians), so they hold
on a shared machine better than absolute times. The last line is
``supernet_step_overhead_pct: <value>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from _results import BenchRun

from search_spaces import get_space
from supernets import OFASupernet


def step_time(module: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
              y: torch.Tensor, before=None) -> float:
    t = time.perf_counter()
    if before is not None:
        before()
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(module(x), y).backward()
    opt.step()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: few repeats")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    run = BenchRun("supernet_speed", quick=args.quick)
    torch.set_num_threads(args.threads)
    repeats = 4 if args.quick else args.repeats
    res = args.resolution
    space = get_space("mobilenetv3_ofa", width_mult=args.width, resolutions=[res // 2, res],
                      input_shape=(3, res, res))
    net = OFASupernet.from_space(space, num_classes=10, input_shape=(3, res, res)).train()
    largest = net.largest_arch
    net.set_active(largest)
    static = space.build(largest, 10, (3, res, res)).train()
    static.load_state_dict(net.extract(largest).state_dict())
    static.train()
    net.train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, res, res, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    opt_s = torch.optim.SGD(static.parameters(), lr=1e-3, momentum=0.9)
    opt_n = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    for _ in range(2):  # warm-up
        step_time(static, opt_s, x, y)
        step_time(net, opt_n, x, y)
    t_static, t_net, t_net_set = [], [], []
    for _ in range(repeats):  # interleaved, so drift on a shared machine hits all alike
        t_static.append(step_time(static, opt_s, x, y))
        t_net.append(step_time(net, opt_n, x, y))
        t_net_set.append(step_time(net, opt_n, x, y, before=lambda: net.set_active(largest)))
    m_static, m_net, m_set = (statistics.median(t) for t in (t_static, t_net, t_net_set))
    overhead = 100 * (m_net / m_static - 1)
    overhead_set = 100 * (m_set / m_static - 1)

    rng = np.random.default_rng(0)
    archs = [net.sample(rng) for _ in range(3 if args.quick else 20)]
    t_sub_net, t_sub_static, t_extract = [], [], []
    for arch in archs:
        t0 = time.perf_counter()
        module = net.extract(arch)
        t_extract.append(time.perf_counter() - t0)
        module.train()
        opt_m = torch.optim.SGD(module.parameters(), lr=1e-3)
        net.set_active(arch)
        t_sub_net.append(step_time(net, opt_n, x, y))
        t_sub_static.append(step_time(module, opt_m, x, y))
    sub_ratio = statistics.median(np.array(t_sub_net) / np.array(t_sub_static))

    print(f"mobilenetv3_ofa width {args.width}, input 3x{res}x{res}, batch {args.batch}, "
          f"threads {args.threads}, {repeats} interleaved repeats")
    print(f"train step, standalone largest:        {1e3 * m_static:8.2f} ms")
    print(f"train step, supernet (largest active): {1e3 * m_net:8.2f} ms  ({overhead:+.1f}%)")
    print(f"  + set_active(largest) every step:    {1e3 * m_set:8.2f} ms  ({overhead_set:+.1f}%)")
    print(f"random subnets: supernet step / standalone step, median ratio {sub_ratio:.2f}")
    print(f"extract: median {1e3 * statistics.median(t_extract):.1f} ms, "
          f"max {1e3 * max(t_extract):.1f} ms over {len(archs)} random subnets")
    run.note(f"mobilenetv3_ofa width {args.width}, input 3x{res}x{res}, batch {args.batch}, "
             f"threads {args.threads}, {repeats} interleaved repeats (medians)")
    run.figure("train step, standalone largest", round(1e3 * m_static, 1), "ms")
    run.figure("train step, supernet (largest active)", round(1e3 * m_net, 1), "ms")
    run.figure("overhead with set_active(largest) every step", round(overhead_set, 1), "%")
    run.figure("random subnets: supernet step / extracted step", round(sub_ratio, 2), "x")
    run.figure("extract, median", round(1e3 * statistics.median(t_extract), 1), "ms")
    run.figure("extract, max", round(1e3 * max(t_extract), 1), "ms")
    run.figure("supernet_step_overhead_pct", round(overhead, 1), "%", target="<= 15%", headline=True)
    run.finish()


if __name__ == "__main__":
    main()
