"""``nas darts search CONFIG.yaml`` and ``nas darts plot RUN_DIR``: differentiable NAS.

The YAML file (read with ``yaml.safe_load``) has these sections; unknown keys are
errors listing the valid ones::

    space: nb201                      # a registered cell space
    space_options: {channels: 8, cells_per_stage: 1}
    data: {name: digits}              # name, root (local folder), seed
    search: {epochs: 10, order: 1, partial_channels: 1, derive: argmax}   # DartsConfig
    train: {epochs: 10}               # standalone training of the derived architecture
    run_dir: runs/darts
    threads: 1                        # torch intra-op threads (default: torch's choice)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nas.config import load_yaml, parse
from nas.errors import ConfigError
from search_spaces import get_space
from supernets import DartsConfig, plot_alpha_history, search_darts, train_standalone
from supernets.data import load_dataset


@dataclass(frozen=True)
class DataSection:
    name: str = "digits"
    root: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class TrainSection:
    """Standalone training of the derived architecture."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    weight_decay: float = 3e-4
    seed: int = 0


@dataclass(frozen=True)
class DartsExperiment:
    space: str = "nb201"
    space_options: dict[str, Any] = field(default_factory=dict)
    data: DataSection = field(default_factory=DataSection)
    search: DartsConfig = field(default_factory=DartsConfig)
    train: TrainSection = field(default_factory=TrainSection)
    run_dir: str = "runs/darts"
    threads: int | None = None


def load_experiment(path: str | Path) -> DartsExperiment:
    """Parse a DARTS experiment YAML file (``safe_load``) into frozen dataclasses;
    every error names its key path and lists the valid keys."""
    raw = load_yaml(path)
    search = raw.pop("search", None) or {}
    top = parse(DartsExperiment, raw, "")
    if not isinstance(search, Mapping):
        raise ConfigError("search: expected a mapping of keys for DartsConfig")
    try:
        return dataclasses.replace(top, search=DartsConfig.from_dict(search, "search"))
    except TypeError as exc:
        raise ConfigError(f"search: {exc}") from None


def cmd_search(args) -> int:
    exp = load_experiment(args.config)
    if exp.threads is not None:
        torch.set_num_threads(exp.threads)
    run_dir = Path(args.run_dir or exp.run_dir)
    space = get_space(exp.space, **exp.space_options)
    data = load_dataset(exp.data.name, root=exp.data.root, seed=exp.data.seed)
    result = search_darts(space, exp.search, data, run_dir, resume=not args.restart,
                          space_options=exp.space_options)
    arch = result.arch
    (run_dir / "arch.json").write_text(arch.to_json() + "\n")
    print(arch.to_json())
    t = exp.train
    trained = train_standalone(space, arch, data, epochs=t.epochs, batch_size=t.batch_size, lr=t.lr,
                               weight_decay=t.weight_decay, seed=t.seed)
    summary = {"key": arch.key, "search_val_acc": result.metrics[-1]["val_acc"],
               "standalone": {"epochs": t.epochs, "val_acc": trained.val_accuracy,
                              "test_acc": trained.test_accuracy, "params": trained.params}}
    (run_dir / "standalone.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"derived {arch.key} ({exp.search.derive}) trained standalone for {t.epochs} epochs: "
          f"val acc {trained.val_accuracy:.4f}, test acc {trained.test_accuracy:.4f}, "
          f"{trained.params} params; run files in {run_dir}")
    return 0


def cmd_plot(args) -> int:
    out = plot_alpha_history(args.run_dir, args.output)
    print(f"wrote {out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("darts", help="differentiable architecture search (DARTS, PC-DARTS)")
    inner = p.add_subparsers(dest="darts_command", metavar="SUBCOMMAND")
    inner.required = True
    s = inner.add_parser("search", help="search a cell space, derive and train the architecture")
    s.add_argument("config", help="experiment YAML file")
    s.add_argument("--run-dir", help="override run_dir of the config")
    s.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    s.set_defaults(func=cmd_search)
    q = inner.add_parser("plot", help="plot how the op weights evolved (PNG)")
    q.add_argument("run_dir")
    q.add_argument("-o", "--output", default="alphas.png")
    q.set_defaults(func=cmd_plot)
