"""Training configuration of an OFA supernet: frozen dataclasses validated on construction."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from supernets._ofa.supernet import ELASTIC
from supernets.errors import SupernetError

__all__ = ["OFATrainConfig", "PhaseConfig", "progressive_shrinking", "sandwich_schedule"]

SCHEDULES = ("cosine", "constant")
SANDWICH_RESOLUTIONS = ("extremes", "random")


@dataclass(frozen=True)
class PhaseConfig:
    """One phase of progressive shrinking.

    Args:
        name: label (shown in the progress bar and the metrics CSV).
        elastic: what is sampled in this phase (subset of kernel, width, depth,
            resolution); empty trains the largest network alone.
        epochs: passes over the training set (ignored when ``steps`` is set).
        steps: optimiser steps of the phase (overrides ``epochs``).
        lr: peak learning rate of the phase (SGD, Nesterov momentum).
        schedule: ``"cosine"`` (decay to 0 over the phase) or ``"constant"``.
        warmup_steps: linear warm-up steps at the start of the phase.
        n_random: random subnets per step besides the largest and the smallest
            (the sandwich rule).
        eps_ramp_steps: delayed epsilon-shrinking (DEpS): over this many steps the
            probability that a decision of a random subnet leaves its maximum grows
            linearly from 0 to 1 (0: uniform sampling from the first step).
        sandwich_resolution: input resolution of the largest and the smallest subnet
            when resolution is elastic in the phase: ``"extremes"`` (the largest at
            the largest, the smallest at the smallest, as in BigNAS) or ``"random"``
            (one resolution drawn per step, shared by both). With ``"extremes"`` the
            shared weights of the largest kernels/widths are trained mostly at the
            largest input and those of the smallest at the smallest, which biases the
            inherited accuracy of subnets that mix them (see :func:`sandwich_schedule`),
            so ``"random"`` is the default; :func:`progressive_shrinking`'s full phase
            uses ``"extremes"`` to train the largest network at both ends.
    """

    name: str
    elastic: tuple[str, ...] = ()
    epochs: int = 1
    steps: int | None = None
    lr: float = 0.05
    schedule: str = "cosine"
    warmup_steps: int = 0
    n_random: int = 2
    eps_ramp_steps: int = 0
    sandwich_resolution: str = "random"

    def __post_init__(self) -> None:
        object.__setattr__(self, "elastic", tuple(self.elastic))
        where = f"(phase {self.name!r})"
        unknown = sorted(set(self.elastic) - set(ELASTIC))
        if unknown:
            raise SupernetError(
                f"elastic: unknown elastic kind(s) {unknown} {where}; valid: {', '.join(ELASTIC)}")
        if self.schedule not in SCHEDULES:
            raise SupernetError(
                f"schedule: {self.schedule!r} unknown {where}; valid: {', '.join(SCHEDULES)}")
        for key, most in (("epochs", 100_000), ("steps", 100_000_000), ("n_random", 64),
                          ("warmup_steps", 100_000_000), ("eps_ramp_steps", 100_000_000)):
            value = getattr(self, key)
            if value is not None and not 0 <= value <= most:
                raise SupernetError(f"{key}: must be in [0, {most:,}], got {value} {where}")
        if self.lr <= 0:
            raise SupernetError(f"lr: must be > 0, got {self.lr} {where}")
        if self.sandwich_resolution not in SANDWICH_RESOLUTIONS:
            raise SupernetError(
                f"sandwich_resolution: {self.sandwich_resolution!r} unknown {where}; "
                f"valid: {', '.join(SANDWICH_RESOLUTIONS)}")


def sandwich_schedule(epochs: int = 24, lr: float = 0.1, n_random: int = 2,
                      warmup_steps: int = 10,
                      sandwich_resolution: str = "random") -> tuple[PhaseConfig, ...]:
    """The default schedule: every elastic kind from the first step (BigNAS).

    One cosine phase in which each step trains the largest subnet on the labels and
    the smallest plus ``n_random`` random subnets (every kind elastic: resolution,
    kernel, depth, width) with in-place distillation from the largest. The largest
    and the smallest share one resolution drawn per step (``sandwich_resolution=
    "random"``), not the largest and the smallest input as in BigNAS: with those
    extremes the 7x7 kernels were trained mostly at the largest input and the 3x3
    kernels at the smallest, and the inherited accuracy of every other subnet
    carried that pairing. Measured (``bench/supernet_quality.py``, 30 subnets of
    ``mobilenetv3_ofa`` width 0.25 at 12-24 px on digits_aug, 24 epochs): Kendall tau
    against standalone training 0.549 with the extremes and 0.624 with a drawn
    resolution (Spearman 0.763 / 0.827); within the 12 px subnets, a 3x3 first
    kernel had been favoured (tau -0.47 against standalone) and no longer is (+0.33).

    Why it is the default: at the budgets a CPU affords, every subnet needs as many
    updates as it can get. Measured on digits (``mobilenetv3_ofa`` width 0.25,
    resolutions 12/16, 12 epochs in all, held-out accuracy after BN recalibration):
    this schedule reaches 95.7% largest / 94.4% smallest / 90.5-94.8% for four
    random subnets, while progressive shrinking with the same 12 epochs reaches
    92.2% / 85.5% / 70.8-86.1% (full phase 6 epochs, elastic phases 2 epochs each at
    a 20x lower learning rate), 92.8% / 90.5% / 83.5-88.7% (elastic phases at lr
    0.03 with warm-up) or 91.1% / 89.2% / 82.5-86.1% (4 full epochs, then 8 epochs
    with everything elastic): weights fitted to the largest network first give the
    small kernels, depths and widths a bad start that a short elastic phase does not
    repair. :func:`progressive_shrinking` remains available for long budgets.

    Args:
        epochs: epochs of the phase.
        lr: peak learning rate (cosine decay to 0 after ``warmup_steps`` linear steps).
        n_random: random subnets per step besides the largest and the smallest.
        warmup_steps: linear warm-up steps.
        sandwich_resolution: see :class:`PhaseConfig`.
    """
    return (PhaseConfig("sandwich", ELASTIC, epochs, lr=lr, n_random=n_random,
                        warmup_steps=warmup_steps, sandwich_resolution=sandwich_resolution),)


def progressive_shrinking(epochs: int = 1, lr: float = 0.05, n_random: int = 2,
                          full_epochs: int | None = None,
                          elastic_lr: float | None = None,
                          warmup_steps: int = 10) -> tuple[PhaseConfig, ...]:
    """The Once-for-All schedule: full network, then elastic kernel, depth, width.

    Resolution is elastic from the first phase on, as in Once-for-All, which samples
    the input size for every batch: the full phase trains the largest network at the
    largest and the smallest resolution (``n_random=0``, ``sandwich_resolution="extremes"``). Adding resolution only in
    the kernel phase (the earlier default) dropped the largest network's validation
    accuracy from 0.96 to 0.71-0.84 within 30 steps on digits (measured), since its
    weights had never seen the smaller inputs.

    Each elastic phase warms its learning rate up over ``warmup_steps``: the first
    steps of a phase see subnets (e.g. 3x3 kernels) the weights were never trained
    for, whose large losses otherwise hit the shared weights at the peak rate.
    Progressive shrinking pays off with long phases (OFA trains each for tens of
    epochs); at small budgets :func:`sandwich_schedule` (the default) is much better.

    Args:
        epochs: epochs of each elastic phase (and of the full phase unless ``full_epochs``).
        lr: learning rate of the full phase (and of the others unless ``elastic_lr``).
        n_random: random subnets per step in the elastic phases.
        full_epochs: epochs of the full-network phase.
        elastic_lr: learning rate of the elastic phases; as in OFA, it should be
            smaller than the full phase's (the sandwich sums several subnets' gradients).
        warmup_steps: linear warm-up steps of each elastic phase.
    """
    full = epochs if full_epochs is None else full_epochs
    low = lr if elastic_lr is None else elastic_lr
    kw = {"lr": low, "n_random": n_random, "warmup_steps": warmup_steps}
    return (
        PhaseConfig("full", ("resolution",), full, lr=lr, n_random=0, sandwich_resolution="extremes"),
        PhaseConfig("kernel", ("resolution", "kernel"), epochs, **kw),
        PhaseConfig("depth", ("resolution", "kernel", "depth"), epochs, **kw),
        PhaseConfig("width", ("resolution", "kernel", "depth", "width"), epochs, **kw),
    )


@dataclass(frozen=True)
class OFATrainConfig:
    """The training settings of a supernet run (saved with every checkpoint).

    What is trained (the space) and on what (the data) are arguments of
    :func:`~supernets.train_supernet`, not settings; an experiment file gives them in
    its ``space`` and ``data`` sections (``nas.experiment``), and ``nas.config.parse``
    builds this dataclass from the file's ``supernet.train`` section.

    Args:
        phases: the training schedule (default :func:`sandwich_schedule`: 24 epochs with
            every kind elastic from the first step; :func:`progressive_shrinking` gives
            the OFA phases).
        batch_size, momentum, weight_decay: SGD settings.
        kd_weight, kd_temperature: in-place distillation: each smaller subnet's loss is
            cross-entropy + kd_weight * KL(largest's soft targets || subnet).
        seed: weights, data order and subnet sampling all derive from it.
        checkpoint_every: save every this many steps (and at each phase end).
        calib_images: training images for batch-norm recalibration before evaluation
            (on digits, 128, 256 or 512 instead of all 1,259 training images moved single
            subnets' accuracies by up to 1.7 points and their mean by 0.2-0.9: use more
            when accuracies are compared closely).

    Raises:
        SupernetError: a value outside its range (the message names the field).
    """

    phases: tuple[PhaseConfig, ...] = field(default_factory=sandwich_schedule)
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 3e-5
    kd_weight: float = 1.0
    kd_temperature: float = 1.0
    seed: int = 0
    checkpoint_every: int = 50
    calib_images: int = 256

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", tuple(self.phases))
        if not self.phases:
            raise SupernetError("phases: the schedule needs at least one phase")
        if self.batch_size < 2:
            raise SupernetError(f"batch_size: must be >= 2, got {self.batch_size}")
        if self.checkpoint_every < 1:
            raise SupernetError(f"checkpoint_every: must be >= 1, got {self.checkpoint_every}")
        if not 0 <= self.calib_images <= 1_000_000:
            raise SupernetError(f"calib_images: must be in [0, 1,000,000], got {self.calib_images}")
        if self.batch_size > 1_000_000:
            raise SupernetError(f"batch_size: must be <= 1,000,000, got {self.batch_size}")
        if self.kd_temperature <= 0:
            raise SupernetError(f"kd_temperature: must be > 0, got {self.kd_temperature}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (tuples as lists): what a checkpoint records."""
        out = dataclasses.asdict(self)
        out["phases"] = [{**p, "elastic": list(p["elastic"])} for p in out["phases"]]
        return out
