"""Progressive-shrinking training of an OFA supernet: resumable, deterministic under a seed.

One phase loop, parameterised by what is elastic. Each step applies the sandwich
rule (the largest subnet on the labels; the smallest and ``n_random`` random
subnets on labels plus the largest's soft targets: in-place distillation).

Determinism: the data order of a phase epoch, the subnets of a step and the torch
RNG of a step are derived from ``(seed, phase, epoch)`` and ``(seed, step)``, and the
checkpoint holds the weights and optimiser state, so a run resumed from any
checkpoint ends with the same weights as an uninterrupted one.

Devices and data parallelism (:class:`supernets.runtime.Runtime`): the supernet runs
on the configured device with autocast; under ``torch.distributed`` every rank draws
the same subnets (seeded by the step), reads its share of the global batch
(``config.batch_size`` / world size, through :func:`supernets.data.make_loader`),
normalises with the global batch's BN statistics and averages the gradients after
the sandwich's backward passes, so n processes train like one with the whole batch,
and a run resumes with any number of processes. Only rank 0 writes.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from search_spaces import SearchSpace
from supernets import distributed
from supernets._ofa.checkpoint import (
    METRICS,
    WEIGHTS,
    SupernetState,
    load_supernet,
    read_weights,
    save_checkpoint,
    to_cpu,
)
from supernets._ofa.config import OFATrainConfig, PhaseConfig
from supernets._ofa.evaluate import evaluate_subnet
from supernets._ofa.supernet import OFASupernet
from supernets.data import DataSplits, make_loader
from supernets.errors import SupernetError
from supernets.runtime import ComputeConfig, Runtime

__all__ = ["SupernetState", "TrainResult", "load_supernet", "sandwich_step", "save_checkpoint",
           "train_supernet"]

_FIELDS = ("step", "phase", "phase_step", "lr", "loss", "acc", "sub_loss",
           "val_acc_largest", "val_acc_smallest", "seconds")


@dataclass
class TrainResult:
    """What a (possibly partial) training run produced."""

    supernet: OFASupernet
    run_dir: Path
    steps: int
    finished: bool
    metrics: list[dict[str, Any]] = field(default_factory=list)


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _lr(phase: PhaseConfig, step: int, total: int) -> float:
    if phase.warmup_steps and step < phase.warmup_steps:
        return phase.lr * (step + 1) / phase.warmup_steps
    if phase.schedule == "constant" or total <= phase.warmup_steps:
        return phase.lr
    t = (step - phase.warmup_steps) / max(1, total - phase.warmup_steps)
    return 0.5 * phase.lr * (1 + math.cos(math.pi * t))


def _phase_steps(phase: PhaseConfig, steps_per_epoch: int) -> int:
    return phase.steps if phase.steps is not None else phase.epochs * steps_per_epoch


# ---------------------------------------------------------------------- training


def _kd(logits: torch.Tensor, soft: torch.Tensor, temperature: float) -> torch.Tensor:
    log_p = F.log_softmax(logits.float() / temperature, dim=1)
    return F.kl_div(log_p, soft, reduction="batchmean") * temperature**2


_PLAIN: Runtime | None = None


def _plain() -> Runtime:
    """Single-process fp32 on the CPU: what :func:`_step` uses when given no runtime."""
    global _PLAIN
    if _PLAIN is None:
        _PLAIN = Runtime(ComputeConfig(device="cpu"), data_parallel=False, set_threads=False)
    return _PLAIN


def sandwich_step(net: OFASupernet, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
          phase: PhaseConfig, config: OFATrainConfig, rng: np.random.Generator,
          phase_step: int, rt: Runtime | None = None) -> tuple[float, float, float]:
    """One optimiser step of the sandwich rule on batch ``(x, y)`` (already on the device).

    The largest subnet learns from the labels; the smallest and ``phase.n_random``
    random ones (drawn from ``rng``: seed it by the step so that every rank draws the
    same) from the labels and the largest's soft targets. Under data parallelism
    (``rt.parallel``) batch norm uses the global batch's statistics and the gradients
    are averaged over the ranks before the update.

    Args:
        rt: device, precision and parallelism (default: one process, CPU, fp32).

    Returns:
        (loss of the largest, its accuracy, mean subnet loss), averaged over the ranks.
    """
    rt = rt or _plain()
    opt.zero_grad(set_to_none=True)
    params = [p for group in opt.param_groups for p in group["params"]]
    largest = net.largest_arch
    shared_resolution = phase.sandwich_resolution == "random" and "resolution" in phase.elastic
    if shared_resolution:
        largest = net.sample(rng, ("resolution",))  # one random resolution, all else largest
    sub_losses = []
    with rt.step_context():
        net.set_active(largest)
        with rt.autocast():
            logits = net(x)
            loss = F.cross_entropy(logits, y)
        rt.backward(loss)
        acc = (logits.argmax(1) == y).float().mean()
        if phase.elastic:
            soft = F.softmax(logits.detach().float() / config.kd_temperature, dim=1)
            eps = 1.0 if not phase.eps_ramp_steps else min(1.0, phase_step / phase.eps_ramp_steps)
            smallest = net.smallest(phase.elastic)
            if shared_resolution:  # the smallest at the largest's drawn resolution
                smallest = smallest.update({p: largest[p] for p, kind in net.categories.items()
                                            if kind == "resolution" and p in largest})
            archs = [smallest]
            archs += [net.sample(rng, phase.elastic, eps) for _ in range(phase.n_random)]
            for arch in archs:
                net.set_active(arch)
                with rt.autocast():
                    out = net(x)
                    sub = F.cross_entropy(out, y) + config.kd_weight * _kd(out, soft,
                                                                           config.kd_temperature)
                rt.backward(sub)
                sub_losses.append(sub.detach().float())
    rt.optimizer_step(opt, params)
    sub_mean = float(torch.stack(sub_losses).mean()) if sub_losses else float("nan")
    values = [float(loss.detach()), float(acc), sub_mean]
    loss_v, acc_v, sub_v = distributed.all_reduce_mean(values) if rt.parallel else values
    return loss_v, acc_v, sub_v


def _evaluate(net: OFASupernet, data: DataSplits, config: OFATrainConfig,
              phase: PhaseConfig, device: torch.device) -> tuple[float, float]:
    """Val accuracy of the largest and smallest subnets; BN statistics restored after.

    Rank 0 evaluates and tells the others (whose weights are the same)."""
    accs: list[float] | None = None
    if distributed.is_main():
        saved = {k: v.clone() for k, v in net.state_dict().items()
                 if "running" in k or "batches" in k}
        accs = [evaluate_subnet(net, arch, data, calib_images=config.calib_images,
                                seed=config.seed, device=device)
                for arch in (net.largest_arch, net.smallest(phase.elastic))]
        net.load_state_dict(saved, strict=False)
    accs = distributed.broadcast_object(accs)
    return accs[0], accs[1]


class _Run:
    """One training run: the supernet, its state, the metrics rows not yet written."""

    def __init__(self, net: OFASupernet, config: OFATrainConfig, data: DataSplits, run_dir: Path,
                 state: SupernetState, progress: bool | None, rt: Runtime,
                 num_workers: int = 0) -> None:
        self.net, self.config, self.data, self.run_dir = net, config, data, run_dir
        self.state, self.rt, self.num_workers = state, rt, num_workers
        self.rows: list[dict[str, Any]] = []
        self.all_rows: list[dict[str, Any]] = []
        if len(data.train) < config.batch_size:
            raise SupernetError(f"batch_size: {config.batch_size} is larger than the training "
                                f"split of {data.name!r} ({len(data.train)} items)")
        self.local_batch = rt.local_batch(config.batch_size)
        self.per_epoch = len(data.train) // config.batch_size
        self.totals = [_phase_steps(p, self.per_epoch) for p in config.phases]
        show = (not progress) if progress is not None else None
        self.bar = tqdm(total=sum(self.totals), initial=state.step, desc="supernet",
                        dynamic_ncols=True, disable=show if rt.is_main else True)
        self.start = time.perf_counter()

    def checkpoint(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Rank 0 writes weights, optimiser (and fp16 scaler) state and the new metrics rows."""
        if self.rt.is_main:
            scaler = self.rt.scaler.state_dict() if self.rt.scaler is not None else None
            save_checkpoint(self.run_dir, self.net, self.state,
                            optimizer.state_dict() if optimizer else None, scaler)
            path = self.run_dir / METRICS
            new = not path.exists()
            with open(path, "a", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=_FIELDS)
                if new:
                    writer.writeheader()
                writer.writerows(self.rows)
        self.all_rows.extend(self.rows)
        self.rows.clear()

    def stop(self, optimizer: torch.optim.Optimizer | None) -> TrainResult:
        self.checkpoint(optimizer)
        self.bar.close()
        distributed.barrier()
        return TrainResult(self.net, self.run_dir, self.state.step, False, self.all_rows)

    def _batches(self, p_idx: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's share of each global batch of phase ``p_idx``, from its current step
        on: epoch ``e`` of the phase is one seeded permutation (the same on every rank and
        for every world size); a resumed run skips the batches already done unread."""
        s = self.state.phase_step
        while True:
            epoch, i = divmod(s, self.per_epoch)
            loader = make_loader(self.data.train, self.local_batch, shuffle=True,
                                 seed=_seed(self.config.seed, p_idx), epoch=epoch, start_batch=i,
                                 rank=self.rt.rank, world_size=self.rt.world_size, drop_last=True,
                                 num_workers=self.num_workers,
                                 pin_memory=self.rt.device.type == "cuda")
            for x, y in loader:
                yield self.rt.batch((x, y))
                s += 1
                if s % self.per_epoch == 0:
                    break

    def phase(self, p_idx: int, opt_state: Mapping[str, Any], max_steps: int | None
              ) -> TrainResult | None:
        """Run (the rest of) phase ``p_idx``; a :class:`TrainResult` when ``max_steps`` stops it."""
        config, net, phase = self.config, self.net, self.config.phases[p_idx]
        params = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=phase.lr, momentum=config.momentum, nesterov=True,
                              weight_decay=config.weight_decay)
        if self.state.phase_step == 0:
            if "width" in phase.elastic:
                net.sort_channels()
        elif opt_state:
            opt.load_state_dict(opt_state)
        self.bar.set_description(f"supernet [{phase.name}]")
        batches = self._batches(p_idx)
        while self.state.phase_step < self.totals[p_idx]:
            if max_steps is not None and self.state.step >= max_steps:
                return self.stop(opt)
            s = self.state.phase_step
            x, y = next(batches)
            torch.manual_seed(_seed(config.seed, self.state.step, 1))
            lr = _lr(phase, s, self.totals[p_idx])
            for group in opt.param_groups:
                group["lr"] = lr
            rng = np.random.default_rng([config.seed, self.state.step])
            loss, acc, sub = sandwich_step(net, opt, x, y, phase, config, rng, s, self.rt)
            self.state = dataclasses.replace(self.state, phase_step=s + 1, step=self.state.step + 1)
            self.rows.append({"step": self.state.step, "phase": phase.name, "phase_step": s + 1,
                              "lr": f"{lr:.6g}", "loss": f"{loss:.5f}", "acc": f"{acc:.4f}",
                              "sub_loss": f"{sub:.5f}",
                              "seconds": f"{time.perf_counter() - self.start:.2f}"})
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.2f}")
            if self.state.step % config.checkpoint_every == 0:
                self.checkpoint(opt)
            net.train()
        self._end_phase(p_idx)
        return None

    def _end_phase(self, p_idx: int) -> None:
        phase = self.config.phases[p_idx]
        large, small = _evaluate(self.net, self.data, self.config, phase, self.rt.device)
        self.net.train()
        self.rows.append({"step": self.state.step, "phase": phase.name,
                          "phase_step": self.state.phase_step, "val_acc_largest": f"{large:.4f}",
                          "val_acc_smallest": f"{small:.4f}",
                          "seconds": f"{time.perf_counter() - self.start:.2f}"})
        if self.rt.is_main:
            self.bar.write(f"phase {phase.name}: val acc largest {large:.4f} smallest {small:.4f}")
        done = p_idx + 1 >= len(self.config.phases)
        self.state = dataclasses.replace(self.state, phase=p_idx + 1, phase_step=0, finished=done)
        self.checkpoint(None)


def _resume(net: OFASupernet, space: SearchSpace, run_dir: Path, state: SupernetState
            ) -> tuple[SupernetState, dict[str, Any], dict[str, Any] | None]:
    """Load the run in ``run_dir`` into ``net``; its state, optimiser and scaler states."""
    loaded, old = load_supernet(run_dir, space)

    def same(s: SupernetState) -> Any:
        return json.loads(json.dumps([s.config, s.data, s.num_classes, list(s.input_shape)]))

    if same(old) != same(state):
        raise SupernetError(f"{run_dir}: holds a run with another config; use another run_dir "
                            "or resume=False")
    net.load_state_dict(loaded.state_dict())
    state = dataclasses.replace(state, phase=old.phase, phase_step=old.phase_step, step=old.step,
                                finished=old.finished)
    saved = read_weights(run_dir / WEIGHTS)
    return state, saved.get("optimizer", {}), saved.get("scaler")


def _start(net: OFASupernet, space: SearchSpace, run_dir: Path, state: SupernetState,
           resume: bool) -> tuple[SupernetState, dict[str, Any], dict[str, Any] | None]:
    """Rank 0 resumes the checkpoint in ``run_dir`` (or starts afresh) and sends the
    state, optimiser state and weights to the other ranks: every rank starts alike, also
    without a shared file system."""
    payload: tuple[Any, ...] = ("ok", state, {}, None, None)
    if distributed.is_main():
        try:
            if resume and (run_dir / WEIGHTS).is_file():
                state, opt_state, scaler = _resume(net, space, run_dir, state)
                payload = ("ok", state, opt_state, scaler, to_cpu(net.state_dict()))
            elif (run_dir / METRICS).exists():
                (run_dir / METRICS).unlink()
        except SupernetError as exc:
            distributed.broadcast_object(("error", str(exc), None, None, None))
            raise
    status, state, opt_state, scaler, weights = distributed.broadcast_object(payload)
    if status == "error":
        raise SupernetError(f"rank 0: {state}")
    if weights is not None and not distributed.is_main():
        net.load_state_dict(weights)
    return state, opt_state, scaler


def train_supernet(space: SearchSpace, config: OFATrainConfig, data: DataSplits,
                   run_dir: str | Path = "runs/ofa", resume: bool = True,
                   max_steps: int | None = None, progress: bool | None = None,
                   space_options: Mapping[str, Any] | None = None,
                   compute: ComputeConfig | None = None, runtime: Runtime | None = None,
                   num_workers: int = 0) -> TrainResult:
    """Train an OFA supernet of ``space`` on ``data``, checkpointing as it goes.

    Args:
        space: the search space (its decisions must be elastic, see :class:`OFASupernet`).
        config: the schedule and optimiser settings (``batch_size`` is the global batch,
            shared out among data-parallel processes).
        data: data splits (``supernets.data.load_dataset``); items ``(x, y)`` on the CPU.
        run_dir: folder of ``supernet.pt``, ``supernet.json`` and ``metrics.csv``.
        resume: continue from the checkpoint in ``run_dir`` when there is one (written
            with any device and any number of processes).
        max_steps: stop (with a checkpoint) once this many steps are done in total;
            a later call resumes.
        progress: show a tqdm bar (``None``: only on a terminal); rank 0 only.
        space_options: the space's factory options, recorded so that
            :func:`load_supernet` can rebuild a registered space by name.
        compute: device, precision, channels-last and threads (default: auto device,
            fp32). Data parallelism comes from the launcher (``torchrun``, ``nas supernet
            train --nproc``, Ray Train): see :mod:`supernets.distributed`.
        runtime: a :class:`~supernets.runtime.Runtime` built already (instead of ``compute``).
        num_workers: ``DataLoader`` worker processes per rank.

    Returns:
        A :class:`TrainResult` (its supernet on the run's device); ``finished`` is False
        when ``max_steps`` stopped it.
    """
    rt = runtime or Runtime(compute)
    run_dir = Path(run_dir)
    net = OFASupernet.from_space(space, data.num_classes, data.input_shape, seed=config.seed)
    state = SupernetState(space.name, dict(space_options or {}), space.fingerprint, data.num_classes,
                          tuple(data.input_shape), data.name, config.to_dict(),
                          data_config=data.settings())
    state, opt_state, scaler_state = _start(net, space, run_dir, state, resume)
    if rt.scaler is not None and scaler_state:
        rt.scaler.load_state_dict(scaler_state)
    net = rt.prepare(net)
    run = _Run(net, config, data, run_dir, state, progress, rt, num_workers)
    net.train()
    with torch.random.fork_rng(devices=[]):
        while run.state.phase < len(config.phases) and not run.state.finished:
            if max_steps is not None and run.state.step >= max_steps and run.state.phase_step == 0:
                return run.stop(None)
            stopped = run.phase(run.state.phase, opt_state, max_steps)
            opt_state = {}
            if stopped is not None:
                return stopped
    run.bar.close()
    distributed.barrier()
    net.eval()
    return TrainResult(net, run_dir, run.state.step, True, run.all_rows)
