"""Conformance suites for the search-space and op roles, shipped with the library.

Each ``check_*`` function runs every check of one role and raises ``AssertionError``
naming the check and what was wrong; the individual checks are listed in
:data:`SPACE_CHECKS` and :data:`OP_CHECKS` so a test suite can parametrise over them.
The project's own tests run them over every registered space and op; run them
over your own plug-in in a few lines::

    from search_spaces.testing import check_op, check_search_space

    def test_my_space():
        check_search_space(my_space(), input_shape=(3, 16, 16))

    def test_my_op():
        check_op("my_conv", {"out": 8, "kernel": 3}, in_shape=(4, 8, 8))

Keep the space small (few channels, a small input): the checks build and run
networks.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import networkx as nx
import numpy as np
import torch

from search_spaces.architecture import Architecture
from search_spaces.errors import ArchitectureError, SearchSpaceError
from search_spaces.layers import LayerSpec, resolve_spec
from search_spaces.ops import NUM_CLASSES, get_op
from search_spaces.ops._registry import ELASTIC_KINDS
from search_spaces.space import SearchSpace, layer_complexity

__all__ = ["OP_CHECKS", "SPACE_CHECKS", "check_op", "check_search_space", "op_examples"]

Shape = tuple[int, ...]


class _Case:
    """What the checks of one space share: the space, input shape, classes and samples."""

    def __init__(self, space: SearchSpace, input_shape: Shape | None, num_classes: int,
                 samples: int, seed: int) -> None:
        self.space = space
        self.shape = tuple(input_shape) if input_shape is not None else space.input_shape
        self.classes = num_classes
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.archs = [space.sample(rng) for _ in range(samples)]


def _fail(check: str, message: str) -> AssertionError:
    return AssertionError(f"{check}: {message}")


# ------------------------------------------------------------------------ space checks


def samples_are_members(case: _Case) -> None:
    """Samples are Architectures that validate, round-trip through JSON and keep their key."""
    for arch in case.archs:
        if not isinstance(arch, Architecture):
            raise _fail("samples_are_members", f"sample() returned {type(arch).__name__}")
        if case.space.validate(arch) != arch:
            raise _fail("samples_are_members", f"validate() changed {arch.to_json()}")
        again = Architecture.from_json(arch.to_json())
        if again != arch or again.key != arch.key:
            raise _fail("samples_are_members", f"JSON round trip changed {arch.to_json()}")
        if case.space.validate(json.loads(arch.to_json())) != arch:
            raise _fail("samples_are_members", "validate() of the plain dict differs")


def sampling_is_seeded(case: _Case) -> None:
    """The same seed gives the same architecture; different seeds give several."""
    space = case.space
    if space.sample(np.random.default_rng(7)) != space.sample(np.random.default_rng(7)):
        raise _fail("sampling_is_seeded", "two samples with seed 7 differ")
    if space.size() > 1 and len({space.sample(np.random.default_rng(s)).key for s in range(20)}) < 2:
        raise _fail("sampling_is_seeded", "20 seeds gave one architecture")


def variation_stays_in_space(case: _Case) -> None:
    """mutate and crossover (single and batch) give members; a child's shared decisions
    come from a parent."""
    space, rng = case.space, np.random.default_rng(case.seed + 1)
    pairs = list(zip(case.archs[::2], case.archs[1::2]))
    for a, b in pairs:
        for child in (space.mutate(a, rng), space.crossover(a, b, rng)):
            if not space.contains(child):
                raise _fail("variation_stays_in_space", f"{child.to_json()} is not a member")
        child = space.crossover(a, b, rng)
        wrong = [p for p in child if p in a and p in b and child[p] not in (a[p], b[p])]
        if wrong:
            raise _fail("variation_stays_in_space", f"crossover invented decision {wrong[0]!r}")
    batch = space.sample_batch(4, rng)
    for arch in [*batch, *space.mutate_batch(batch, rng), *space.crossover_batch(batch, batch[::-1], rng)]:
        if not space.contains(arch):
            raise _fail("variation_stays_in_space", f"batch result {arch.to_json()} is not a member")


def single_equals_batch(case: _Case) -> None:
    """On spaces with a decision table, one architecture is a batch of one (same seed)."""
    space = case.space
    if space.decision_table is None:
        return
    a, b = case.archs[0], case.archs[-1]
    for seed in range(3):
        pairs = (
            ("sample", space.sample(seed), space.sample_batch(1, seed)[0]),
            ("mutate", space.mutate(a, seed), space.mutate_batch([a], seed)[0]),
            ("crossover", space.crossover(a, b, seed), space.crossover_batch([a], [b], seed)[0]),
        )
        for name, single, batched in pairs:
            if single != batched:
                raise _fail("single_equals_batch", f"{name} with seed {seed}: {single.to_json()} "
                                                   f"!= batch of one {batched.to_json()}")


def validate_names_the_bad_path(case: _Case) -> None:
    """An out-of-range value and an unknown path are refused with the path named."""
    space, arch = case.space, case.archs[0]
    path = next(iter(arch))
    for bad, where in ((arch.update({path: "__not_a_value__"}), path),
                       (arch.update({"__no.such.path__": 1}), "__no.such.path__")):
        try:
            space.validate(bad)
        except ArchitectureError as exc:
            if exc.path != where or where not in str(exc):
                raise _fail("validate_names_the_bad_path",
                            f"error for {where!r} names {exc.path!r}: {exc}") from None
        else:
            raise _fail("validate_names_the_bad_path", f"{bad.to_json()} was accepted")


def build_runs_forward_and_backward(case: _Case) -> None:
    """build(arch) maps (N, *input_shape) to (N, num_classes) and every weight gets a gradient."""
    for arch in case.archs[:3]:
        model = case.space.build(arch, case.classes, case.shape)
        out = model(torch.randn(2, *case.shape))
        if tuple(out.shape) != (2, case.classes) or not torch.isfinite(out).all():
            raise _fail("build_runs_forward_and_backward",
                        f"{arch.to_json()}: output {tuple(out.shape)}, finite {bool(torch.isfinite(out).all())}")
        out.square().mean().backward()
        if any(p.grad is None for p in model.parameters() if p.requires_grad):
            raise _fail("build_runs_forward_and_backward", f"{arch.to_json()}: a weight got no gradient")


def layers_graph_and_complexity_agree(case: _Case) -> None:
    """layers(), graph() and complexity() describe the module build() makes."""
    space = case.space
    for arch in case.archs[:3]:
        layers = space.layers(arch, case.shape, case.classes)
        if not layers or layers[0].in_shape != case.shape or layers[-1].out_shape != (case.classes,):
            raise _fail("layers_graph_and_complexity_agree", f"{arch.to_json()}: layers do not run "
                                                             f"from {case.shape} to ({case.classes},)")
        graph = space.graph(arch, case.shape, case.classes)
        ops = [n for n, d in graph.nodes(data=True) if d["kind"] == "op"]
        if not nx.is_directed_acyclic_graph(graph) or not nx.has_path(graph, "input", "output") \
                or len(ops) != len(layers):
            raise _fail("layers_graph_and_complexity_agree", f"{arch.to_json()}: graph is not the "
                                                             "DAG of the layers")
        model = space.build(arch, case.classes, case.shape)
        cost = space.complexity(arch, case.shape, case.classes)
        params = sum(p.numel() for p in model.parameters())
        if cost.params != params or cost.flops <= 0:
            raise _fail("layers_graph_and_complexity_agree", f"{arch.to_json()}: complexity "
                                                             f"{cost} vs {params} parameters")
    flops, params = space.complexity_batch(case.archs, case.shape, case.classes)
    for i, arch in enumerate(case.archs):
        cost = space.complexity(arch, case.shape, case.classes)
        if (flops[i], params[i]) != (cost.flops, cost.params):
            raise _fail("layers_graph_and_complexity_agree", "complexity_batch differs from complexity")


def encoding_is_fixed_length(case: _Case) -> None:
    """encode() has encoding_size floats; encode_batch stacks encode; distinct archs of a
    non-recursive space get distinct codes."""
    space = case.space
    codes = space.encode_batch(case.archs)
    if codes.shape != (len(case.archs), space.encoding_size):
        raise _fail("encoding_is_fixed_length", f"encode_batch shape {codes.shape}")
    for arch, code in zip(case.archs, codes, strict=True):
        if not np.array_equal(space.encode(arch), code):
            raise _fail("encoding_is_fixed_length", "encode_batch differs from encode")
    if not space.grammar.is_recursive and \
            len({c.tobytes() for c in codes}) != len({a.key for a in case.archs}):
        raise _fail("encoding_is_fixed_length", "two different architectures share a code")


def suggest_replays_in_optuna(case: _Case) -> None:
    """suggest(trial) asks exactly the architecture's decisions, named by their paths."""
    import optuna

    space = case.space
    for arch in case.archs[:4]:
        choices = space.choices(arch)
        params = {p: (",".join(map(str, v)) if isinstance(v, tuple) else v) for p, v in arch.items()}
        trial = optuna.trial.FixedTrial(params)
        if space.suggest(trial) != arch or set(choices) != set(arch):
            raise _fail("suggest_replays_in_optuna", f"{arch.to_json()} does not replay")


