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
from supernets.data import DataSplits, load_dataset
from supernets.errors import SupernetError

__all__ = ["TrainResult", "load_supernet", "save_checkpoint", "train_supernet"]

FORMAT = "ofa-supernet/1"
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


# ---------------------------------------------------------------------- checkpoints


def save_checkpoint(run_dir: Path, supernet: OFASupernet, meta: Mapping[str, Any],
                    optimizer_state: Mapping[str, Any] | None = None) -> None:
    """Write weights (+ optimiser state) and the JSON metadata, each atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (WEIGHTS + ".tmp")
    torch.save({"model": supernet.state_dict(), "optimizer": dict(optimizer_state or {})}, tmp)
    os.replace(tmp, run_dir / WEIGHTS)
    tmp = run_dir / (META + ".tmp")
    tmp.write_text(json.dumps(dict(meta), indent=1, sort_keys=True))
    os.replace(tmp, run_dir / META)


def _paths(checkpoint: str | Path) -> tuple[Path, Path]:
    path = Path(checkpoint)
    if path.is_dir():
        return path / WEIGHTS, path / META
    return path, path.with_suffix(".json")


def load_supernet(checkpoint: str | Path, space: SearchSpace | None = None
                  ) -> tuple[OFASupernet, dict[str, Any]]:
    """Rebuild a supernet from a checkpoint (a run folder or its ``supernet.pt``).

    The space is rebuilt from the recorded name and factory options (or ``space`` is
    used) and must have the recorded fingerprint.

    Returns:
        The supernet (eval mode) and the metadata.
    """
    weights, meta_path = _paths(checkpoint)
    if not meta_path.is_file() or not weights.is_file():
        raise SupernetError(f"{checkpoint}: not a supernet checkpoint (needs {WEIGHTS} and {META})")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise SupernetError(f"{meta_path}: format {meta.get('format')!r} is not {FORMAT!r}")
    if space is None:
        space = get_space(meta["space"], **meta["space_options"])
    if space.fingerprint != meta["fingerprint"]:
        raise SupernetError(
            f"{checkpoint}: checkpoint of space {meta['space']!r} (fingerprint "
            f"{meta['fingerprint']}), not of space {space.name!r} (fingerprint {space.fingerprint})")
    net = OFASupernet.from_space(space, meta["num_classes"], tuple(meta["input_shape"]))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(state["model"])
    return net.eval(), meta


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


def train_supernet(space: SearchSpace | None, config: OFATrainConfig, data: DataSplits | None = None,
                   run_dir: str | Path = "runs/ofa", resume: bool = True,
                   max_steps: int | None = None, progress: bool | None = None) -> TrainResult:
    """Train an OFA supernet with progressive shrinking, checkpointing as it goes.

    Args:
        space: the search space (``None``: ``get_space(config.space, **config.space_options)``).
        config: the schedule and optimiser settings.
        data: data splits (``None``: ``load_dataset(config.data, config.data_root)``).
        run_dir: folder of ``supernet.pt``, ``supernet.json`` and ``metrics.csv``.
        resume: continue from the checkpoint in ``run_dir`` when there is one.
        max_steps: stop (with a checkpoint) once this many steps are done in total;
            a later call resumes.
        progress: show a tqdm bar (``None``: only on a terminal).

    Returns:
        A :class:`TrainResult`; ``finished`` is False when ``max_steps`` stopped it.
    """
    space = space if space is not None else get_space(config.space, **config.space_options)
    data = data if data is not None else load_dataset(config.data, config.data_root, seed=config.seed)
    run_dir = Path(run_dir)
    net = OFASupernet.from_space(space, data.num_classes, data.input_shape, seed=config.seed)
    meta: dict[str, Any] = {
        "format": FORMAT, "space": space.name,
        "space_options": dict(config.space_options) if space.name == config.space else {},
        "fingerprint": space.fingerprint, "num_classes": data.num_classes,
        "input_shape": list(data.input_shape), "data": data.name, "config": config.to_dict(),
        "rng": {"scheme": "SeedSequence([seed, step]) per step; [seed, phase, epoch] per epoch",
                "seed": config.seed},
        "phase": 0, "phase_step": 0, "step": 0, "finished": False,
    }
    opt_state: dict[str, Any] = {}
    if resume and (run_dir / META).is_file():
        loaded, old = load_supernet(run_dir, space)
        if old["config"] != json.loads(json.dumps(meta["config"])):
            raise SupernetError(f"{run_dir}: holds a run with another config; use another run_dir "
                                "or resume=False")
        net.load_state_dict(loaded.state_dict())
        meta.update({k: old[k] for k in ("phase", "phase_step", "step", "finished")})
        opt_state = torch.load(run_dir / WEIGHTS, map_location="cpu", weights_only=True)["optimizer"]
    elif (run_dir / METRICS).exists():
        (run_dir / METRICS).unlink()

    x_all, y_all = data.train.tensors
    bs = config.batch_size
    per_epoch = max(1, len(x_all) // bs)
    totals = [_phase_steps(p, per_epoch) for p in config.phases]
    total = sum(totals)
    rows: list[dict[str, Any]] = []
    all_rows: list[dict[str, Any]] = []

    def checkpoint(optimizer) -> None:
        save_checkpoint(run_dir, net, meta, optimizer.state_dict() if optimizer else None)
        new = not (run_dir / METRICS).exists()
        with open(run_dir / METRICS, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=_FIELDS)
            if new:
                writer.writeheader()
            writer.writerows(rows)
        all_rows.extend(rows)
        rows.clear()

    bar = tqdm(total=total, initial=meta["step"], disable=(not progress) if progress is not None else None,
               desc="supernet", dynamic_ncols=True)
    start = time.perf_counter()
    net.train()
    with torch.random.fork_rng(devices=[]):
        while meta["phase"] < len(config.phases) and not meta["finished"]:
            p_idx, phase = meta["phase"], config.phases[meta["phase"]]
            if max_steps is not None and meta["step"] >= max_steps and meta["phase_step"] == 0:
                checkpoint(None)
                bar.close()
                return TrainResult(net, run_dir, meta["step"], False, all_rows)
            params = [p for p in net.parameters() if p.requires_grad]
            opt = torch.optim.SGD(params, lr=phase.lr, momentum=config.momentum, nesterov=True,
                                  weight_decay=config.weight_decay)
            if meta["phase_step"] == 0:
                if "width" in phase.elastic:
                    net.sort_channels()
            elif opt_state:
                opt.load_state_dict(opt_state)
            opt_state = {}
            bar.set_description(f"supernet [{phase.name}]")
            while meta["phase_step"] < totals[p_idx]:
                if max_steps is not None and meta["step"] >= max_steps:
                    checkpoint(opt)
                    bar.close()
                    return TrainResult(net, run_dir, meta["step"], False, all_rows)
                s = meta["phase_step"]
                epoch, i = divmod(s, per_epoch)
                order = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(
                    _seed(config.seed, p_idx, epoch)))
                idx = order[i * bs:(i + 1) * bs]
                torch.manual_seed(_seed(config.seed, meta["step"], 1))
                lr = _lr(phase, s, totals[p_idx])
                for group in opt.param_groups:
                    group["lr"] = lr
                rng = np.random.default_rng([config.seed, meta["step"]])
                loss, acc, sub = _step(net, opt, x_all[idx], y_all[idx], phase, config, rng, s)
                meta["phase_step"] += 1
                meta["step"] += 1
                rows.append({"step": meta["step"], "phase": phase.name, "phase_step": s + 1,
                             "lr": f"{lr:.6g}", "loss": f"{loss:.5f}", "acc": f"{acc:.4f}",
                             "sub_loss": f"{sub:.5f}",
                             "seconds": f"{time.perf_counter() - start:.2f}"})
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.2f}")
                if meta["step"] % config.checkpoint_every == 0:
                    checkpoint(opt)
                net.train()
            large, small = _evaluate(net, data, config, phase)
            net.train()
            rows.append({"step": meta["step"], "phase": phase.name, "phase_step": meta["phase_step"],
                         "val_acc_largest": f"{large:.4f}", "val_acc_smallest": f"{small:.4f}",
                         "seconds": f"{time.perf_counter() - start:.2f}"})
            bar.write(f"phase {phase.name}: val acc largest {large:.4f} smallest {small:.4f}")
            meta["phase"], meta["phase_step"] = p_idx + 1, 0
            meta["finished"] = meta["phase"] >= len(config.phases)
            checkpoint(None)
    bar.close()
    net.eval()
    return TrainResult(net, run_dir, meta["step"], True, all_rows)

