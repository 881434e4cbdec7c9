"""The one experiment schema: every command reads the same YAML into these dataclasses.

A file drives ``nas run`` (the whole pipeline, OFA or DARTS), ``nas search`` (a search
with explicit objectives), ``nas darts search`` and ``nas supernet train``; each
command reads the sections it needs and validates them before anything runs
(:func:`nas.experiment.validate_experiment`).

Paths: every path a file reads (``plugins`` files, ``data.root``,
``supernet.checkpoint``, ``devices[].table``, ``search.objectives[].path``) is
relative to the experiment file's folder (absolute paths and URLs stay as they are).
Everything a command writes goes under its run folder (``--out``, default
``runs/<name>`` in the working directory); a relative ``search.storage`` is a SQLite
file in the run folder.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from nas.errors import ConfigError
from supernets import DartsConfig, OFATrainConfig
from supernets.data import DataConfig
from supernets.runtime import ComputeConfig

__all__ = [
    "DeviceSection",
    "Experiment",
    "ExportSection",
    "ObjectiveSpec",
    "PredictorSection",
    "ReportSection",
    "SearchSection",
    "SpaceSection",
    "StandaloneSection",
    "SupernetSection",
]

EXPORT_FORMATS = ("state_dict", "torchscript", "onnx")


@dataclass(frozen=True)
class SpaceSection:
    """A registered search space (``nas spaces``) and its factory options."""

    name: str = "mobilenetv3_ofa"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SupernetSection:
    """The one-shot supernet: ``type: ofa`` (Once-for-All weight sharing) or ``darts``.

    ``ofa``: train one with ``train`` (the keys of ``supernets.OFATrainConfig``; the
    default is the sandwich schedule) or reuse ``checkpoint`` (a run folder or its
    ``supernet.pt``, relative to the file). ``darts``: ``search`` holds the keys of
    ``supernets.DartsConfig`` (epochs, order, partial_channels, derive, ...). Both
    take their seed from the experiment's ``seed``.
    """

    type: Literal["ofa", "darts"] = "ofa"
    checkpoint: str | None = field(default=None, metadata={"path": "file"})
    train: OFATrainConfig | None = field(default=None, metadata={"omit": ("seed",)})
    search: DartsConfig | None = field(default=None, metadata={"omit": ("seed",)})

    def __post_init__(self) -> None:
        if self.type == "ofa":
            if self.search is not None:
                raise ConfigError("search: DARTS settings need supernet.type: darts "
                                  "(an OFA supernet takes `train` or `checkpoint`)")
            if self.checkpoint is not None and self.train is not None:
                raise ConfigError("train: give either checkpoint or train, not both")
        else:
            for key in ("train", "checkpoint"):
                if getattr(self, key) is not None:
                    raise ConfigError(f"{key}: a DARTS supernet takes `search` settings only "
                                      "(train/checkpoint are for supernet.type: ofa)")

    def ofa_config(self, seed: int) -> OFATrainConfig:
        """The OFA training settings (the default schedule when none are given)."""
        return dataclasses.replace(self.train or OFATrainConfig(), seed=seed)

    def darts_config(self, seed: int) -> DartsConfig:
        """The DARTS search settings (the defaults when none are given)."""
        return dataclasses.replace(self.search or DartsConfig(), seed=seed)


@dataclass(frozen=True)
class DeviceSection:
    """A target device: ``kind`` is a registered device (cpu, cuda, onnxruntime, ...)
    with its ``options`` (e.g. threads); ``table`` loads an existing latency table
    (relative to the file) instead of profiling one; ``profiler`` holds
    ``hardware.Profiler`` options; ``n_calibration`` whole networks calibrate the table."""

    name: str
    kind: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)
    table: str | None = field(default=None, metadata={"path": "file"})
    profiler: dict[str, Any] = field(default_factory=dict)
    n_calibration: int = field(default=16, metadata={"ge": 0, "le": 10_000})


@dataclass(frozen=True)
class PredictorSection:
    """Accuracy predictor fitted on ``train_archs`` supernet-evaluated subnets; with
    ``pretrain_archs`` > 0 it is first pretrained on their free statistics (FBNetV3).
    ``holdout``: share of the subnets held out to report its quality."""

    name: str = "mlp_ensemble"
    options: dict[str, Any] = field(default_factory=dict)
    train_archs: int = field(default=150, metadata={"ge": 10, "le": 1_000_000})
    pretrain_archs: int = field(default=0, metadata={"ge": 0, "le": 10_000_000})
    holdout: float = field(default=0.2, metadata={"ge": 0.0, "le": 0.5})


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective or measure of ``nas search``.

    ``type``: a registered objective type (``flops``, ``params``, ``tabular``: a column
    of a CSV file, ``table_latency``: a saved latency table; plugins add their own with
    ``nas.experiment.register_objective_type``). ``path`` is relative to the file.
    """

    type: str
    name: str | None = None
    direction: Literal["minimize", "maximize"] | None = None
    path: str | None = field(default=None, metadata={"path": "file"})
    column: str | None = None        # tabular: value column
    key_column: str = "arch"         # tabular: column of architecture keys
    key_format: Literal["nb201", "key", "json"] = "nb201"