def realisable_layers_cover_samples(case: _Case) -> None:
    """Every layer of a sampled architecture is among the space's realisable layers."""
    space = case.space
    if not hasattr(space, "realisable_layers") or space.grammar.is_recursive:
        return
    known = set(space.realisable_layers(case.shape, case.classes).specs)
    for arch in case.archs:
        missing = [s.key for s in space.layers(arch, case.shape, case.classes) if s not in known]
        if missing:
            raise _fail("realisable_layers_cover_samples", f"{arch.to_json()} has unlisted layer {missing[0]}")


def travels_to_other_processes(case: _Case) -> None:
    """A pickled copy (e.g. sent to a Ray worker) has the same fingerprint and samples."""
    copy = pickle.loads(pickle.dumps(case.space))
    arch = case.archs[0]
    if copy.fingerprint != case.space.fingerprint or \
            copy.sample(np.random.default_rng(0)) != case.space.sample(np.random.default_rng(0)) or \
            copy.layers(arch, case.shape, case.classes) != case.space.layers(arch, case.shape, case.classes):
        raise _fail("travels_to_other_processes", "the unpickled space behaves differently")


def size_counts_distinct_samples(case: _Case) -> None:
    """size() is positive and no smaller than the number of distinct samples."""
    size = case.space.size()
    if size < 1 or len({a.key for a in case.archs}) > size:
        raise _fail("size_counts_distinct_samples", f"size() is {size}")


