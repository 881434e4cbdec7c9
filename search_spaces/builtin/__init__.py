"""Built-in spaces, all written with the public grammar API; importing registers them."""

from search_spaces.builtin import darts, einspace_lite, mobilenetv3_ofa, nb201, transformer  # noqa: F401
from search_spaces.builtin.nb201 import from_nb201_string, nb201_canonical, to_nb201_string

BUILTIN_SPACES = ("darts", "einspace_lite", "mobilenetv3_ofa", "nb201", "transformer")

__all__ = ["BUILTIN_SPACES", "from_nb201_string", "nb201_canonical", "to_nb201_string"]
