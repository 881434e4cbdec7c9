"""``nas darts search`` and ``nas darts plot``."""

from __future__ import annotations

import json

from _darts_helpers import one_thread  # noqa: F401  (autouse)

from nas.cli import main
from search_spaces import Architecture, get_space

CONFIG = """
space: nb201
space_options: {channels: 4, cells_per_stage: 1}
data: {name: digits}
search: {epochs: 1, batch_size: 128}
train: {epochs: 1, batch_size: 128}
threads: 1
"""


def test_search_prints_the_derived_arch_and_standalone_accuracy(tmp_path, capsys):
    cfg = tmp_path / "darts.yaml"
    cfg.write_text(CONFIG)
    assert main(["darts", "search", str(cfg), "--run-dir", str(tmp_path / "run")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    arch = Architecture.from_json(lines[0])
    get_space("nb201", channels=4, cells_per_stage=1).validate(arch)
    assert "test acc" in lines[-1]
    summary = json.loads((tmp_path / "run" / "standalone.json").read_text())
    assert 0.0 <= summary["standalone"]["test_acc"] <= 1.0
    assert main(["darts", "plot", str(tmp_path / "run"), "-o", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_unknown_keys_are_one_line_errors_listing_valid_keys(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(CONFIG + "serach: {}\n")
    assert main(["darts", "search", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "serach: unknown key (did you mean 'search'?); valid keys: space, space_options" in err and "threads" in err
    cfg.write_text(CONFIG.replace("epochs: 1, batch", "epocs: 1, batch", 1))
    assert main(["darts", "search", str(cfg)]) == 2
    assert "search: unknown key(s) ['epocs']; valid keys: epochs" in capsys.readouterr().err


def test_a_space_darts_cannot_relax_is_a_clear_error(tmp_path, capsys):
    cfg = tmp_path / "ofa.yaml"
    cfg.write_text("space: mobilenetv3_ofa\nsearch: {epochs: 1}\n")
    assert main(["darts", "search", str(cfg), "--run-dir", str(tmp_path / "r")]) == 2
    assert "no categorical op choice on cell edges" in capsys.readouterr().err