SPACE_CHECKS: dict[str, Callable[[_Case], None]] = {
    fn.__name__: fn for fn in (
        samples_are_members, sampling_is_seeded, variation_stays_in_space, single_equals_batch,
        validate_names_the_bad_path, build_runs_forward_and_backward,
        layers_graph_and_complexity_agree, encoding_is_fixed_length, suggest_replays_in_optuna,
        realisable_layers_cover_samples, travels_to_other_processes, size_counts_distinct_samples)
}
"""Every check of the search-space role, by name."""


def check_search_space(space: SearchSpace, input_shape: Shape | None = None, num_classes: int = 10,
                       samples: int = 8, seed: int = 0, checks: list[str] | None = None) -> None:
    """Run the search-space conformance checks on ``space``.

    Args:
        space: the space (keep it small: the checks build networks).
        input_shape: network input without the batch dimension (default: the space's).
        num_classes: classifier outputs of the built networks.
        samples: architectures sampled for the checks.
        seed: seed of the samples.
        checks: names from :data:`SPACE_CHECKS` (default: all).

    Raises:
        AssertionError: ``"<check>: <what was wrong>"`` for the first failing check.
    """
    case = _Case(space, input_shape, num_classes, max(samples, 2), seed)
    for name in checks or list(SPACE_CHECKS):
        if name not in SPACE_CHECKS:
            raise SearchSpaceError(f"unknown check {name!r}; checks: {', '.join(SPACE_CHECKS)}")
        SPACE_CHECKS[name](case)


# ------------------------------------------------------------------------ op checks


def _spec(op: str, params: Mapping[str, Any], in_shape: Shape, num_classes: int) -> LayerSpec:
    spec = resolve_spec(op, dict(params), tuple(in_shape), num_classes, op)
    if spec is None:
        raise AssertionError(f"op {op!r} cannot take {dict(params)} on input {tuple(in_shape)}")
    return spec


