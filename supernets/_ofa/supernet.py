"""`OFASupernet`: the largest network of an elastic space, running any of its subnets.

The grammar is the single source of truth. The supernet plans the largest
architecture (every value decision at its maximum, every repeat at its maximum
depth) and turns each planned op into a :class:`~supernets._ofa.dynamic.DynamicOp`.
Activating an architecture plans it with the same planner and hands each op its
own resolved layer spec, so shapes, ``out=0`` conventions and residuals are never
re-derived here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from search_spaces import Architecture, Recorder, SearchSpace, derive, get_op
from search_spaces.derivation import join
from search_spaces.plan import (
    ParallelModule,
    PNode,
    POp,
    PParallel,
    PResidual,
    PSeq,
    ResidualModule,
)
from supernets._ofa.dynamic import DynamicOp, dynamic_op_class
from supernets.errors import SupernetError

__all__ = ["ELASTIC", "OFASupernet"]

ELASTIC = ("kernel", "width", "depth", "resolution")
"""What can be elastic: op kernels, channel counts (expand ratio / width), repeat
depths, and the input resolution."""

_PARAM_KIND = {"kernel": "kernel", "channels": "width", "resolution": "resolution"}


class _Pick:
    """A decider answering each decision by a rule ``pick(path, choices)``."""

    def __init__(self, pick: Callable[[str, tuple], Any]) -> None:
        self.pick = pick

    def decide(self, path: str, choices: tuple, probs: tuple[float, ...] | None, kind: str) -> Any:
        return self.pick(path, choices)


def _largest(choices: tuple) -> Any:
    try:
        return max(choices)
    except TypeError:
        return choices[0]


# ---------------------------------------------------------------------- module tree


class _Seq(nn.Module):
    def __init__(self, children: list[nn.Module], paths: list[str]) -> None:
        super().__init__()
        self.items = nn.ModuleList(children)
        self.paths = paths
        self.active = list(range(len(children)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in self.active:
            x = self.items[i](x)
        return x


def _match(active: list[PNode], paths: list[str], where: str) -> list[int]:
    """Indices of the largest plan's children that the active children are (in order)."""
    out, start = [], 0
    for child in active:
        try:
            i = paths.index(child.path, start)
        except ValueError:
            raise SupernetError(f"{where}: active layer {child.path!r} is not in the supernet") from None
        out.append(i)
        start = i + 1
    return out


# ---------------------------------------------------------------------- supernet


