"""`search_darts`: bilevel optimisation of a `DartsSupernet`, resumable, then derivation.

Weights are trained on the training split and architecture parameters on the
validation split, alternating per step (DARTS). The architecture step is
first-order (gradient at the current weights) or second-order (gradient at the
weights after one virtual SGD step, with the Hessian-vector product approximated by
finite differences). An optional expected-latency term (FBNet) is added to the
architecture loss. After every epoch the run directory gets a checkpoint
(``checkpoint.pt`` state dict + ``checkpoint.json`` metadata), ``metrics.csv`` and
the alpha history; a rerun with ``resume=True`` continues bit-exactly.

Devices and data parallelism (:class:`supernets.runtime.Runtime`): the search runs on
the configured device (fp32 or bf16 autocast); under ``torch.distributed`` each rank
takes its share of every global batch (``batch_size`` / world size), batch norm uses
the global batch's statistics and the weight and architecture gradients are averaged
over the ranks before each update, so n processes search like one. Only rank 0 writes;
the checkpoint (CPU tensors) resumes on any device with any number of processes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from search_spaces import Architecture, SearchSpace
from supernets import distributed
from supernets._darts.config import DartsConfig
from supernets._darts.history import save_alpha_history
from supernets._darts.runfiles import (
    DERIVE_ONLY,
    metadata,
    save_run,
    start_run,
    write_json,
)
from supernets._darts.supernet import DartsSupernet, LatencyLookup
from supernets._darts.train import batches, evaluate
from supernets.errors import SupernetError
from supernets.runtime import ComputeConfig, Runtime

__all__ = ["DartsResult", "DartsSearch", "search_darts", "table_latency"]

@dataclass
class DartsResult:
    """What a DARTS search produced.

    Attributes:
        arch: the derived architecture (validated in the space).
        supernet: the trained supernet.
        metrics: one row per epoch (train/val loss and accuracy, expected latency, seconds).
        history: op weights after each epoch (``nas.plots.plot_alpha_history`` draws it).
        run_dir: where checkpoint, metrics, history and ``derived.json`` lie.
        latency_ms: table latency of ``arch`` when a latency table was given.
    """

    arch: Architecture
    supernet: DartsSupernet
    metrics: list[dict[str, Any]]
    history: list[dict[str, Any]]
    run_dir: Path
    latency_ms: float | None = None


def table_latency(space: SearchSpace, arch: Architecture, table: LatencyLookup,
                  input_shape: tuple[int, ...] | None = None, num_classes: int | None = None) -> float:
    """Sum of the table's latency over every layer of ``arch`` (ms)."""
    return float(sum(table.lookup(s) for s in space.layers(arch, input_shape, num_classes)))


def _optimizer(kind: str, params: list[nn.Parameter], lr: float, weight_decay: float,
               momentum: float = 0.9, betas: tuple[float, float] = (0.5, 0.999)) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)


