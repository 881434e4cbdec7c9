"""Supernet training throughput: images/s of the OFA training step against the static network.

    python bench/train_throughput.py [--quick] [--device cpu|cuda] [--precisions fp32,bf16]
                                     [--channels-last] [--resolution 32] [--ddp]

Part 1, one process: the training step (forward, backward, SGD) of the supernet with its
largest subnet active, and the full sandwich step (largest on the labels; smallest and
one random subnet distilled from it), against the same largest network built static
(``OFASupernet.extract``), in each precision (``torch.autocast``; fp16 with a gradient
scaler, CUDA only). Steps are interleaved and medians taken, so the ratios hold on a
shared machine better than the absolute figures.

Part 2 (``--ddp``, CPU): ``nas supernet train`` of one small experiment with 1 and with 2
processes (``nas.launch.launch_local``: torch's elastic launcher, gloo), equal total work
(the same global batch and steps); images/s from the training rows of ``metrics.csv``
(start-up and evaluation excluded).

Targets: largest-subnet step within 10% of the static network (ratio >= 0.9); 2 processes
>= 1.6x one process. The last line is ``supernet_vs_static_fp32: <ratio>``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _results import BenchRun

from search_spaces import get_space
from supernets import OFASupernet

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stepper:
    """One training step of a module in a precision: forward under autocast, backward, SGD."""

    def __init__(self, module: torch.nn.Module, device: torch.device, precision: str,
                 channels_last: bool) -> None:
        self.module, self.device, self.precision = module, device, precision
        self.opt = torch.optim.SGD(module.parameters(), lr=1e-3, momentum=0.9)
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self.channels_last = channels_last

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.precision])

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def finish(self) -> None:
        if self.scaler:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()


def plain_step(s: Stepper, x: torch.Tensor, y: torch.Tensor) -> None:
    s.opt.zero_grad(set_to_none=True)
    with s.autocast():
        loss = F.cross_entropy(s.module(x), y)
    s.backward(loss)
    s.finish()


def sandwich_step(s: Stepper, net: OFASupernet, x: torch.Tensor, y: torch.Tensor,
                  rng: np.random.Generator) -> None:
    """Largest on the labels; smallest and one random subnet on labels + its soft targets."""
    s.opt.zero_grad(set_to_none=True)
    net.set_active(net.largest_arch)
    with s.autocast():
        logits = net(x)
        loss = F.cross_entropy(logits, y)
    s.backward(loss)
    soft = F.softmax(logits.detach().float(), dim=1)
    for arch in (net.smallest(), net.sample(rng)):
        net.set_active(arch)
        with s.autocast():
            out = net(x)
            kd = F.kl_div(F.log_softmax(out.float(), dim=1), soft, reduction="batchmean")
            sub = F.cross_entropy(out, y) + kd
        s.backward(sub)
    s.finish()
    net.set_active(net.largest_arch)


def timed(fn: Callable[[], None], device: torch.device) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def single_process(args: argparse.Namespace, precision: str, run: BenchRun) -> float:
    """Images/s of static, supernet-largest and sandwich steps; returns supernet/static."""
    device = torch.device(args.device)
    res, batch = args.resolution, args.batch
    space = get_space("mobilenetv3_ofa", width_mult=args.width, resolutions=[res],
                      input_shape=(3, res, res))
    net = OFASupernet.from_space(space, num_classes=10, input_shape=(3, res, res)).train()
    net.set_active(net.largest_arch)
    static = net.extract(net.largest_arch).train()
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    net.to(device, memory_format=fmt)
    static.to(device, memory_format=fmt)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, res, res, generator=gen).to(device, memory_format=fmt)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    s_static = Stepper(static, device, precision, args.channels_last)
    s_net = Stepper(net, device, precision, args.channels_last)
    rng = np.random.default_rng(0)
    steps = {"static": lambda: plain_step(s_static, x, y),
             "supernet_largest": lambda: plain_step(s_net, x, y),
             "sandwich": lambda: sandwich_step(s_net, net, x, y, rng)}
    for fn in steps.values():  # warm-up (allocator, autocast caches, cuDNN choices)
        for _ in range(args.warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):  # interleaved: drift on a shared machine hits all alike
        for name, fn in steps.items():
            times[name].append(timed(fn, device))
    rate = {name: batch / statistics.median(t) for name, t in times.items()}
    ratio = rate["supernet_largest"] / rate["static"]
    tag = f"{precision}{', channels_last' if args.channels_last else ''}"
    print(f"[{tag}] static {rate['static']:9.1f} img/s | supernet largest "
          f"{rate['supernet_largest']:9.1f} img/s ({ratio:.3f}x) | sandwich step "
          f"{rate['sandwich']:9.1f} img/s")
    run.figure(f"static largest, {tag}", round(rate["static"], 1), "img/s")
    run.figure(f"supernet largest, {tag}", round(rate["supernet_largest"], 1), "img/s")
    run.figure(f"sandwich step (3 subnets), {tag}", round(rate["sandwich"], 1), "img/s")
    run.figure(f"supernet_vs_static_{precision}", round(ratio, 3), "x", target=">= 0.9",
               show=True, headline=precision == "fp32")
    return ratio


DDP_CONFIG = """
space:
  name: mobilenetv3_ofa
  options: {{width_mult: {width}, resolutions: [{res}]}}
