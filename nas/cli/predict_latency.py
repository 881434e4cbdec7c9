"""``nas predict latency fit``: latency predictors fitted from measurement files.

A user's whole-network latencies (a CSV of architecture JSON or benchmark strings and
milliseconds, from a benchmark table or a device farm) fit either predictor:

- ``layerwise``: :class:`predictors.LayerwiseLatencyPredictor` on the measurements alone;
- ``fewshot``: :class:`predictors.FewShotLatencyPredictor`, whose reference devices are
  latency tables (``.csv`` with its ``.meta.json``, or ``.parquet``) or other devices'
  measurement files of the same architectures (``--reference NAME=FILE[:COLUMN]``).

The same settings come from a YAML file (``--config``), parsed into :class:`LatencyFitConfig`;
command-line flags override it. Relative paths in the YAML are relative to the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nas.errors import ConfigError

__all__ = ["LatencyFitConfig", "ReferenceSpec", "fit_latency", "register"]


@dataclass(frozen=True)
class ReferenceSpec:
    """A reference device of the few-shot predictor: a latency table or a measurements file."""

    name: str
    path: str = field(metadata={"path": "file"})
    column: str = "latency_ms"


@dataclass(frozen=True)
class LatencyFitConfig:
    """``nas predict latency fit`` settings (the YAML keys)."""

    space: str
    measurements: str = field(metadata={"path": "file"})
    options: dict[str, Any] = field(default_factory=dict)
    column: str = "latency_ms"
    arch_column: str = "arch"
    model: Literal["layerwise", "fewshot"] = "layerwise"
    kind: Literal["linear", "mlp"] = "linear"
    references: tuple[ReferenceSpec, ...] = ()
    statistics: bool = True
    test_frac: float = field(default=0.2, metadata={"ge": 0.0, "le": 0.9})
    seed: int = 0
    out: str | None = field(default=None, metadata={"path": "file"})


def _reference(spec: ReferenceSpec, space: Any) -> Any:
    from predictors import MeasuredLatency

    path = Path(spec.path)
    if path.suffix.lower() in (".parquet", ".pq") or path.with_name(path.name + ".meta.json").is_file():
        from hardware import LatencyTable

        return LatencyTable.load(path, space=space)
    return MeasuredLatency.from_csv(path, space, spec.column, name=spec.name)


def fit_latency(cfg: LatencyFitConfig, echo=print) -> dict[str, Any]:
    """Fit the configured predictor on a split of the measurements; held-out quality."""
    import numpy as np

    from predictors import (
        FewShotLatencyPredictor,
        LayerwiseLatencyPredictor,
        evaluate_predictor,
        mape,
        read_latency_measurements,
    )
    from search_spaces import get_space

    space = get_space(cfg.space, **cfg.options)
    archs, ms = read_latency_measurements(cfg.measurements, space, cfg.column, cfg.arch_column)
    order = np.random.default_rng(cfg.seed).permutation(len(archs))
    n_test = int(round(cfg.test_frac * len(archs)))
    test, train = order[:n_test], order[n_test:]
    if cfg.model == "fewshot":
        if not cfg.references:
            raise ConfigError("model fewshot needs at least one reference (--reference NAME=FILE[:COLUMN])")
        refs = {r.name: _reference(r, space) for r in cfg.references}
        model = FewShotLatencyPredictor(refs, space=space if cfg.statistics else None)
    else:
        model = LayerwiseLatencyPredictor(space, kind=cfg.kind, seed=cfg.seed)
    model.fit([archs[i] for i in train], ms[train])
    echo(f"fitted {cfg.model} on {train.size} measured architectures of {cfg.measurements} "
         f"(column {cfg.column!r})")
    result: dict[str, Any] = {"model": cfg.model, "n_train": int(train.size), "n_test": int(test.size)}
    if test.size >= 2:
        held = [archs[i] for i in test]
        scores = evaluate_predictor(model, held, ms[test])
        scores["mape"] = float(mape(ms[test], model.predict(held)))
        result["held_out"] = scores
        echo(f"held-out ({test.size} archs): " + "  ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    if cfg.out:
        state = {"model": cfg.model, "kind": cfg.kind, "space": cfg.space, "options": cfg.options,
                 "references": [r.__dict__ for r in cfg.references], "state": model.state_dict()}
        Path(cfg.out).write_text(json.dumps(state, indent=1))
        echo(f"saved {cfg.out}")
    return result


def _parse_reference(text: str) -> dict[str, str]:
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise ConfigError(f"--reference must be NAME=FILE or NAME=FILE:COLUMN, got {text!r}")
    path, _, column = rest.partition(":")
    return {"name": name, "path": str(Path(path).resolve()), **({"column": column} if column else {})}


def cmd_fit(args) -> int:
    from nas.config import load_yaml, parse, resolve_paths

    data: dict[str, Any] = {}
    base = Path.cwd()
    if args.config:
        data, base = load_yaml(args.config), Path(args.config).resolve().parent
    cfg = resolve_paths(parse(LatencyFitConfig, _merged(data, args)), base)
    fit_latency(cfg)
    return 0


def _merged(data: dict[str, Any], args) -> dict[str, Any]:
    """The YAML data with the flags given on the command line on top (their paths absolute,
    as they are relative to the working directory, not to the YAML file)."""
    from nas.cli._common import parse_options

    data = dict(data)
    for key in ("measurements", "out"):
        if getattr(args, key) is not None:
            data[key] = str(Path(getattr(args, key)).resolve())
    for key in ("space", "column", "model", "kind", "seed", "test_frac"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.option:
        data["options"] = parse_options(args.option)
    if args.reference:
        data["references"] = [_parse_reference(r) for r in args.reference]
    for key in ("space", "measurements"):
        if key not in data:
            raise ConfigError(f"--{key} is required (or {key}: in the --config file)")
    return data


def register(sp) -> None:
    """``nas predict latency fit`` under ``nas predict``."""
    from nas.cli._common import add_space_options

    lat = sp.add_parser("latency", help="latency predictors from measurement files")
    lsp = lat.add_subparsers(dest="latency_command", metavar="ACTION")
    lsp.required = True
    q = lsp.add_parser("fit", help="fit a layerwise or few-shot latency predictor on measured latencies")
    q.add_argument("--config", help="YAML with the keys of nas.cli.predict_latency.LatencyFitConfig")
    q.add_argument("--space", help="registered space name")
    add_space_options(q)
    q.add_argument("--measurements", help="CSV: an 'arch' column (JSON or benchmark string) and latency ms")
    q.add_argument("--column", help="latency column (default latency_ms)")
    q.add_argument("--model", choices=("layerwise", "fewshot"), help="default layerwise")
    q.add_argument("--kind", choices=("linear", "mlp"), help="layerwise model kind (default linear)")
    q.add_argument("--reference", action="append", metavar="NAME=FILE[:COLUMN]",
                   help="fewshot reference device: a latency table or a measurements CSV (repeatable)")
    q.add_argument("--test-frac", type=float, help="held-out share (default 0.2)")
    q.add_argument("--seed", type=int)
    q.add_argument("--out", help="write the fitted predictor (JSON)")
    q.set_defaults(func=cmd_fit)