class DartsSearch:
    """The state of one search: supernet, optimisers, schedule, data order, epoch.

    :func:`search_darts` drives it epoch by epoch; ``weight_step`` and ``arch_step`` are
    the two halves of one bilevel step (public for step-level measurements, e.g.
    ``bench/darts_memory.py``).
    """

    def __init__(self, space: SearchSpace, config: DartsConfig, data, table: LatencyLookup | None,
                 latency_weight: float, runtime: Runtime | None = None) -> None:
        self.config, self.data = config, data
        self.rt = runtime or Runtime(ComputeConfig(device="cpu"), data_parallel=False,
                                     set_threads=False)
        if self.rt.config.precision == "fp16":
            raise SupernetError("precision: the DARTS search supports fp32 and bf16, not fp16")
        self.local_batch = self.rt.local_batch(config.batch_size)
        self.latency_weight = float(latency_weight)
        self.net = self.rt.prepare(DartsSupernet.from_space(
            space, num_classes=data.num_classes, input_shape=data.input_shape,
            partial_channels=config.partial_channels, edge_normalization=config.edge_normalization,
            seed=config.seed,
        ))
        if table is not None:
            self.net.set_latency_table(table)
        elif self.latency_weight:
            raise SupernetError("latency_weight > 0 needs a latency_table")
        self.weights = self.net.weight_parameters()
        self.arch = self.net.arch_parameters()
        self.w_opt = _optimizer(config.w_optimizer, self.weights, config.w_lr, config.w_weight_decay,
                                config.w_momentum)
        self.a_opt = _optimizer(config.a_optimizer, self.arch, config.a_lr, config.a_weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, config.epochs,
                                                                eta_min=config.w_lr_min)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.epoch = 0
        self._val_iter: Iterator | None = None

    # state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.net.state_dict(), "w_opt": self.w_opt.state_dict(),
                "a_opt": self.a_opt.state_dict(), "sched": self.sched.state_dict(),
                "gen": self.gen.get_state(), "epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.sched.load_state_dict(state["sched"])
        self.gen.set_state(state["gen"])
        self.epoch = int(state["epoch"])

    # steps -----------------------------------------------------------------------------
    def _val_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        while True:
            if self._val_iter is None:
                self._val_iter = self._batches(self.data.val, self.gen)
            try:
                return self.rt.batch(next(self._val_iter))
            except StopIteration:
                self._val_iter = None

    def _batches(self, data, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return batches(data, self.local_batch, gen, rank=self.rt.rank,
                       world_size=self.rt.world_size)

    def _mean(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """Gradients averaged over the ranks (unchanged in one process)."""
        if self.rt.parallel:
            distributed.all_reduce_tensors(grads)
        return grads

    def _arch_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self.rt.autocast():
            loss = F.cross_entropy(self.net(x), y)
        if self.latency_weight:
            loss = loss + self.latency_weight * self.net.expected_latency()
        return loss

    def _grads(self, loss: torch.Tensor, params: list[nn.Parameter], retain: bool = False) -> list[torch.Tensor]:
        grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=retain)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=False)]

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor) -> None:
        """One update of the architecture parameters on a validation batch."""
        with self.rt.step_context():
            if self.config.order == 1:
                grads = self._mean(self._grads(self._arch_loss(xv, yv), self.arch))
            else:
                grads = self._unrolled_grads(x, y, xv, yv)
        self.a_opt.zero_grad(set_to_none=True)
        for p, g in zip(self.arch, grads, strict=False):
            p.grad = g
        self.a_opt.step()

    def _unrolled_grads(self, x, y, xv, yv) -> list[torch.Tensor]:
        """d L_val(w - xi dL_train/dw, a) / da with a finite-difference Hessian-vector product."""
        xi = self.sched.get_last_lr()[0]
        wd = self.config.w_weight_decay
        backup = [w.detach().clone() for w in self.weights]
        g_train = self._mean(self._grads(self._train_loss(x, y), self.weights))
        with torch.no_grad():  # virtual step w' = w - xi (g + wd w)
            for w, g in zip(self.weights, g_train, strict=False):
                w.sub_(xi * (g + wd * w))
        grads = self._mean(self._grads(self._arch_loss(xv, yv), [*self.arch, *self.weights]))
        d_arch, d_w = grads[:len(self.arch)], grads[len(self.arch):]
        eps = 0.01 / (torch.cat([g.flatten() for g in d_w]).norm() + 1e-12)

        def train_arch_grads(sign: float) -> list[torch.Tensor]:
            with torch.no_grad():
                for w, b, d in zip(self.weights, backup, d_w, strict=False):
                    w.copy_(b + sign * eps * d)
            return self._mean(self._grads(self._train_loss(x, y), self.arch))

        plus, minus = train_arch_grads(1.0), train_arch_grads(-1.0)
        with torch.no_grad():
            for w, b in zip(self.weights, backup, strict=False):
                w.copy_(b)
        return [d - xi * (p - m) / (2 * eps) for d, p, m in zip(d_arch, plus, minus, strict=False)]

    def _train_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self.rt.autocast():
            return F.cross_entropy(self.net(x), y)

    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """One update of the weights on a training batch; returns (loss, accuracy) of this
        rank's share."""
        self.w_opt.zero_grad(set_to_none=True)
        with self.rt.step_context():
            with self.rt.autocast():
                out = self.net(x)
                loss = F.cross_entropy(out, y)
            grads = self._mean(self._grads(loss, self.weights))
        for w, g in zip(self.weights, grads, strict=False):
            w.grad = g
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.weights, self.config.grad_clip)
        self.w_opt.step()
        return float(loss.detach()), float((out.argmax(1) == y).float().mean())

    def run_epoch(self, bar: tqdm) -> dict[str, Any]:
        start = time.perf_counter()
        self.net.train()
        self._val_iter = None
        losses, accs = [], []
        for batch in self._batches(self.data.train, self.gen):
            x, y = self.rt.batch(batch)
            if self.epoch >= self.config.warmup_epochs:
                xv, yv = self._val_batch()
                self.arch_step(x, y, xv, yv)
            loss, acc = self.weight_step(x, y)
            losses.append(loss)
            accs.append(acc)
            bar.update(1)
            bar.set_postfix(epoch=self.epoch + 1, loss=f"{loss:.3f}")
        self.sched.step()
        self.epoch += 1
        val_loss, val_acc = evaluate(self.net, self.data.val, device=self.rt.device)
        train_loss, train_acc = (sum(losses) / len(losses), sum(accs) / len(accs))
        if self.rt.parallel:
            train_loss, train_acc = distributed.all_reduce_mean([train_loss, train_acc])
        row = {"epoch": self.epoch, "train_loss": train_loss,
               "train_acc": train_acc, "val_loss": val_loss, "val_acc": val_acc,
               "lr": self.sched.get_last_lr()[0], "seconds": time.perf_counter() - start}
        if self.net._latency is not None:
            with torch.no_grad():
                row["expected_latency_ms"] = float(self.net.expected_latency())
        return row

    def tune(self) -> None:
        """A few weight steps (perturbation-based selection retunes after each decision)."""
        if not self.config.tune_steps:
            return
        gen = torch.Generator().manual_seed(self.config.seed + 1 + self._tuned)
        self._tuned += 1
        self.net.train()
        it = batches(self.data.train, self.config.batch_size, gen)  # the same on every rank
        for _ in range(self.config.tune_steps):
            try:
                x, y = next(it)
            except StopIteration:
                it = batches(self.data.train, self.config.batch_size, gen)
                x, y = next(it)
            self.weight_step(*self.rt.batch((x, y)))

    _tuned = 0