@dataclass(frozen=True)
class SearchSection:
    """The search.

    ``nas run`` (OFA): one constrained search per (device, latency budget), maximising
    accuracy (``accuracy``: the predictor's estimate, or the supernet's: slower, exact)
    and minimising table latency; budgets are ``budgets_ms`` when given, else
    ``budget_quantiles`` of the table latency of random architectures (so the same file
    works on any machine); ``devices`` restricts the searched devices.

    ``nas search``: ``objectives`` (and ``measures``, recorded but not optimised)
    under ``constraints`` such as ``"params <= 2e5"``; ``reference``: the hypervolume
    reference point (raw units, one value per objective).

    Both: ``engine`` (``nas.search.list_engines()``) with ``options``, ``evaluations``
    in batches of ``batch_size`` (default: ``nas.search.default_batch_size(evaluations)``);
    ``storage``: the study database, a SQLite file in the
    run folder or an SQLAlchemy URL (``postgresql://...``) shared by several runs;
    ``study``: the study name (default: the experiment's name). ``seeds``: repeat
    every search once per seed (default: the experiment's ``seed`` alone).
    """

    engine: str = "evolution"
    options: dict[str, Any] = field(default_factory=dict)
    evaluations: int = field(default=1000, metadata={"ge": 1, "le": 10_000_000})
    batch_size: int | None = field(default=None, metadata={"ge": 1, "le": 1_000_000})
    objectives: tuple[ObjectiveSpec, ...] = ()
    constraints: tuple[str, ...] = ()
    measures: tuple[ObjectiveSpec, ...] = ()
    devices: tuple[str, ...] = ()
    budgets_ms: tuple[float, ...] = ()
    budget_quantiles: tuple[float, ...] = (0.3, 0.7)
    seeds: tuple[int, ...] = ()
    accuracy: Literal["predicted", "supernet"] = "predicted"
    storage: str = "study.db"
    study: str | None = None
    reference: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for i, q in enumerate(self.budget_quantiles):
            if not 0.0 < q < 1.0:
                raise ConfigError(f"budget_quantiles[{i}]: must be in (0, 1), got {q}")
        for i, b in enumerate(self.budgets_ms):
            if b <= 0:
                raise ConfigError(f"budgets_ms[{i}]: must be > 0, got {b}")
        if not self.budgets_ms and not self.budget_quantiles:
            raise ConfigError("budget_quantiles: give budgets_ms or budget_quantiles")


@dataclass(frozen=True)
class StandaloneSection:
    """Training from scratch of a derived architecture (the DARTS pipeline): SGD with
    Nesterov momentum and a cosine schedule; the seed is the experiment's."""

    epochs: int = field(default=10, metadata={"ge": 0, "le": 100_000})
    batch_size: int = field(default=64, metadata={"ge": 1, "le": 1_000_000})
    lr: float = field(default=0.05, metadata={"gt": 0})
    weight_decay: float = field(default=3e-4, metadata={"ge": 0})


@dataclass(frozen=True)
class ExportSection:
    """Formats written for each chosen model; each is re-loaded and checked
    (``nas.export``). ``finetune_steps``: SGD steps of an extracted OFA subnet alone."""

    formats: tuple[Literal["state_dict", "torchscript", "onnx"], ...] = EXPORT_FORMATS
    finetune_steps: int = field(default=0, metadata={"ge": 0, "le": 10_000_000})


@dataclass(frozen=True)
class ReportSection:
    """``random_archs``: random subnets evaluated as the baseline; ``remeasure``:
    time the chosen subnets end to end on their device."""

    random_archs: int = field(default=30, metadata={"ge": 0, "le": 1_000_000})
    remeasure: bool = True


@dataclass(frozen=True)
class Experiment:
    """One experiment file: what to search, on which data, with which supernet,
    for which devices, and what to write.

    ``plugins``: Python modules (dotted names) or ``.py`` files (relative to the file)
    imported before any name is resolved, so that spaces, ops, engines, predictors,
    devices and objective types they register can be named here. ``seed`` seeds
    everything (data split, supernet, predictor, engines). ``compute``: device,
    precision, threads and processes of every stage that runs a network
    (``supernets.runtime.ComputeConfig``). ``data``: ``supernets.data.DataConfig``.
    """

    name: str = "experiment"
    seed: int = field(default=0, metadata={"ge": 0, "le": 2**32 - 1})
    plugins: tuple[str, ...] = field(default=(), metadata={"path": "plugin"})
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceSection = field(default_factory=SpaceSection)
    supernet: SupernetSection = field(default_factory=SupernetSection)
    devices: tuple[DeviceSection, ...] = (DeviceSection("cpu1", options={"threads": 1}),)
    predictor: PredictorSection = field(default_factory=PredictorSection)
    search: SearchSection = field(default_factory=SearchSection)
    standalone: StandaloneSection = field(default_factory=StandaloneSection)
    export: ExportSection = field(default_factory=ExportSection)
    report: ReportSection = field(default_factory=ReportSection)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", self.name):
            raise ConfigError(f"name: {self.name!r} must be a plain name (letters, digits, '.', "
                              "'_', '-'; no path): it names the run folder")
        names = [d.name for d in self.devices]
        if not names:
            raise ConfigError("devices: at least one device is needed")
        if len(set(names)) != len(names):
            raise ConfigError(f"devices: names must be unique, got {names}")
        for i, dev in enumerate(self.search.devices):
            if dev not in names:
                raise ConfigError(f"search.devices[{i}]: unknown device {dev!r}; "
                                  f"devices are {', '.join(names)}")

    @property
    def search_devices(self) -> tuple[str, ...]:
        """The devices searched by ``nas run`` (``search.devices``, default every device)."""
        return self.search.devices or tuple(d.name for d in self.devices)

    @property
    def study(self) -> str:
        """The study name (``search.study``, default the experiment's name)."""
        return self.search.study or self.name