def op_declares_typed_params(op: str, params: Mapping[str, Any], in_shape: Shape, num_classes: int) -> None:
    """Parameters are typed, elastic kinds are known, and a wrongly typed value is refused."""
    opdef = get_op(op)
    for name, p in opdef.params.items():
        if p.elastic is not None and p.elastic not in ELASTIC_KINDS:
            raise _fail("op_declares_typed_params", f"{op}.{name}: elastic kind {p.elastic!r}")
    for name, p in opdef.params.items():
        wrong = "x" if p.type is not str else 1
        try:
            opdef.resolve({**params, name: wrong}, op)
        except SearchSpaceError:
            continue
        raise _fail("op_declares_typed_params", f"{op}.{name} ({p.type.__name__}) accepted {wrong!r}")


def op_output_shape_is_declared(op: str, params: Mapping[str, Any], in_shape: Shape, num_classes: int) -> None:
    """The built module maps the input shape to the declared output shape."""
    spec = _spec(op, params, in_shape, num_classes)
    module = get_op(op).build(spec.in_shape, spec.param_dict).eval()
    with torch.no_grad():
        out = module(torch.randn(2, *spec.in_shape))
    if tuple(out.shape[1:]) != spec.out_shape:
        raise _fail("op_output_shape_is_declared", f"{op} {spec.param_dict} on {spec.in_shape}: module "
                                                   f"gives {tuple(out.shape[1:])}, declared {spec.out_shape}")


def op_is_deterministic_and_differentiable(op: str, params: Mapping[str, Any], in_shape: Shape,
                                           num_classes: int) -> None:
    """In eval mode the same input gives the same output; inputs get gradients in train mode."""
    spec = _spec(op, params, in_shape, num_classes)
    module = get_op(op).build(spec.in_shape, spec.param_dict).eval()
    x = torch.randn(3, *spec.in_shape)
    with torch.no_grad():
        if not torch.equal(module(x), module(x)):
            raise _fail("op_is_deterministic_and_differentiable", f"{op}: eval outputs differ")
    module.train()
    x.requires_grad_(True)
    out = module(x)
    if not out.requires_grad:  # a constant op (e.g. zero): nothing to differentiate
        return
    out.float().square().mean().backward()
    if x.grad is None or not torch.isfinite(x.grad).all():
        raise _fail("op_is_deterministic_and_differentiable", f"{op}: no finite input gradient")


def op_has_a_cost(op: str, params: Mapping[str, Any], in_shape: Shape, num_classes: int) -> None:
    """FLOPs and parameters can be counted (they feed features and complexity objectives)."""
    flops, n_params = layer_complexity(_spec(op, params, in_shape, num_classes))
    if flops < 0 or n_params < 0:
        raise _fail("op_has_a_cost", f"{op}: flops {flops}, params {n_params}")


OP_CHECKS: dict[str, Callable[..., None]] = {
    fn.__name__: fn for fn in (op_declares_typed_params, op_output_shape_is_declared,
                               op_is_deterministic_and_differentiable, op_has_a_cost)
}
"""Every check of the op role, by name."""


def check_op(op: str, params: Mapping[str, Any], in_shape: Shape, num_classes: int = 10,
             checks: list[str] | None = None) -> None:
    """Run the op conformance checks on registered op ``op`` with ``params`` at ``in_shape``.

    Raises:
        AssertionError: ``"<check>: <what was wrong>"`` for the first failing check.
    """
    params = {k: (num_classes if v is NUM_CLASSES else v) for k, v in params.items()}
    for name in checks or list(OP_CHECKS):
        if name not in OP_CHECKS:
            raise SearchSpaceError(f"unknown check {name!r}; checks: {', '.join(OP_CHECKS)}")
        OP_CHECKS[name](op, params, tuple(in_shape), num_classes)


def op_examples(spaces: Mapping[str, tuple[SearchSpace, Shape]], samples: int = 16,
                seed: int = 0) -> dict[str, tuple[dict[str, Any], Shape]]:
    """One realised ``(params, in_shape)`` per op, taken from sampled architectures of
    ``spaces`` (``{name: (space, input_shape)}``): examples for :func:`check_op`."""
    found: dict[str, tuple[dict[str, Any], Shape]] = {}
    rng = np.random.default_rng(seed)
    for space, shape in spaces.values():
        for _ in range(samples):
            for spec in space.layers(space.sample(rng), shape):
                found.setdefault(spec.op, (spec.param_dict, spec.in_shape))
    return found
