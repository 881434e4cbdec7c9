"""The CLI skeleton: spaces, sample, describe, and one-line errors."""

from __future__ import annotations

import json

import pytest

from nas.cli import main
from search_spaces import Architecture, get_space


def test_spaces_lists_every_space_with_its_size(capsys):
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out
    assert "nb201" in out and "15,625" in out and "mobilenetv3_ofa" in out and "8.703e+19" in out


def test_sample_prints_valid_json_lines(capsys):
    assert main(["sample", "mobilenetv3_ofa", "-n", "3", "--seed", "4", "-O", "width_mult=0.5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    space = get_space("mobilenetv3_ofa", width_mult=0.5)
    assert len(lines) == 3
    assert all(space.contains(Architecture.from_json(line)) for line in lines)


def test_describe_reports_flops_params_and_layers(capsys, tmp_path):
    arch = get_space("nb201").sample(1)
    path = tmp_path / "arch.json"
    path.write_text(arch.to_json())
    assert main(["describe", "nb201", str(path), "--json", "--input-shape", "1", "8", "8"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["key"] == arch.key and data["params"] > 0 and data["flops"] > 0
    assert data["layers"][0]["in_shape"] == [1, 8, 8]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "nb999"], "unknown space 'nb999'; valid spaces:"),
        (["describe", "nb201", '{"cell.edge_1_0": "conv"}'], "'cell.edge_1_0' = 'conv' is not allowed"),
        (["describe", "nb201", "missing.json"], "neither JSON nor an existing file"),
        (["sample", "nb201", "-O", "widht"], "must look like key=value"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
