"""The shipped conformance suites run over every registered space and op."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from search_spaces import get_space, list_ops, list_spaces
from search_spaces.testing import OP_CHECKS, SPACE_CHECKS, check_op, check_search_space, op_examples
from tests.conftest import SMALL_SPACES


def _library_registry() -> tuple[list[str], list[str]]:
    """The spaces and ops the library registers (a fresh process: tests register their own)."""
    code = "import json, search_spaces as s; print(json.dumps([s.list_spaces(), s.list_ops()]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_every_registered_space_and_op_is_covered():
    spaces, ops = _library_registry()
    assert set(spaces) <= set(SMALL_SPACES), "give a new space small test settings in conftest"
    assert set(ops) <= set(_op_cases()), "a registered op appears in no small space"
    assert set(list_spaces()) >= set(spaces) and set(list_ops()) >= set(ops)


@pytest.mark.parametrize("check", sorted(SPACE_CHECKS))
def test_space_conformance(small_space, check):
    space, shape = small_space
    check_search_space(space, input_shape=shape, checks=[check])


def _op_cases():
    spaces = {name: (get_space(name, **options), shape) for name, (options, shape) in SMALL_SPACES.items()}
    return op_examples(spaces)


OP_CASES = _op_cases()


@pytest.mark.parametrize("op", sorted(OP_CASES))
def test_op_conformance(op):
    params, in_shape = OP_CASES[op]
    check_op(op, params, in_shape)


def test_a_broken_op_fails_the_suite():
    import torch

    from search_spaces import OPS, Param, register_op

    @register_op("lies_about_shape", params={"out": Param(int)},
                 out_shape=lambda s, out: (out, *s[1:]))
    def lies(in_shape, out):
        return torch.nn.Conv2d(in_shape[0], out + 1, 1)  # one channel more than declared

    try:
        with pytest.raises(AssertionError, match="op_output_shape_is_declared: lies_about_shape"):
            check_op("lies_about_shape", {"out": 4}, (2, 4, 4))
    finally:
        OPS.remove("lies_about_shape")


def test_a_space_whose_encoding_collides_fails_the_suite(monkeypatch):
    import numpy as np

    space = get_space("nb201", channels=4, cells_per_stage=1)
    monkeypatch.setattr(type(space), "encode_batch", lambda self, archs: np.zeros(
        (len(archs), self.encoding_size), np.float32))
    with pytest.raises(AssertionError, match="encoding_is_fixed_length"):
        check_search_space(space, input_shape=(1, 8, 8), checks=["encoding_is_fixed_length"])
    assert set(SPACE_CHECKS) >= {"single_equals_batch", "suggest_replays_in_optuna"}
    assert set(OP_CHECKS) >= {"op_output_shape_is_declared"}
