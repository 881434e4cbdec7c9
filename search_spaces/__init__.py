"""Grammar-based search spaces: the single source of truth of every architecture.

Public API::

    from search_spaces import Grammar, Seq, Repeat, Op, Value, SearchSpace, get_space

Derivation and planning, for code that walks architectures itself (supernets)::

    from search_spaces import derive, RandomDecider, ArchDecider, Recorder
    from search_spaces.plan import Planner, plan, compile_plan, plan_layers, plan_graph
"""

from search_spaces import builtin, plan  # noqa: F401  (builtin registers the built-in spaces)
from search_spaces._realisable import Enumeration
from search_spaces._registry import (
    ENTRY_POINT_GROUP,
    Registry,
    RngLike,
    as_generator,
    load_entry_point_plugins,
    load_plugin,
)
from search_spaces._vector import VectorIndex, vectorisable
from search_spaces.architecture import Architecture
from search_spaces.builtin import from_nb201_string, nb201_canonical, to_nb201_string
from search_spaces.derivation import (
    ArchDecider,
    Decider,
    Decision,
    Derivation,
    FallbackDecider,
    Origin,
    RandomDecider,
    Recorder,
    derive,
)
from search_spaces.errors import ArchitectureError, GrammarError, SearchSpaceError, UnknownNameError
from search_spaces.grammar import (
    Cell,
    CellStack,
    Choice,
    Expr,
    Grammar,
    Op,
    Parallel,
    Ref,
    Repeat,
    Residual,
    Seq,
    Value,
)
from search_spaces.layers import LayerSpec, resolve_spec
from search_spaces.ops import NUM_CLASSES, OPS, OpDef, Param, get_op, list_ops, register_op
from search_spaces.registry import SPACES, get_space, list_spaces, register_space
from search_spaces.space import Complexity, SearchSpace, layer_complexity

__all__ = [
    "ENTRY_POINT_GROUP",
    "NUM_CLASSES",
    "OPS",
    "Registry",
    "RngLike",
    "SPACES",
    "Architecture",
    "ArchDecider",
    "ArchitectureError",
    "Cell",
    "CellStack",
    "Choice",
    "Complexity",
    "Decider",
    "Decision",
    "Derivation",
    "Enumeration",
    "Expr",
    "FallbackDecider",
    "Grammar",
    "GrammarError",
    "LayerSpec",
    "Op",
    "OpDef",
    "Origin",
    "Parallel",
    "Param",
    "RandomDecider",
    "Recorder",
    "Ref",
    "Repeat",
    "Residual",
    "SearchSpace",
    "SearchSpaceError",
    "Seq",
    "UnknownNameError",
    "Value",
    "VectorIndex",
    "as_generator",
    "derive",
    "from_nb201_string",
    "get_op",
    "get_space",
    "layer_complexity",
    "list_ops",
    "list_spaces",
    "load_entry_point_plugins",
    "load_plugin",
    "nb201_canonical",
    "register_op",
    "register_space",
    "resolve_spec",
    "to_nb201_string",
    "vectorisable",
]
