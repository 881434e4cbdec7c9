"""Operation registry and the built-in ops (terminals of every grammar)."""

from search_spaces.ops import _attention, _conv  # noqa: F401  (register built-ins)
from search_spaces.ops._registry import (
    NUM_CLASSES,
    OPS,
    OpDef,
    Param,
    Shape,
    get_op,
    list_ops,
    register_op,
)

__all__ = [
    "NUM_CLASSES",
    "OPS",
    "OpDef",
    "Param",
    "Shape",
    "get_op",
    "list_ops",
    "register_op",
]
