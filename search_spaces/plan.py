"""Plans: a derivation with shapes, and its three consumers (module, layers, graph).

``plan()`` propagates the input shape through a derivation tree, resolving each
op's parameters into a :class:`LayerSpec`. ``compile_plan`` builds the
``nn.Module``, ``plan_layers`` lists the layers and ``plan_graph`` draws the
DAG, all from the same plan, so they can never disagree. Supernets build their
own modules from the same plan nodes (and :class:`Planner` for pieces), so a
subnet's layers are exactly those of the standalone network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx
import torch
from torch import nn

from search_spaces._cell import REDUCTION_STRIDE
from search_spaces._expr import join
from search_spaces.derivation import DCell, DCellStack, DNode, DOp, DParallel, DResidual, DSeq
from search_spaces.errors import ArchitectureError
from search_spaces.layers import LayerSpec, make_spec
from search_spaces.ops import Shape, get_op

__all__ = [
    "CellModule",
    "CellStackModule",
    "PCell",
    "PCellStack",
    "PNode",
    "POp",
    "PParallel",
    "PResidual",
    "PSeq",
    "ParallelModule",
    "Planner",
    "ResidualModule",
    "compile_plan",
    "plan",
    "plan_graph",
    "plan_layers",
]

# --------------------------------------------------------------------------- plan nodes


@dataclass
class PNode:
    """A planned node: a derivation node with the shapes (no batch dim) in and out."""

    path: str
    in_shape: Shape
    out_shape: Shape


@dataclass
class POp(PNode):
    """A realised layer (``spec`` is its latency-table key)."""

    spec: LayerSpec


@dataclass
class PSeq(PNode):
    children: list[PNode]


@dataclass
class PResidual(PNode):
    body: PNode


@dataclass
class PParallel(PNode):
    branches: list[PNode]
    merge: str
    split: bool


@dataclass
class PCell(PNode):
    """A cell: per input its preprocessing, per node ``[(source state, edge op)]``."""

    preprocess: list[PNode]  # one per input state
    nodes: list[list[tuple[int, PNode]]]
    output: str


@dataclass
class PCellStack(PNode):
    cells: list[PCell]


# --------------------------------------------------------------------------- planning


def plan(tree: DNode, input_shape: Shape, num_classes: int) -> PNode:
    """Propagate ``input_shape`` through a derivation tree (see
    :func:`~search_spaces.derive`); errors name the path.

    Raises:
        ArchitectureError: an op that cannot take the shape reaching it, a residual
            that changes the shape, branches or cell edges that do not fit.
    """
    return Planner(num_classes).node(tree, tuple(input_shape))


class Planner:
    """Plans derivation nodes for a number of classes (the methods :func:`plan` uses).

    A supernet plans pieces with it (e.g. DARTS plans every candidate op of a cell
    edge with :meth:`edge`) so its layers are exactly those of the derived network.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def op(self, path: str, name: str, params: Mapping[str, Any], in_shape: Shape) -> POp:
        """Plan op ``name`` with ``params`` (``NUM_CLASSES`` allowed) on ``in_shape``."""
        spec = make_spec(name, params, in_shape, self.num_classes, path)
        return POp(path, spec.in_shape, spec.out_shape, spec)

    def edge(self, op: DNode, in_shape: Shape, reduce_edge: bool) -> PNode:
        """Plan a cell edge's op; a reducing edge (``Cell.reduces``) gets ``stride=2``
        and must be an op with a ``stride`` parameter."""
        if not reduce_edge:
            return self.node(op, in_shape)
        if not isinstance(op, DOp) or "stride" not in get_op(op.op).params:
            raise ArchitectureError(
                f"{op.path}: edges of a reduction cell must be ops with a 'stride' parameter", op.path
            )
        return self.op(op.path, op.op, {**op.params, "stride": REDUCTION_STRIDE}, in_shape)

    def node(self, node: DNode, in_shape: Shape) -> PNode:
        """Plan any derivation node on ``in_shape``."""
        if isinstance(node, DOp):
            return self.op(node.path, node.op, node.params, in_shape)
        if isinstance(node, DSeq):
            children, shape = [], in_shape
            for child in node.children:
                p = self.node(child, shape)
                children.append(p)
                shape = p.out_shape
            return PSeq(node.path, in_shape, shape, children)
        if isinstance(node, DResidual):
            body = self.node(node.body, in_shape)
            if body.out_shape != in_shape:
                raise ArchitectureError(
                    f"{node.path or 'root'}: residual body changes shape {in_shape} -> {body.out_shape}",
                    node.path,
                )
            return PResidual(node.path, in_shape, in_shape, body)
        if isinstance(node, DParallel):
            return self.parallel(node, in_shape)
        if isinstance(node, DCell):
            if node.inputs != 1:
                raise ArchitectureError(
                    f"{node.path}: a cell with {node.inputs} inputs must sit inside a CellStack",
                    node.path,
                )
            return self.cell(node, [in_shape], in_shape[0])
        if isinstance(node, DCellStack):
            return self.stack(node, in_shape)
        raise TypeError(f"unknown derivation node {type(node).__name__}")

    def parallel(self, node: DParallel, in_shape: Shape) -> PParallel:
        n = len(node.branches)
        branch_in = in_shape
        if node.split:
            if in_shape[0] % n:
                raise ArchitectureError(
                    f"{node.path}: cannot split {in_shape[0]} channels into {n} equal parts", node.path
                )
            branch_in = (in_shape[0] // n, *in_shape[1:])
        branches = [self.node(b, branch_in) for b in node.branches]
        shapes = {b.out_shape for b in branches}
        if node.merge == "add":
            if len(shapes) != 1:
                raise ArchitectureError(
                    f"{node.path}: branches to add have different shapes {sorted(shapes)}", node.path
                )
            out = branches[0].out_shape
        else:
            if len({s[1:] for s in shapes}) != 1:
                raise ArchitectureError(
                    f"{node.path}: branches to concatenate differ beyond channels: {sorted(shapes)}",
                    node.path,
                )
            out = (sum(b.out_shape[0] for b in branches), *branches[0].out_shape[1:])
        return PParallel(node.path, in_shape, out, branches, node.merge, node.split)

    def cell(self, node: DCell, in_shapes: list[Shape], channels: int) -> PCell:
        """Plan a cell whose inputs have ``in_shapes``, with ``channels`` per node."""
        pre: list[PNode] = []
        for k, (s, how) in enumerate(zip(in_shapes, node.cell.preprocess(in_shapes, channels))):
            path = join(node.path, f"pre{k}")
            pre.append(PSeq(path, s, s, []) if how is None else self.op(path, *how, s))
        states = [p.out_shape for p in pre]
        shape = node.cell.node_shape(channels, in_shapes[-1][1:])
        nodes = []
        for edges in node.nodes:
            planned = [(src, self.edge(op, states[src], node.cell.reduces(src))) for src, op in edges]
            for src, p in planned:
                if p.out_shape != shape:
                    raise ArchitectureError(
                        f"{p.path}: edge from state {src} gives {p.out_shape}, node needs {shape}", p.path
                    )
            states.append(shape)
            nodes.append(planned)
        return PCell(node.path, in_shapes[-1], node.cell.out_shape(shape), pre, nodes, node.output)

    def stack(self, node: DCellStack, in_shape: Shape) -> PCellStack:
        s0 = s1 = in_shape
        cells = []
        for cell, channels in zip(node.cells, node.channels):
            if not isinstance(cell, DCell) or cell.inputs != 2:
                raise ArchitectureError(f"{cell.path}: a CellStack holds cells with 2 inputs", cell.path)
            p = self.cell(cell, [s0, s1], channels)
            cells.append(p)
            s0, s1 = s1, p.out_shape
        return PCellStack(node.path, in_shape, s1, cells)


# --------------------------------------------------------------------------- consumers


def plan_layers(p: PNode) -> list[LayerSpec]:
    """Every realised op of a plan, in execution order."""
    if isinstance(p, POp):
        return [p.spec]
    out: list[LayerSpec] = []
    for child in _plan_children(p):
        out.extend(plan_layers(child))
    return out


def _plan_children(p: PNode) -> list[PNode]:
    if isinstance(p, PSeq):
        return p.children
    if isinstance(p, PResidual):
        return [p.body]
    if isinstance(p, PParallel):
        return p.branches
    if isinstance(p, PCell):
        return [*p.preprocess, *(op for edges in p.nodes for _, op in edges)]
    if isinstance(p, PCellStack):
        return list(p.cells)
    return []


class ResidualModule(nn.Module):
    """``x + body(x)``."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ParallelModule(nn.Module):
    """Branches on the same input (or on equal channel slices when ``split``), added or
    concatenated along channels."""

    def __init__(self, branches: list[nn.Module], merge: str, split: bool) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.merge, self.split = merge, split

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = x.chunk(len(self.branches), dim=1) if self.split else [x] * len(self.branches)
        outs = [b(i) for b, i in zip(self.branches, inputs)]
        if self.merge == "concat":
            return torch.cat(outs, dim=1)
        return torch.stack(outs).sum(0)


class CellModule(nn.Module):
    """A DAG cell: states are the preprocessed inputs then each node's sum of edges."""

    def __init__(self, pre: list[nn.Module], nodes: list[list[tuple[int, nn.Module]]],
                 output: str) -> None:
        super().__init__()
        self.pre = nn.ModuleList(pre)
        self.sources = [[src for src, _ in edges] for edges in nodes]
        self.edges = nn.ModuleList(nn.ModuleList(op for _, op in edges) for edges in nodes)
        self.output = output

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        states = [pre(x) for pre, x in zip(self.pre, inputs)]
        for sources, ops in zip(self.sources, self.edges):
            states.append(sum(op(states[src]) for src, op in zip(sources, ops)))
        if self.output == "last":
            return states[-1]
        return torch.cat(states[len(self.pre):], dim=1)


class CellStackModule(nn.Module):
    """Cells threaded with two states: (s0, s1) -> (s1, cell(s0, s1)), starting at (x, x)."""

    def __init__(self, cells: list[nn.Module]) -> None:
        super().__init__()
        self.cells = nn.ModuleList(cells)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = x
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return s1


def compile_plan(p: PNode) -> nn.Module:
    """Build the ``nn.Module`` of a plan."""
    if isinstance(p, POp):
        return get_op(p.spec.op).build(p.spec.in_shape, p.spec.param_dict)
    if isinstance(p, PSeq):
        return nn.Sequential(*(compile_plan(c) for c in p.children))
    if isinstance(p, PResidual):
        return ResidualModule(compile_plan(p.body))
    if isinstance(p, PParallel):
        return ParallelModule([compile_plan(b) for b in p.branches], p.merge, p.split)
    if isinstance(p, PCell):
        nodes = [[(src, compile_plan(op)) for src, op in edges] for edges in p.nodes]
        return CellModule([compile_plan(x) for x in p.preprocess], nodes, p.output)
    if isinstance(p, PCellStack):
        return CellStackModule([compile_plan(c) for c in p.cells])
    raise TypeError(f"unknown plan node {type(p).__name__}")


def plan_graph(p: PNode) -> nx.DiGraph:
    """The data-flow DAG: op nodes (with op, params, shapes, path) and merge nodes."""
    g = nx.DiGraph()
    g.add_node("input", kind="input", shape=p.in_shape)
    counter = iter(range(10**9))

    def add(kind: str, **attrs) -> str:
        name = f"{kind}:{next(counter)}"
        g.add_node(name, kind=kind, **attrs)
        return name

    def walk(q: PNode, sources: list[str]) -> str:
        if isinstance(q, POp):
            n = add("op", op=q.spec.op, params=q.spec.param_dict, path=q.path,
                    in_shape=q.in_shape, out_shape=q.out_shape)
            g.add_edges_from((s, n) for s in sources)
            return n
        if isinstance(q, PSeq):
            if not q.children:
                return sources[0]
            current = sources
            for child in q.children:
                current = [walk(child, current)]
            return current[0]
        if isinstance(q, PResidual):
            body = walk(q.body, sources)
            merge = add("add", path=q.path)
            g.add_edges_from([(body, merge), *((s, merge) for s in sources)])
            return merge
        if isinstance(q, PParallel):
            ends = [walk(b, sources) for b in q.branches]
            merge = add(q.merge, path=q.path)
            g.add_edges_from((e, merge) for e in ends)
            return merge
        if isinstance(q, PCell):
            states = [walk(pre, [s]) for pre, s in zip(q.preprocess, sources[-len(q.preprocess):])]
            for edges in q.nodes:
                node = add("add", path=q.path)
                for src, op in edges:
                    g.add_edge(walk(op, [states[src]]), node)
                states.append(node)
            if q.output == "last":
                return states[-1]
            merge = add("concat", path=q.path)
            g.add_edges_from((s, merge) for s in states[len(q.preprocess):])
            return merge
        if isinstance(q, PCellStack):
            s0 = s1 = sources[0]
            for cell in q.cells:
                s0, s1 = s1, walk(cell, [s0, s1])
            return s1
        raise TypeError(f"unknown plan node {type(q).__name__}")

    last = walk(p, ["input"])
    g.add_node("output", kind="output", shape=p.out_shape)
    g.add_edge(last, "output")
    return g
