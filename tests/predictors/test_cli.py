"""The ``nas predict`` command line, end to end on a small CSV."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nas.cli import main

OPTS = ["-O", "width_mult=0.5", "-O", "resolutions=[8,12]", "-O", "depths=[2,3]",
        "-O", "input_shape=[1,8,8]"]


@pytest.fixture()
def table(tmp_path, ofa_archs, synthetic_target):
    path = tmp_path / "data.csv"
    pd.DataFrame({"arch": [a.to_json() for a in ofa_archs[:80]],
                  "accuracy": synthetic_target[:80]}).to_csv(path, index=False)
    return path


def test_fit_eval_and_curve(table, tmp_path, capsys):
    model = tmp_path / "ridge.npz"
    assert main(["predict", "fit", "mobilenetv3_ofa", str(table), "--model", "ridge",
                 "--out", str(model), *OPTS]) == 0
    assert "held-out (16 archs): kendall_tau" in capsys.readouterr().out
    assert main(["predict", "eval", "mobilenetv3_ofa", str(model), str(table), *OPTS]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["model"] == "ridge" and scores["archs"] == 80 and scores["kendall_tau"] > 0.5
    png = tmp_path / "curve.png"
    assert main(["predict", "curve", "mobilenetv3_ofa", str(table), "--models", "ridge",
                 "--sizes", "10,40", "--repeats", "1", "--png", str(png), *OPTS]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_user_errors_are_one_line(table, capsys):
    assert main(["predict", "fit", "mobilenetv3_ofa", str(table), "--model", "xgb", *OPTS]) == 2
    assert "valid predictors: gbdt, gp, mlp_ensemble, ridge" in capsys.readouterr().err
    assert main(["predict", "fit", "mobilenetv3_ofa", str(table), "--target", "acc", *OPTS]) == 2
    assert "no column 'acc'; columns are ['arch', 'accuracy']" in capsys.readouterr().err
    assert main(["predict", "fit", "nb201", str(table)]) == 2  # archs of another space
    assert "row 2, column 'arch'" in capsys.readouterr().err


def test_proxies_command(capsys):
    arch = json.dumps({"cell.edge_1_0": "nor_conv_3x3", "cell.edge_2_0": "skip_connect",
                       "cell.edge_2_1": "nor_conv_1x1", "cell.edge_3_0": "none",
                       "cell.edge_3_1": "avg_pool_3x3", "cell.edge_3_2": "nor_conv_3x3"})
    assert main(["predict", "proxies", "nb201", arch, "--names", "params,naswot", "--batch-size", "16",
                 "-O", "channels=4", "-O", "cells_per_stage=1"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"params", "naswot"} and scores["params"] > 0