def search_darts(space: SearchSpace, config: DartsConfig, data, run_dir: str | Path, resume: bool = True,
                 latency_table: LatencyLookup | None = None, latency_weight: float = 0.0,
                 space_options: Mapping[str, Any] | None = None, progress: bool | None = None,
                 compute: ComputeConfig | None = None, runtime: Runtime | None = None
                 ) -> DartsResult:
    """Run (or resume) a DARTS search and derive an architecture.

    Args:
        space: a cell search space.
        config: search settings (``batch_size`` is the global batch under data parallelism).
        data: a ``DataSplits`` (``supernets.data.load_dataset``): weights train on ``train``,
            architecture parameters on ``val``.
        run_dir: checkpoint, ``metrics.csv``, ``alphas.json``/``.csv``, ``derived.json``.
        resume: continue from the checkpoint in ``run_dir`` when there is one (else start over).
        latency_table: anything with ``lookup(LayerSpec) -> ms`` (e.g. ``hardware.LatencyTable``).
        latency_weight: lambda of the expected-latency term (ms) in the architecture loss.
        space_options: the space's factory options, recorded in the metadata.
        progress: show a tqdm bar (None: only on a terminal); rank 0 only.
        compute: device, precision (fp32 or bf16), channels-last, threads (default: auto
            device, fp32); data parallelism comes from the launcher (``supernets.distributed``).
        runtime: a :class:`~supernets.runtime.Runtime` built already (instead of ``compute``).

    Raises:
        SupernetError: the checkpoint belongs to another space, configuration or lambda.
    """
    rt = runtime or Runtime(compute)
    run_dir = Path(run_dir)
    if rt.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    meta = metadata(space, config, data, latency_weight, space_options)
    search = DartsSearch(space, config, data, latency_table, latency_weight, runtime=rt)
    metrics, history = start_run(run_dir, meta, search, resume)
    steps = math.ceil(len(data.train) / config.batch_size)
    show = (not progress) if progress is not None else None
    bar = tqdm(total=config.epochs * steps, initial=search.epoch * steps, desc="darts search",
               disable=show if rt.is_main else True, leave=False)
    while search.epoch < config.epochs:
        row = search.run_epoch(bar)
        metrics.append(row)
        history.append({"epoch": search.epoch, "alphas": search.net.alphas()})
        if rt.is_main:
            save_run(run_dir, meta, search, metrics, history)
    bar.close()
    if rt.is_main and (not history or len(history) == 1):
        save_alpha_history(history, run_dir)
    arch = _derive(search, config, space, run_dir)
    latency = None
    if latency_table is not None:
        latency = table_latency(space, arch, latency_table, data.input_shape, data.num_classes)
    if rt.is_main:
        write_json(run_dir / "derived.json", {
            "method": config.derive, "settings": _derive_settings(config), "arch": arch.to_dict(),
            "key": arch.key, "table_latency_ms": latency, "space": space.name,
            "fingerprint": space.fingerprint})
    if rt.parallel:
        distributed.barrier()
    return DartsResult(arch, search.net, metrics, history, run_dir, latency)


def _derive_settings(config: DartsConfig) -> dict[str, Any]:
    return {k: getattr(config, k) for k in DERIVE_ONLY}


def _derive(search: DartsSearch, config: DartsConfig, space: SearchSpace, run_dir: Path) -> Architecture:
    done = run_dir / "derived.json"
    cached = None
    if search.rt.is_main and done.is_file():  # a finished run: derivation (which may retune
        saved = json.loads(done.read_text())   # weights) is not repeated
        if saved.get("settings") == _derive_settings(config) and saved.get("fingerprint") == space.fingerprint:
            cached = saved["arch"]
    if search.rt.parallel:
        cached = distributed.broadcast_object(cached)
    if cached is not None:
        return space.validate(Architecture(cached))
    if config.derive == "argmax":
        return search.net.derive("argmax")
    val = [search.rt.batch(b) for b in list(batches(search.data.val, config.batch_size))[:config.eval_batches]]
    arch = search.net.derive("perturbation", data=val, tune=search.tune, seed=config.seed)
    search.net.reset_selection()
    return arch