class OFASupernet(nn.Module):
    """Once-for-All weight-sharing supernet of an elastic search space.

    Build it with :meth:`from_space`. Decisions may be op parameters declared elastic
    by the op registry (kernel, channels, resolution) and repeat depths; any other
    decision (a choice among productions, cell edges or inputs, a non-elastic op
    parameter) is refused with an error naming its path.

    Attributes:
        space: the search space.
        categories: ``{decision path: "kernel" | "width" | "depth" | "resolution"}``.
        decision_choices: ``{decision path: allowed values}``.
        largest_arch, smallest_arch: the architectures at every maximum / minimum.
    """

    def __init__(self, space: SearchSpace, num_classes: int, input_shape: tuple[int, ...],
                 seed: int = 0) -> None:
        super().__init__()
        self.space = space
        self.num_classes = int(num_classes)
        self.input_shape = tuple(input_shape)
        self.largest_arch, self.decision_choices, plan, self.categories = _analyse(
            space, self.num_classes, self.input_shape)
        self.smallest_arch = self._derive(
            lambda path, ch: min(ch) if self.categories.get(path) else _largest(ch))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.body = self._compile(plan)
        self._active: Architecture = self.largest_arch

    @staticmethod
    def check_space(space: SearchSpace, num_classes: int | None = None,
                    input_shape: Sequence[int] | None = None) -> dict[str, str]:
        """Check, without building weights, that an OFA supernet can serve ``space``.

        Returns:
            ``{decision path: "kernel" | "width" | "depth" | "resolution"}``.

        Raises:
            SupernetError: the first decision that cannot be elastic, named by its path.
        """
        shape = tuple(input_shape) if input_shape is not None else space.input_shape
        return _analyse(space, int(num_classes or space.num_classes), shape)[3]

    @classmethod
    def from_space(cls, space: SearchSpace, num_classes: int | None = None,
                   input_shape: Sequence[int] | None = None, seed: int = 0) -> OFASupernet:
        """Build the supernet of ``space`` (weights initialised from ``seed``).

        Args:
            space: a space whose decisions are all elastic (see class docstring).
            num_classes: classifier outputs (default: the space's).
            input_shape: (C, H, W) of the raw input (default: the space's).
            seed: weight-initialisation seed (global torch RNG untouched).

        Raises:
            SupernetError: a decision that cannot be elastic, named by its path.
        """
        return cls(space, num_classes or space.num_classes,
                   tuple(input_shape) if input_shape is not None else space.input_shape, seed)

    def _op_choices(self, p: POp) -> dict[str, tuple]:
        out = {}
        for pname, _ in p.spec.params:
            path = join(p.path, pname)
            if path in self.categories:
                out[pname] = self.decision_choices[path]
        return out

    def _compile(self, p: PNode) -> nn.Module:
        if isinstance(p, POp):
            return dynamic_op_class(p.spec.op)(p.spec, self._op_choices(p))
        if isinstance(p, PSeq):
            return _Seq([self._compile(c) for c in p.children], [c.path for c in p.children])
        if isinstance(p, PResidual):
            return ResidualModule(self._compile(p.body))
        if isinstance(p, PParallel):
            return ParallelModule([self._compile(b) for b in p.branches], p.merge, p.split)
        raise SupernetError(f"{p.path}: {type(p).__name__} is not supported by the OFA supernet")

    # ------------------------------------------------------------------ activation
    def _derive(self, pick: Callable[[str, tuple], Any]) -> Architecture:
        return Architecture(derive(self.space, _Pick(pick)).recorder.decisions)

    def set_active(self, arch: Mapping[str, Any]) -> Architecture:
        """Make ``arch`` the subnet that :meth:`forward` runs; returns it validated."""
        arch = self.space.validate(arch)
        plan = self.space.plan(arch, self.input_shape, self.num_classes)
        self._activate(self.body, plan)
        self._active = arch
        return arch

    def _activate(self, module: nn.Module, p: PNode) -> None:
        if isinstance(module, DynamicOp):
            module.check(p.spec)
            module.spec = p.spec
        elif isinstance(module, _Seq):
            module.active = _match(p.children, module.paths, p.path or "root")
            for i, child in zip(module.active, p.children):
                self._activate(module.items[i], child)
        elif isinstance(module, ResidualModule):
            self._activate(module.body, p.body)
        elif isinstance(module, ParallelModule):
            for m, b in zip(module.branches, p.branches):
                self._activate(m, b)

    @property
    def active(self) -> Architecture:
        return self._active

    def sample(self, rng: np.random.Generator, elastic: Iterable[str] = ELASTIC,
               eps: float = 1.0) -> Architecture:
        """A random architecture: decisions of the ``elastic`` kinds drawn uniformly (each
        one with probability ``eps``, else kept at its maximum: epsilon-shrinking), the
        others at their maximum."""
        kinds = _check_elastic(elastic)

        def pick(path: str, choices: tuple) -> Any:
            if self.categories.get(path) in kinds and (eps >= 1.0 or rng.random() < eps):
                return choices[int(rng.integers(len(choices)))]
            return _largest(choices)

        return self._derive(pick)

    def smallest(self, elastic: Iterable[str] = ELASTIC) -> Architecture:
        """Every decision of the ``elastic`` kinds at its minimum, the others at their maximum."""
        kinds = _check_elastic(elastic)
        return self._derive(
            lambda path, ch: min(ch) if self.categories.get(path) in kinds else _largest(ch))

    def sample_active(self, rng: np.random.Generator, elastic: Iterable[str] = ELASTIC) -> Architecture:
        """Sample an architecture (see :meth:`sample`) and activate it."""
        return self.set_active(self.sample(rng, elastic))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    # ------------------------------------------------------------------ weights
    def dynamic_ops(self) -> list[DynamicOp]:
        return [m for m in self.modules() if isinstance(m, DynamicOp)]

    def sort_channels(self) -> None:
        """Re-sort internal channels of every op by importance (function-preserving)."""
        for op in self.dynamic_ops():
            op.sort_channels()

    @torch.no_grad()
    def recalibrate_bn(self, batches: Iterable[torch.Tensor | Sequence[torch.Tensor]]) -> None:
        """Reset batch-norm statistics and re-estimate them for the active subnet on
        ``batches`` (tensors or (x, y) pairs); leaves eval mode.

        Size-weighted, see :func:`supernets.recalibrate_bn`. The supernet remembers the
        subnet and the statistics it recalibrated (``_bn_calibrated``): :meth:`extract`
        marks its module calibrated only while both still hold, so a training-mode
        forward or a ``load_state_dict`` in between is noticed.
        """
        from supernets._ofa.evaluate import bn_signature, recalibrate_bn, subnet_norms

        norms = subnet_norms(self)
        self._bn_calibrated = None
        if recalibrate_bn(self, batches, norms):
            self._bn_calibrated = (self._active.key, bn_signature(norms))

    @torch.no_grad()
    def extract(self, arch: Mapping[str, Any] | None = None) -> nn.Module:
        """A standalone static module (``space.build``) with the subnet's weights copied.

        Args:
            arch: the subnet (default: the active one). It becomes the active subnet.

        Returns:
            The plain registry module, in eval mode; its output equals the supernet's
            for that subnet. Its attribute ``bn_calibrated`` says whether the
            batch-norm statistics it carries were recalibrated for this subnet
            (:meth:`recalibrate_bn` after activating it, with no training-mode forward
            or weight load since); ``nas.export`` refuses a module whose flag is False.
        """
        from supernets._ofa.evaluate import BN_CALIBRATED, bn_signature, subnet_norms

        arch = self.set_active(arch if arch is not None else self._active)
        plan = self.space.plan(arch, self.input_shape, self.num_classes)
        module = self.space.build(arch, self.num_classes, self.input_shape)
        self._load(module, self.body, plan)
        record = getattr(self, "_bn_calibrated", None)
        calibrated = record is not None and record == (arch.key, bn_signature(subnet_norms(self)))
        setattr(module, BN_CALIBRATED, calibrated)
        return module.eval()

    def _load(self, static: nn.Module, dyn: nn.Module, p: PNode) -> None:
        if isinstance(dyn, DynamicOp):
            state = {k: v.detach().clone() for k, v in dyn.subnet_state(p.spec).items()}
            static.load_state_dict(state, strict=True)
        elif isinstance(dyn, _Seq):
            for child, i, sub in zip(static, dyn.active, p.children):
                self._load(child, dyn.items[i], sub)
        elif isinstance(dyn, ResidualModule):
            self._load(static.body, dyn.body, p.body)
        elif isinstance(dyn, ParallelModule):
            for s, d, b in zip(static.branches, dyn.branches, p.branches):
                self._load(s, d, b)


