"""Latency tables shared by a sweep's trials: one per target device, built before the trials.

Left to itself every ``nas run`` trial profiles its own table for each device, so trials
targeting the same device compare against different tables: on a shared machine one budget
quantile came out between 2.2 and 5.5 ms across trials. Instead, the driver groups the
devices of all trials by what a table depends on (space and options, data set, device kind
and options, profiler settings, calibration networks: not the trial's seed, nor its search
settings), builds each table once into ``<sweep>/tables/`` and points every trial's
``devices[i].table`` at it. A device that already names a table is left alone; a table
already in the folder (a resumed sweep) is reused.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.config import parse
from nas.run._stages import stable_hash
from nas.sweep._config import TrialSpec

__all__ = ["SharedTable", "build_shared_tables", "plan_shared_tables"]


@dataclasses.dataclass(frozen=True)
class SharedTable:
    """One table the sweep builds: where, and the first trial's experiment and device that need it."""

    path: Path
    experiment: dict[str, Any]
    device_index: int
    trials: tuple[str, ...]


def plan_shared_tables(trials: list[TrialSpec], out: Path) -> tuple[list[TrialSpec], list[SharedTable]]:
    """The trials with ``devices[i].table`` set to shared tables, and the tables to build.

    Only ``run`` trials profile tables (a ``search`` names its table files itself).
    """
    from nas.experiment import Experiment

    if not trials or trials[0].command != "run":
        return trials, []
    plans: dict[str, SharedTable] = {}
    rewritten = []
    for spec in trials:
        exp = parse(Experiment, spec.experiment)
        data = copy.deepcopy(spec.experiment)
        for i, dev in enumerate(exp.devices):
            if dev.table is not None:
                continue
            key = stable_hash(exp.space.name, exp.space.options, exp.data.name, exp.data.root, dev.kind,
                              dev.options, dev.profiler, dev.n_calibration)
            path = out / "tables" / f"{dev.name}-{key}.csv"
            plan = plans.get(key) or SharedTable(path, spec.experiment, i, ())
            plans[key] = dataclasses.replace(plan, trials=(*plan.trials, spec.name))
            data["devices"][i]["table"] = str(path)
        rewritten.append(dataclasses.replace(spec, experiment=data))
    return rewritten, list(plans.values())


def build_shared_tables(plans: list[SharedTable], echo: Callable[[str], None]) -> None:
    """Build (or reuse) every planned table, one after the other, on this process's machine."""
    for plan in plans:
        if plan.path.is_file():
            echo(f"[sweep] latency table {plan.path.name}: reused (trials {', '.join(plan.trials)})")
            continue
        table = _build(plan)
        tmp = plan.path.with_name(plan.path.stem + ".partial.csv")
        table.save(tmp)
        Path(str(tmp) + ".meta.json").replace(str(plan.path) + ".meta.json")
        tmp.replace(plan.path)
        echo(f"[sweep] latency table {plan.path.name}: {len(table)} layers, shared by trials "
             f"{', '.join(plan.trials)}")


def _build(plan: SharedTable) -> Any:
    from hardware import LatencyTable, Profiler, get_device
    from nas.experiment import Experiment
    from search_spaces import get_space
    from supernets.data import load_dataset

    exp = parse(Experiment, plan.experiment)
    dev = exp.devices[plan.device_index]
    data = load_dataset(exp.data.name, exp.data.root, seed=exp.seed)
    space = get_space(exp.space.name, **exp.space.options)
    return LatencyTable.build(space, get_device(dev.kind, **dev.options), tuple(data.input_shape),
                              data.num_classes, profiler=Profiler(**dev.profiler),
                              n_calibration=dev.n_calibration, rng=0, progress=False,
                              space_options=dict(exp.space.options))
