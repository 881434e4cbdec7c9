"""``nas darts search`` and ``nas darts plot`` (and ``nas run`` on the same file)."""

from __future__ import annotations

import json

from _darts_helpers import one_thread  # noqa: F401  (autouse)

from nas.cli import main
from nas.export import load_exported
from search_spaces import Architecture, get_space

CONFIG = """
name: tiny_darts
compute: {threads: 1}
space: {name: nb201, options: {channels: 4, cells_per_stage: 1}}
data: {name: digits}
supernet:
  type: darts
  search: {epochs: 1, batch_size: 128, a_lr: 3e-3}
standalone: {epochs: 1, batch_size: 128}
export: {formats: [state_dict]}
"""


def test_search_prints_the_derived_arch_and_standalone_accuracy(tmp_path, capsys):
    cfg = tmp_path / "darts.yaml"
    cfg.write_text(CONFIG)
    run = tmp_path / "run"
    assert main(["darts", "search", str(cfg), "--run-dir", str(run)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    arch = Architecture.from_json(lines[0])
    space = get_space("nb201", channels=4, cells_per_stage=1)
    space.validate(arch)
    assert "test acc" in lines[-1]
    summary = json.loads((run / "standalone.json").read_text())
    assert 0.0 <= summary["standalone"]["test_acc"] <= 1.0
    assert load_exported(run / "model" / "model.pt").training is False
    for name in ("report.md", "alphas.png", "manifest.json", "derived.json"):
        assert (run / name).is_file(), name
    assert main(["darts", "plot", str(run), "-o", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    # `nas run` runs the same pipeline on the same file; the finished run is reused
    assert main(["run", str(cfg), "--out", str(run)]) == 0
    assert f"derived: {arch.key}" in capsys.readouterr().out


def test_unknown_keys_are_one_line_errors_listing_valid_keys(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(CONFIG + "serach: {}\n")
    assert main(["darts", "search", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "serach: unknown key (did you mean 'search'?); valid keys: name, seed" in err
    cfg.write_text(CONFIG.replace("epochs: 1, batch", "epocs: 1, batch", 1))
    assert main(["darts", "search", str(cfg)]) == 2
    assert ("supernet.search.epocs: unknown key (did you mean 'epochs'?); valid keys: epochs"
            in capsys.readouterr().err)
    cfg.write_text(CONFIG.replace("a_lr: 3e-3", "order: 3"))
    assert main(["darts", "search", str(cfg)]) == 2
    assert "supernet.search.order: `order in (1, 2)` must hold, but got 3" in capsys.readouterr().err
    cfg.write_text(CONFIG.replace("type: darts", "type: ofa"))
    assert main(["darts", "search", str(cfg)]) == 2
    assert "supernet.search: DARTS settings need supernet.type: darts" in capsys.readouterr().err


def test_a_space_darts_cannot_relax_is_a_clear_error(tmp_path, capsys):
    cfg = tmp_path / "ofa.yaml"
    cfg.write_text("space: {name: mobilenetv3_ofa}\nsupernet: {type: darts, search: {epochs: 1}}\n")
    assert main(["darts", "search", str(cfg), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "supernet.type: DARTS cannot relax space 'mobilenetv3_ofa'" in err
    assert "no categorical op choice on cell edges" in err
    assert not (tmp_path / "r").exists()