compute: {{device: cpu, threads: 1}}
supernet:
  train:
    batch_size: {batch}
    calib_images: 32
    checkpoint_every: 100000
    phases:
      - {{name: sandwich, elastic: [kernel, depth, width], steps: {steps}, lr: 0.05, n_random: 1}}
"""


def _images_per_s(run_dir: Path, batch: int) -> float:
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["loss"]]
    span = float(rows[-1]["seconds"]) - float(rows[0]["seconds"])  # first step = warm-up
    return (len(rows) - 1) * batch / span


def data_parallel(args: argparse.Namespace, run: BenchRun) -> float:
    """Images/s of ``nas supernet train`` with 1 and 2 processes (equal total work)."""
    from nas.launch import TrainJob, launch_local, run_job

    steps = 6 if args.quick else 40
    with tempfile.TemporaryDirectory(prefix="nas_ddp_bench") as tmp:
        cfg = Path(tmp) / "ddp.yaml"
        cfg.write_text(DDP_CONFIG.format(width=args.width, res=args.resolution,
                                         batch=args.ddp_batch, steps=steps))
        rates = {}
        for nproc in (1, 2):
            job = TrainJob(str(cfg), str(Path(tmp) / f"run{nproc}"), restart=True)
            run_job(job) if nproc == 1 else launch_local(job, nproc)
            rates[nproc] = _images_per_s(Path(job.run_dir), args.ddp_batch)
    speedup = rates[2] / rates[1]
    print(f"[ddp, gloo] 1 process {rates[1]:.1f} img/s | 2 processes {rates[2]:.1f} img/s "
          f"({speedup:.2f}x), global batch {args.ddp_batch}, {steps} steps")
    run.figure("nas supernet train, 1 process", round(rates[1], 1), "img/s")
    run.figure("nas supernet train, 2 processes", round(rates[2], 1), "img/s")
    run.figure("ddp_speedup_2_processes", round(speedup, 2), "x", target=">= 1.6", show=True)
    return speedup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: few repeats")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--precisions", default=None,
                        help="comma-separated (default fp32,bf16 on CPU, fp32,bf16,fp16 on CUDA)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--ddp", action="store_true", help="also 1 vs 2 processes (CPU, gloo)")
    parser.add_argument("--ddp-batch", type=int, default=64, help="global batch of the DDP part")
    parser.add_argument("--results", default="train_throughput", metavar="NAME",
                        help="bench/results/NAME.json (default train_throughput)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device is available here")
    cuda = args.device.startswith("cuda")
    precisions = (args.precisions or ("fp32,bf16,fp16" if cuda else "fp32,bf16")).split(",")
    if not cuda and "fp16" in precisions:
        parser.error("--precisions: fp16 needs CUDA (use bf16 on the CPU)")
    if args.quick:
        args.repeats, args.warmup = 3, 1
    torch.set_num_threads(args.threads)
    run = BenchRun(args.results, quick=args.quick)
    run.note(f"mobilenetv3_ofa width {args.width}, input 3x{args.resolution}x{args.resolution}, "
             f"batch {args.batch}, device {args.device}, threads {args.threads}, "
             f"{args.repeats} interleaved repeats (medians)")
    for precision in precisions:
        single_process(args, precision, run)
    if args.ddp and not cuda:
        data_parallel(args, run)
    run.finish()


if __name__ == "__main__":
    main()