def _analyse(space: SearchSpace, num_classes: int, input_shape: tuple[int, ...]
             ) -> tuple[Architecture, dict[str, tuple], PNode, dict[str, str]]:
    """The largest architecture, every decision's choices, its plan, and what each
    decision makes elastic; a decision that cannot be elastic is refused."""
    rec = derive(space, _Pick(lambda path, choices: _largest(choices))).recorder
    largest = Architecture(rec.decisions)
    categories = _categorise(rec)
    plan = space.plan(largest, input_shape, num_classes)
    _check_plan(plan)
    return largest, dict(rec.choices), plan, categories


def _categorise(rec: Recorder) -> dict[str, str]:
    """Map every decision path to what it makes elastic (by the decision's origin),
    refusing the others."""
    categories = {}
    for path, choices in rec.choices.items():
        kind, origin = rec.kinds[path], rec.origins[path]
        if kind == "value":  # an op parameter
            elastic = get_op(origin.op).params[origin.param].elastic
            if elastic is None and len(choices) > 1:
                raise SupernetError(
                    f"decision {path!r}: parameter {origin.param!r} of op {origin.op!r} is not "
                    f"elastic (the op registry declares no weight sharing for it); an OFA supernet "
                    f"accepts only elastic op parameters ({', '.join(_PARAM_KIND)}) and depths"
                )
            if elastic is not None:
                categories[path] = _PARAM_KIND[elastic]
        elif kind == "depth":
            categories[path] = "depth"
        elif len(choices) > 1:
            what = ("a choice among productions" if origin.cell is None
                    else f"an edge decision of cell {origin.cell!r} (cells are not supported)")
            raise SupernetError(
                f"decision {path!r} (choices {list(choices)}) is {what}, which an OFA supernet "
                "cannot make elastic; it accepts elastic op parameters (kernel, channels, "
                "resolution) and repeat depths"
            )
    return categories


def _check_plan(p: PNode) -> None:
    """Refuse plan nodes the supernet has no elastic module for (cells)."""
    if isinstance(p, POp):
        return
    if not isinstance(p, (PSeq, PResidual, PParallel)):
        raise SupernetError(f"{p.path}: cells are not supported by the OFA supernet")
    parts = p.children if isinstance(p, PSeq) else [p.body] if isinstance(p, PResidual) else p.branches
    for part in parts:
        _check_plan(part)


def _check_elastic(elastic: Iterable[str]) -> set[str]:
    kinds = set(elastic)
    unknown = sorted(kinds - set(ELASTIC))
    if unknown:
        raise SupernetError(f"unknown elastic kind(s) {unknown}; valid: {', '.join(ELASTIC)}")
    return kinds
