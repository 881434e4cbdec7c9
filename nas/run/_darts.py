"""The DARTS pipeline of ``nas run`` / ``nas darts search``: search the supernet's
architecture weights, derive an architecture, train it standalone, export it, report.

The search resumes from its own checkpoint in the run folder (``checkpoint.pt``,
``metrics.csv``, ``alphas.json``, ``derived.json``); the standalone training and the
export are one cached stage keyed by the derived architecture and their settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.config import to_dict
from nas.errors import ConfigError
from nas.run._context import RunContext
from nas.run._stages import atomic_write_text, stable_hash
from search_spaces import Architecture

__all__ = ["DartsRunResult", "darts_pipeline"]


@dataclass(frozen=True)
class DartsRunResult:
    """What a DARTS run produced.

    Attributes:
        run_dir: the run folder.
        arch: the derived architecture.
        search_val_accuracy: the supernet's validation accuracy after the last epoch.
        standalone: ``epochs``, ``val_acc``, ``test_acc``, ``params`` of the derived
            architecture trained from scratch.
        files: exported files (``{format: {"path", "max_abs_diff"}}``).
    """

    run_dir: Path
    arch: Architecture
    search_val_accuracy: float
    standalone: dict[str, Any]
    files: dict[str, dict[str, Any]]


def darts_pipeline(ctx: RunContext, restart: bool = False) -> DartsRunResult:
    """Run (or continue) the DARTS pipeline of ``ctx.exp`` in ``ctx.run_dir``."""
    from supernets import search_darts

    exp = ctx.exp
    config = exp.supernet.darts_config(exp.seed)
    if restart:
        ctx.cache.invalidate("standalone")
    if exp.compute.processes > 1:
        raise ConfigError(
            "compute.processes: nas run searches DARTS in one process; for a data-parallel "
            "search start the workers with torchrun and call supernets.search_darts in each "
            "(see docs/decisions/ddp-weight-sharing.md), or set processes: 1")
    result = search_darts(ctx.space, config, ctx.data, ctx.run_dir, resume=not restart,
                          space_options=exp.space.options, progress=ctx.progress,
                          runtime=ctx.runtime)
    arch = result.arch
    atomic_write_text(ctx.run_dir / "arch.json", arch.to_json() + "\n")
    val_acc = float(result.metrics[-1]["val_acc"]) if result.metrics else float("nan")
    ctx.log(f"[darts search] {config.epochs} epochs, val acc {val_acc:.4f}; derived {arch.key} "
            f"({config.derive})")
    key = stable_hash(arch.key, ctx.space.fingerprint, to_dict(exp.standalone),
                      to_dict(exp.export), exp.seed, to_dict(exp.data))
    summary = ctx.cache.run("standalone", key, lambda: _standalone(ctx, arch, val_acc))
    _report(ctx, arch, config.derive, summary)
    ctx.log(f"[done] derived architecture and its model in {ctx.run_dir}; report: "
            f"{ctx.run_dir / 'report.md'}")
    return DartsRunResult(ctx.run_dir, arch, val_acc, summary["standalone"], summary["files"])


def _standalone(ctx: RunContext, arch: Architecture, val_acc: float) -> dict[str, Any]:
    """Train the derived architecture from scratch and export it."""
    from nas.export import export_subnet
    from supernets import train_standalone

    exp, t = ctx.exp, ctx.exp.standalone
    trained = train_standalone(ctx.space, arch, ctx.data, epochs=t.epochs, batch_size=t.batch_size,
                               lr=t.lr, weight_decay=t.weight_decay, seed=exp.seed,
                               compute=exp.compute)
    files = export_subnet(trained.model, ctx.space, arch, ctx.run_dir / "model", ctx.shape,
                          ctx.data.num_classes, exp.export.formats, exp.space.options, exp.seed,
                          device=ctx.device)
    standalone = {"epochs": t.epochs, "val_acc": trained.val_accuracy,
                  "test_acc": trained.test_accuracy, "params": trained.params}
    summary = {"key": arch.key, "search_val_acc": val_acc, "standalone": standalone,
               "files": files}
    atomic_write_text(ctx.run_dir / "standalone.json", json.dumps(summary, indent=1) + "\n")
    ctx.log(f"[standalone] {t.epochs} epochs: val acc {trained.val_accuracy:.4f}, test acc "
            f"{trained.test_accuracy:.4f}, {trained.params} params -> {ctx.run_dir / 'model'}")
    return summary


def _report(ctx: RunContext, arch: Architecture, derive: str, summary: dict[str, Any]) -> None:
    """``alphas.png`` and ``report.md``."""
    import yaml

    from nas.plots import plot_alpha_history
    from supernets import load_alpha_history

    plot_alpha_history(ctx.run_dir / "alphas.png", load_alpha_history(ctx.run_dir))
    s = summary["standalone"]
    files = ", ".join(f"[{k}]({Path(v['path']).relative_to(ctx.run_dir)})"
                      for k, v in summary["files"].items())
    lines = [f"# {ctx.exp.name}", "",
             f"DARTS over space `{ctx.space.name}` ({ctx.space.size():.3g} architectures), data "
             f"`{ctx.data.name}` (input {ctx.shape}).", "",
             "## Derived architecture", "",
             f"`{arch.key}` (derived by {derive}); supernet validation accuracy after the search "
             f"{summary['search_val_acc']:.4f}.", "", "```json", arch.to_json(), "```", "",
             "## Trained standalone", "",
             f"{s['epochs']} epochs from scratch: validation accuracy {s['val_acc']:.4f}, test "
             f"accuracy {s['test_acc']:.4f}, {s['params']:,} parameters. Files: {files}.", "",
             "## Files", "",
             "- `alphas.png`, `alphas.csv`, `alphas.json`: the op weights of every edge per epoch",
             "- `metrics.csv`: search loss and accuracy per epoch; `checkpoint.pt`: the search state",
             "- `derived.json`, `arch.json`: the derived architecture; `standalone.json`: its training",
             "- `model/`: `model.pt` (state_dict + arch), `model.torchscript.pt`, `model.onnx`",
             "- `manifest.json`: version, git commit, command line, resolved experiment", "",
             "## Config", "", "```yaml", yaml.safe_dump(to_dict(ctx.exp), sort_keys=False).rstrip(),
             "```", ""]
    atomic_write_text(ctx.run_dir / "report.md", "\n".join(lines))
