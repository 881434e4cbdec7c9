"""`search_darts`: bilevel optimisation of a `DartsSupernet`, resumable, then derivation.

Weights are trained on the training split and architecture parameters on the
validation split, alternating per step (DARTS). The architecture step is
first-order (gradient at the current weights) or second-order (gradient at the
weights after one virtual SGD step, with the Hessian-vector product approximated by
finite differences). An optional expected-latency term (FBNet) is added to the
architecture loss. After every epoch the run directory gets a checkpoint
(``checkpoint.pt`` state dict + ``checkpoint.json`` metadata), ``metrics.csv`` and
the alpha history; a rerun with ``resume=True`` continues bit-exactly.
"""

from __future__ import annotations

import csv
import json
import math
import os
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
from supernets._darts.config import DartsConfig
from supernets._darts.history import load_alpha_history, save_alpha_history
from supernets._darts.supernet import DartsSupernet, LatencyLookup
from supernets._darts.train import batches, evaluate
from supernets.errors import SupernetError

__all__ = ["DartsResult", "DartsSearch", "search_darts", "table_latency"]

FORMAT = "darts-run/1"
DERIVE_ONLY = ("derive", "tune_steps", "eval_batches")
"""Settings that only affect derivation: a finished search may be re-derived with others."""


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
                 latency_weight: float) -> None:
        self.config, self.data = config, data
        self.latency_weight = float(latency_weight)
        self.net = DartsSupernet.from_space(
            space, num_classes=data.num_classes, input_shape=data.input_shape,
            partial_channels=config.partial_channels, edge_normalization=config.edge_normalization,
            seed=config.seed,
        )
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
                self._val_iter = batches(self.data.val, self.config.batch_size, self.gen)
            try:
                return next(self._val_iter)
            except StopIteration:
                self._val_iter = None

    def _arch_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(self.net(x), y)
        if self.latency_weight:
            loss = loss + self.latency_weight * self.net.expected_latency()
        return loss

    def _grads(self, loss: torch.Tensor, params: list[nn.Parameter], retain: bool = False) -> list[torch.Tensor]:
        grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=retain)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=False)]

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor) -> None:
        """One update of the architecture parameters on a validation batch."""
        if self.config.order == 1:
            grads = self._grads(self._arch_loss(xv, yv), self.arch)
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
        g_train = self._grads(F.cross_entropy(self.net(x), y), self.weights)
        with torch.no_grad():  # virtual step w' = w - xi (g + wd w)
            for w, g in zip(self.weights, g_train, strict=False):
                w.sub_(xi * (g + wd * w))
        grads = self._grads(self._arch_loss(xv, yv), [*self.arch, *self.weights])
        d_arch, d_w = grads[:len(self.arch)], grads[len(self.arch):]
        eps = 0.01 / (torch.cat([g.flatten() for g in d_w]).norm() + 1e-12)

        def train_arch_grads(sign: float) -> list[torch.Tensor]:
            with torch.no_grad():
                for w, b, d in zip(self.weights, backup, d_w, strict=False):
                    w.copy_(b + sign * eps * d)
            return self._grads(F.cross_entropy(self.net(x), y), self.arch)

        plus, minus = train_arch_grads(1.0), train_arch_grads(-1.0)
        with torch.no_grad():
            for w, b in zip(self.weights, backup, strict=False):
                w.copy_(b)
        return [d - xi * (p - m) / (2 * eps) for d, p, m in zip(d_arch, plus, minus, strict=False)]

    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """One update of the weights on a training batch; returns (loss, accuracy)."""
        self.w_opt.zero_grad(set_to_none=True)
        out = self.net(x)
        loss = F.cross_entropy(out, y)
        grads = self._grads(loss, self.weights)
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
        for x, y in batches(self.data.train, self.config.batch_size, self.gen):
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
        val_loss, val_acc = evaluate(self.net, self.data.val)
        row = {"epoch": self.epoch, "train_loss": sum(losses) / len(losses),
               "train_acc": sum(accs) / len(accs), "val_loss": val_loss, "val_acc": val_acc,
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
        it = batches(self.data.train, self.config.batch_size, gen)
        for _ in range(self.config.tune_steps):
            try:
                x, y = next(it)
            except StopIteration:
                it = batches(self.data.train, self.config.batch_size, gen)
                x, y = next(it)
            self.weight_step(x, y)

    _tuned = 0


# --------------------------------------------------------------------------- files


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _metadata(space: SearchSpace, config: DartsConfig, data, latency_weight: float,
              space_options: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"format": FORMAT, "space": space.name, "space_options": dict(space_options or {}),
            "fingerprint": space.fingerprint, "config": config.to_dict(),
            "latency_weight": float(latency_weight),
            "data": {"name": getattr(data, "name", "?"), "input_shape": list(data.input_shape),
                     "num_classes": data.num_classes}}


def search_darts(space: SearchSpace, config: DartsConfig, data, run_dir: str | Path, resume: bool = True,
                 latency_table: LatencyLookup | None = None, latency_weight: float = 0.0,
                 space_options: Mapping[str, Any] | None = None, progress: bool | None = None
                 ) -> DartsResult:
    """Run (or resume) a DARTS search and derive an architecture.

    Args:
        space: a cell search space.
        config: search settings.
        data: a ``DataSplits`` (``supernets.data.load_dataset``): weights train on ``train``,
            architecture parameters on ``val``.
        run_dir: checkpoint, ``metrics.csv``, ``alphas.json``/``.csv``, ``derived.json``.
        resume: continue from the checkpoint in ``run_dir`` when there is one (else start over).
        latency_table: anything with ``lookup(LayerSpec) -> ms`` (e.g. ``hardware.LatencyTable``).
        latency_weight: lambda of the expected-latency term (ms) in the architecture loss.
        space_options: the space's factory options, recorded in the metadata.
        progress: show a tqdm bar (None: only on a terminal).

    Raises:
        SupernetError: the checkpoint belongs to another space, configuration or lambda.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = _metadata(space, config, data, latency_weight, space_options)
    search = DartsSearch(space, config, data, latency_table, latency_weight)
    metrics: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    ckpt, ckpt_meta = run_dir / "checkpoint.pt", run_dir / "checkpoint.json"
    if resume and ckpt.is_file() and ckpt_meta.is_file():
        saved = json.loads(ckpt_meta.read_text())
        for key in ("format", "space", "fingerprint", "config", "latency_weight", "data"):
            mine, theirs = meta[key], saved.get(key)
            if key == "config" and isinstance(theirs, dict):
                mine, theirs = ({k: v for k, v in c.items() if k not in DERIVE_ONLY} for c in (mine, theirs))
            if theirs != mine:
                raise SupernetError(
                    f"{run_dir}: checkpoint has a different {key!r} ({theirs!r} vs {mine!r}); "
                    "use another run directory or resume=False"
                )
        search.load_state_dict(torch.load(ckpt, weights_only=True))
        metrics = saved["metrics"][:search.epoch]
        history = [h for h in load_alpha_history(run_dir) if h["epoch"] <= search.epoch]
    else:
        for stale in ("derived.json", "checkpoint.pt", "checkpoint.json"):
            (run_dir / stale).unlink(missing_ok=True)
        history = [{"epoch": 0, "alphas": search.net.alphas()}]
    steps = math.ceil(len(data.train) / config.batch_size)
    bar = tqdm(total=config.epochs * steps, initial=search.epoch * steps, desc="darts search",
               disable=(not progress) if progress is not None else None, leave=False)
    while search.epoch < config.epochs:
        row = search.run_epoch(bar)
        metrics.append(row)
        history.append({"epoch": search.epoch, "alphas": search.net.alphas()})
        tmp = ckpt.with_suffix(".pt.tmp")
        torch.save(search.state_dict(), tmp)
        os.replace(tmp, ckpt)
        _write_json(ckpt_meta, {**meta, "epoch": search.epoch, "metrics": metrics})
        _write_metrics(run_dir / "metrics.csv", metrics)
        save_alpha_history(history, run_dir)
    bar.close()
    if not history or len(history) == 1:
        save_alpha_history(history, run_dir)
    arch = _derive(search, config, space, run_dir)
    latency = None
    if latency_table is not None:
        latency = table_latency(space, arch, latency_table, data.input_shape, data.num_classes)
    _write_json(run_dir / "derived.json", {"method": config.derive, "settings": _derive_settings(config),
                                           "arch": arch.to_dict(), "key": arch.key,
                                           "table_latency_ms": latency, "space": space.name,
                                           "fingerprint": space.fingerprint})
    return DartsResult(arch, search.net, metrics, history, run_dir, latency)


def _derive_settings(config: DartsConfig) -> dict[str, Any]:
    return {k: getattr(config, k) for k in DERIVE_ONLY}


def _derive(search: DartsSearch, config: DartsConfig, space: SearchSpace, run_dir: Path) -> Architecture:
    done = run_dir / "derived.json"
    if done.is_file():  # a finished run: derivation (which may retune weights) is not repeated
        saved = json.loads(done.read_text())
        if saved.get("settings") == _derive_settings(config) and saved.get("fingerprint") == space.fingerprint:
            return space.validate(Architecture(saved["arch"]))
    if config.derive == "argmax":
        return search.net.derive("argmax")
    val = list(batches(search.data.val, config.batch_size))[:config.eval_batches]
    arch = search.net.derive("perturbation", data=val, tune=search.tune, seed=config.seed)
    search.net.reset_selection()
    return arch
