"""Progressive-shrinking training of an OFA supernet: resumable, deterministic under a seed.

One phase loop, parameterised by what is elastic. Each step applies the sandwich
rule (the largest subnet on the labels; the smallest and ``n_random`` random
subnets on labels plus the largest's soft targets: in-place distillation).

Determinism: the data order of a phase epoch, the subnets of a step and the torch
RNG of a step are derived from ``(seed, phase, epoch)`` and ``(seed, step)``, and the
checkpoint holds the weights and optimiser state, so a run resumed from any
checkpoint ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from search_spaces import SearchSpace, get_space
from supernets._ofa.config import OFATrainConfig, PhaseConfig
from supernets._ofa.evaluate import evaluate_subnet
from supernets._ofa.supernet import OFASupernet
from supernets.data import DataSplits
from supernets.errors import SupernetError

__all__ = ["SupernetState", "TrainResult", "load_supernet", "save_checkpoint", "train_supernet"]

FORMAT = "ofa-supernet/2"
RNG_SCHEME = "SeedSequence([seed, step]) per step; [seed, phase, epoch] per epoch"
WEIGHTS, META, METRICS = "supernet.pt", "supernet.json", "metrics.csv"
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


# ---------------------------------------------------------------------- state


@dataclass(frozen=True)
class SupernetState:
    """Where a supernet training run stands; ``supernet.json`` is written from it.

    Attributes:
        space, space_options, fingerprint: the search space (name and factory options,
            so :func:`load_supernet` can rebuild it) and its grammar fingerprint.
        num_classes, input_shape, data: the data the supernet was built for.
        seed: the run's seed (``config["seed"]``).
        config: the training settings as plain data (``OFATrainConfig.to_dict()``).
        phase, phase_step, step: progress (phase index, step within it, steps in all).
        finished: every phase is done.
    """

    space: str
    space_options: dict[str, Any]
    fingerprint: str
    num_classes: int
    input_shape: tuple[int, ...]
    data: str
    config: dict[str, Any]
    phase: int = 0
    phase_step: int = 0
    step: int = 0
    finished: bool = False
    format: str = FORMAT
    rng: str = RNG_SCHEME

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape)
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> SupernetState:
        """Read ``supernet.json`` (written by this module); refuses another format."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise SupernetError(f"{where}: format {found!r} is not {FORMAT!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(names - set(data) - {"phase", "phase_step", "step", "finished", "rng"})
        if missing:
            raise SupernetError(f"{where}: not a supernet checkpoint record (missing {missing})")
        data["input_shape"] = tuple(data["input_shape"])
        return cls(**{k: v for k, v in data.items() if k in names})


# ---------------------------------------------------------------------- checkpoints


def save_checkpoint(run_dir: Path, supernet: OFASupernet, state: SupernetState,
                    optimizer_state: Mapping[str, Any] | None = None) -> None:
    """Write weights (+ optimiser state) and the JSON state, each atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (WEIGHTS + ".tmp")
    torch.save({"model": supernet.state_dict(), "optimizer": dict(optimizer_state or {})}, tmp)
    os.replace(tmp, run_dir / WEIGHTS)
    tmp = run_dir / (META + ".tmp")
    tmp.write_text(state.to_json())
    os.replace(tmp, run_dir / META)


def _paths(checkpoint: str | Path) -> tuple[Path, Path]:
    path = Path(checkpoint)
    if path.is_dir():
        return path / WEIGHTS, path / META
    return path, path.with_suffix(".json")


def load_supernet(checkpoint: str | Path, space: SearchSpace | None = None
                  ) -> tuple[OFASupernet, SupernetState]:
    """Rebuild a supernet from a checkpoint (a run folder or its ``supernet.pt``).

    The space is rebuilt from the recorded name and factory options (or ``space`` is
    used) and must have the recorded fingerprint.

    Returns:
        The supernet (eval mode) and its training state.
    """
    weights, meta_path = _paths(checkpoint)
    if not meta_path.is_file() or not weights.is_file():
        raise SupernetError(f"{checkpoint}: not a supernet checkpoint (needs {WEIGHTS} and {META})")
    state = SupernetState.from_json(meta_path.read_text(), str(meta_path))
    if space is None:
        space = get_space(state.space, **state.space_options)
    if space.fingerprint != state.fingerprint:
        raise SupernetError(
            f"{checkpoint}: checkpoint of space {state.space!r} (fingerprint "
            f"{state.fingerprint}), not of space {space.name!r} (fingerprint {space.fingerprint})")
    net = OFASupernet.from_space(space, state.num_classes, state.input_shape)
    saved = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(saved["model"])
    return net.eval(), state


# ---------------------------------------------------------------------- training


def _kd(logits: torch.Tensor, soft: torch.Tensor, temperature: float) -> torch.Tensor:
    log_p = F.log_softmax(logits / temperature, dim=1)
    return F.kl_div(log_p, soft, reduction="batchmean") * temperature**2


def _step(net: OFASupernet, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
          phase: PhaseConfig, config: OFATrainConfig, rng: np.random.Generator,
          phase_step: int) -> tuple[float, float, float]:
    opt.zero_grad(set_to_none=True)
    largest = net.largest_arch
    shared_resolution = phase.sandwich_resolution == "random" and "resolution" in phase.elastic
    if shared_resolution:
        largest = net.sample(rng, ("resolution",))  # one random resolution, all else largest
    net.set_active(largest)
    logits = net(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    acc = (logits.argmax(1) == y).float().mean().item()
    sub_losses = []
    if phase.elastic:
        soft = F.softmax(logits.detach() / config.kd_temperature, dim=1)
        eps = 1.0 if not phase.eps_ramp_steps else min(1.0, phase_step / phase.eps_ramp_steps)
        smallest = net.smallest(phase.elastic)
        if shared_resolution:  # the smallest at the largest's drawn resolution
            smallest = smallest.update({p: largest[p] for p, kind in net.categories.items()
                                        if kind == "resolution" and p in largest})
        archs = [smallest]
        archs += [net.sample(rng, phase.elastic, eps) for _ in range(phase.n_random)]
        for arch in archs:
            net.set_active(arch)
            out = net(x)
            sub = F.cross_entropy(out, y) + config.kd_weight * _kd(out, soft, config.kd_temperature)
            sub.backward()
            sub_losses.append(sub.item())
    opt.step()
    return loss.item(), acc, float(np.mean(sub_losses)) if sub_losses else float("nan")


def _evaluate(net: OFASupernet, data: DataSplits, config: OFATrainConfig,
              phase: PhaseConfig) -> tuple[float, float]:
    """Val accuracy of the largest and smallest subnets; BN statistics restored after."""
    saved = {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "batches" in k}
    accs = [evaluate_subnet(net, arch, data, calib_images=config.calib_images, seed=config.seed)
            for arch in (net.largest_arch, net.smallest(phase.elastic))]
    net.load_state_dict(saved, strict=False)
    return accs[0], accs[1]


class _Run:
    """One training run: the supernet, its state, the metrics rows not yet written."""

    def __init__(self, net: OFASupernet, config: OFATrainConfig, data: DataSplits, run_dir: Path,
                 state: SupernetState, progress: bool | None) -> None:
        self.net, self.config, self.data, self.run_dir = net, config, data, run_dir
        self.state = state
        self.rows: list[dict[str, Any]] = []
        self.all_rows: list[dict[str, Any]] = []
        x_all = data.train.tensors[0]
        self.per_epoch = max(1, len(x_all) // config.batch_size)
        self.totals = [_phase_steps(p, self.per_epoch) for p in config.phases]
        self.bar = tqdm(total=sum(self.totals), initial=state.step, desc="supernet", dynamic_ncols=True,
                        disable=(not progress) if progress is not None else None)
        self.start = time.perf_counter()

    def checkpoint(self, optimizer: torch.optim.Optimizer | None) -> None:
        save_checkpoint(self.run_dir, self.net, self.state,
                        optimizer.state_dict() if optimizer else None)
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
        return TrainResult(self.net, self.run_dir, self.state.step, False, self.all_rows)

    def _batch(self, p_idx: int, s: int) -> torch.Tensor:
        x_all = self.data.train.tensors[0]
        bs = self.config.batch_size
        epoch, i = divmod(s, self.per_epoch)
        order = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(
            _seed(self.config.seed, p_idx, epoch)))
        return order[i * bs:(i + 1) * bs]

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
        x_all, y_all = self.data.train.tensors
        while self.state.phase_step < self.totals[p_idx]:
            if max_steps is not None and self.state.step >= max_steps:
                return self.stop(opt)
            s = self.state.phase_step
            idx = self._batch(p_idx, s)
            torch.manual_seed(_seed(config.seed, self.state.step, 1))
            lr = _lr(phase, s, self.totals[p_idx])
            for group in opt.param_groups:
                group["lr"] = lr
            rng = np.random.default_rng([config.seed, self.state.step])
            loss, acc, sub = _step(net, opt, x_all[idx], y_all[idx], phase, config, rng, s)
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
        large, small = _evaluate(self.net, self.data, self.config, phase)
        self.net.train()
        self.rows.append({"step": self.state.step, "phase": phase.name,
                          "phase_step": self.state.phase_step, "val_acc_largest": f"{large:.4f}",
                          "val_acc_smallest": f"{small:.4f}",
                          "seconds": f"{time.perf_counter() - self.start:.2f}"})
        self.bar.write(f"phase {phase.name}: val acc largest {large:.4f} smallest {small:.4f}")
        done = p_idx + 1 >= len(self.config.phases)
        self.state = dataclasses.replace(self.state, phase=p_idx + 1, phase_step=0, finished=done)
        self.checkpoint(None)


def _resume(net: OFASupernet, space: SearchSpace, run_dir: Path, state: SupernetState
            ) -> tuple[SupernetState, dict[str, Any]]:
    """Load the run in ``run_dir`` into ``net``; its state and optimiser state."""
    loaded, old = load_supernet(run_dir, space)
    def same(s: SupernetState) -> Any:
        return json.loads(json.dumps([s.config, s.data, s.num_classes, list(s.input_shape)]))

    if same(old) != same(state):
        raise SupernetError(f"{run_dir}: holds a run with another config; use another run_dir "
                            "or resume=False")
    net.load_state_dict(loaded.state_dict())
    state = dataclasses.replace(state, phase=old.phase, phase_step=old.phase_step, step=old.step,
                                finished=old.finished)
    optimizer = torch.load(run_dir / WEIGHTS, map_location="cpu", weights_only=True)["optimizer"]
    return state, optimizer


def train_supernet(space: SearchSpace, config: OFATrainConfig, data: DataSplits,
                   run_dir: str | Path = "runs/ofa", resume: bool = True,
                   max_steps: int | None = None, progress: bool | None = None,
                   space_options: Mapping[str, Any] | None = None) -> TrainResult:
    """Train an OFA supernet of ``space`` on ``data``, checkpointing as it goes.

    Args:
        space: the search space (its decisions must be elastic, see :class:`OFASupernet`).
        config: the schedule and optimiser settings.
        data: data splits (``supernets.data.load_dataset``).
        run_dir: folder of ``supernet.pt``, ``supernet.json`` and ``metrics.csv``.
        resume: continue from the checkpoint in ``run_dir`` when there is one.
        max_steps: stop (with a checkpoint) once this many steps are done in total;
            a later call resumes.
        progress: show a tqdm bar (``None``: only on a terminal).
        space_options: the space's factory options, recorded so that
            :func:`load_supernet` can rebuild a registered space by name.

    Returns:
        A :class:`TrainResult`; ``finished`` is False when ``max_steps`` stopped it.
    """
    run_dir = Path(run_dir)
    net = OFASupernet.from_space(space, data.num_classes, data.input_shape, seed=config.seed)
    state = SupernetState(space.name, dict(space_options or {}), space.fingerprint, data.num_classes,
                          tuple(data.input_shape), data.name, config.to_dict())
    opt_state: dict[str, Any] = {}
    if resume and (run_dir / META).is_file():
        state, opt_state = _resume(net, space, run_dir, state)
    elif (run_dir / METRICS).exists():
        (run_dir / METRICS).unlink()
    run = _Run(net, config, data, run_dir, state, progress)
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
    net.eval()
    return TrainResult(net, run_dir, run.state.step, True, run.all_rows)
