"""Every figure comes from nas.plots, with the conventions the module promises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nas import plots

PNG = b"\x89PNG\r\n\x1a\n"


def _boxes(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _history(rng, n=40):
    latency = rng.uniform(1, 5, n)
    accuracy = 0.7 + 0.05 * latency + rng.normal(0, 0.02, n)
    frame = pd.DataFrame({"latency_ms": latency, "accuracy": accuracy})
    frame["feasible"] = latency <= 4
    points = np.stack([-accuracy, latency], 1)
    frame["on_front"] = [frame["feasible"][i] and not any(
        (points[j] <= points[i]).all() and (points[j] < points[i]).any() and frame["feasible"][j]
        for j in range(n)) for i in range(n)]
    return frame


def test_accuracy_goes_on_y_and_cost_on_x_whatever_the_objective_order():
    assert plots.axes_for(["accuracy", "latency_ms"], ["maximize", "minimize"]) == ("latency_ms", "accuracy")
    assert plots.axes_for(["latency_ms", "accuracy"], ["minimize", "maximize"]) == ("latency_ms", "accuracy")
    assert plots.axes_for(["flops", "params"], ["minimize", "minimize"]) == ("flops", "params")
    assert plots.axes_for(["a"], ["minimize"]) == ("a", None)
    assert plots.axes_for(["a", "b", "c"], ["minimize"] * 3, y="c") == ("a", "c")


def test_search_plot_legend_is_below_the_axes_and_the_long_title_wraps(tmp_path):
    history = _history(np.random.default_rng(0))
    title = "t003_engine=nsga2_seed=1-a-long-study-name-of-a-sweep-trial-0123456789abcdef: 40 evaluated"
    fig = plots._search_figure(history, ["accuracy", "latency_ms"], ["maximize", "minimize"],
                               ["latency_ms <= 4"], title, None, None)
    ax = fig.axes[0]
    renderer = _boxes(fig)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("latency_ms", "accuracy")
    legend, frame = ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer)
    assert legend.y1 <= frame.y0  # below the axes: hides no point, line or label
    assert ax.title.get_window_extent(renderer).width <= 1.05 * fig.bbox.width
    assert "\n" in ax.title.get_text()
    out = plots.plot_search(tmp_path / "s.png", history, ["accuracy", "latency_ms"],
                            ["maximize", "minimize"], ["latency_ms <= 4"], title)
    assert out.read_bytes()[:8] == PNG


def test_run_front_budget_labels_are_visible_and_the_accuracies_are_named():
    history = _history(np.random.default_rng(1))
    history["device"] = "cpu1"
    front = history[history["on_front"]].sort_values("latency_ms")
    chosen = [{"device": "cpu1", "budget_ms": b, "table_latency_ms": b - 0.3, "test_accuracy": 0.8}
              for b in (3.0, 3.6)]
    random = pd.DataFrame({"latency_ms_cpu1": [2.0, 3.0], "test_accuracy": [0.75, 0.8]})
    fig = plots._run_front_figure(history, front, chosen, random, "quickstart: mobilenetv3_ofa")
    ax = fig.axes[0]
    renderer = _boxes(fig)
    legend = ax.get_legend().get_window_extent(renderer)
    labels = [t for t in ax.texts if t.get_text().startswith("≤")]
    assert len(labels) == 2
    for text in labels:  # inside the axes, and nowhere near the legend
        box = text.get_window_extent(renderer)
        assert ax.get_window_extent(renderer).contains(box.x0 + 1, box.y0 + 1)
        assert not box.overlaps(legend)
    assert "predicted" in ax.get_ylabel() and "test" in ax.get_ylabel()
    assert "latency" in ax.get_xlabel()


def test_alpha_plot_y_label_clears_the_tick_labels(tmp_path):
    edges = {f"edge_{j}_{i}": {"conv": 0.5, "skip": 0.5} for j in (1, 2, 3) for i in range(j)}
    history = [{"epoch": e, "alphas": {"cell": edges}} for e in range(3)]
    fig = plots._alpha_figure(history)
    renderer = _boxes(fig)
    ylabel = fig._supylabel.get_window_extent(renderer)
    ticks = [t.get_window_extent(renderer) for t in fig.axes[0].get_yticklabels() if t.get_text()]
    assert ticks and not any(ylabel.overlaps(t) for t in ticks)
    legend = fig.legends[0].get_window_extent(renderer)
    assert not legend.overlaps(fig._supxlabel.get_window_extent(renderer))
    assert not any(legend.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)
    assert plots.plot_alpha_history(tmp_path / "a.png", history).read_bytes()[:8] == PNG
    from nas.errors import NasError

    with pytest.raises(NasError, match="empty"):
        plots.plot_alpha_history(tmp_path / "b.png", [])


def test_validation_and_learning_curve_plots(tmp_path):
    from hardware import compare

    report = compare([1.0, 2.2, 2.9, 4.5], [1.0, 2.0, 3.0, 4.0])
    assert plots.plot_validation(tmp_path / "v.png", report).read_bytes()[:8] == PNG
    rows = [{"model": m, "n_train": n, "kendall_tau": t} for m, t0 in (("gp", 0.5), ("ridge", 0.4))
            for n, t in ((10, t0), (40, t0 + 0.2), (40, t0 + 0.25))]
    fig = plots._learning_curve_figure(rows, "kendall_tau", "")
    assert fig.axes[0].get_xscale() == "log" and "held-out" in fig.axes[0].get_ylabel()
    assert plots.plot_learning_curve(tmp_path / "c.png", rows).read_bytes()[:8] == PNG
