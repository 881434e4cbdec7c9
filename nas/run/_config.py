"""The experiment file of ``nas run``: one YAML, validated whole before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nas.config import load_yaml, parse
from nas.errors import ConfigError

__all__ = ["ExperimentConfig", "load_experiment"]


@dataclass(frozen=True)
class DataSection:
    """``name``: digits (embedded) or cifar10 (``root``: a local folder of the python batches)."""

    name: Literal["digits", "digits_aug", "cifar10"] = "digits"
    root: str | None = None


@dataclass(frozen=True)
class SpaceSection:
    """A registered search space and its factory options."""

    name: str = "mobilenetv3_ofa"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SupernetSection:
    """Train an OFA supernet (``train``: OFATrainConfig keys such as phases, batch_size)
    or reuse ``checkpoint`` (a run folder or its supernet.pt)."""

    checkpoint: str | None = None
    train: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceSection:
    """A target device: ``kind`` cpu | cuda | onnxruntime with its ``options``
    (e.g. threads); ``table`` loads an existing latency table instead of building one."""

    name: str
    kind: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)
    table: str | None = None
    profiler: dict[str, Any] = field(default_factory=dict)
    n_calibration: int = field(default=16, metadata={"ge": 0})


@dataclass(frozen=True)
class PredictorSection:
    """Accuracy predictor fitted on ``train_archs`` supernet-evaluated subnets; with
    ``pretrain_archs`` > 0 it is first pretrained on their free statistics (FBNetV3)."""

    name: str = "mlp_ensemble"
    options: dict[str, Any] = field(default_factory=dict)
    train_archs: int = field(default=150, metadata={"ge": 10})
    pretrain_archs: int = field(default=0, metadata={"ge": 0})
    holdout: float = field(default=0.2, metadata={"ge": 0.0, "le": 0.5})


@dataclass(frozen=True)
class SearchSection:
    """One constrained search per (device, latency budget).

    Budgets are ``budgets_ms`` when given, else ``budget_quantiles`` of the table
    latency of random architectures (so the same file works on any machine).
    ``accuracy``: the predictor's estimate, or the supernet's (slower, exact).
    ``storage``: the study database, a SQLite file in the run directory, or an
    SQLAlchemy URL (``postgresql://...``) shared by several runs.
    """

    engine: str = "evolution"
    options: dict[str, Any] = field(default_factory=dict)
    evaluations: int = field(default=1000, metadata={"ge": 1})
    batch_size: int = field(default=50, metadata={"ge": 1})
    devices: tuple[str, ...] = ()
    budgets_ms: tuple[float, ...] = ()
    budget_quantiles: tuple[float, ...] = (0.3, 0.7)
    accuracy: Literal["predicted", "supernet"] = "predicted"
    storage: str = "study.db"


@dataclass(frozen=True)
class ExportSection:
    """Formats written for each chosen subnet; each is re-loaded and checked."""

    formats: tuple[Literal["state_dict", "torchscript", "onnx"], ...] = ("state_dict", "torchscript", "onnx")
    finetune_steps: int = field(default=0, metadata={"ge": 0})


@dataclass(frozen=True)
class ReportSection:
    """``random_archs``: random subnets evaluated as the baseline; ``remeasure``:
    time the chosen subnets end to end on their device."""

    random_archs: int = field(default=30, metadata={"ge": 0})
    remeasure: bool = True


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole hardware-aware search: data, space, supernet, tables, predictor, search, export."""

    name: str = "experiment"
    seed: int = 0
    data: DataSection = field(default_factory=DataSection)
    space: SpaceSection = field(default_factory=SpaceSection)
    supernet: SupernetSection = field(default_factory=SupernetSection)
    devices: tuple[DeviceSection, ...] = (DeviceSection("cpu1", options={"threads": 1}),)
    predictor: PredictorSection = field(default_factory=PredictorSection)
    search: SearchSection = field(default_factory=SearchSection)
    export: ExportSection = field(default_factory=ExportSection)
    report: ReportSection = field(default_factory=ReportSection)

    def __post_init__(self) -> None:
        names = [d.name for d in self.devices]
        if not names:
            raise ConfigError("devices: at least one device is needed")
        if len(set(names)) != len(names):
            raise ConfigError(f"devices: names must be unique, got {names}")
        for i, dev in enumerate(self.search.devices):
            if dev not in names:
                raise ConfigError(f"search.devices[{i}]: unknown device {dev!r}; devices are {', '.join(names)}")
        for i, q in enumerate(self.search.budget_quantiles):
            if not 0.0 < q < 1.0:
                raise ConfigError(f"search.budget_quantiles[{i}]: must be in (0, 1), got {q}")
        for i, b in enumerate(self.search.budgets_ms):
            if b <= 0:
                raise ConfigError(f"search.budgets_ms[{i}]: must be > 0, got {b}")
        if not self.search.budgets_ms and not self.search.budget_quantiles:
            raise ConfigError("search: give budgets_ms or budget_quantiles")

    @property
    def search_devices(self) -> tuple[str, ...]:
        return self.search.devices or tuple(d.name for d in self.devices)


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Parse and validate an experiment file; every error names its key path."""
    return validate_components(parse(ExperimentConfig, load_yaml(path)), str(path))


def validate_components(cfg: ExperimentConfig, where: str = "experiment") -> ExperimentConfig:
    """Check names and options against the registries, before anything runs."""
    from hardware import get_device, list_devices
    from nas.search import list_engines
    from predictors import list_predictors
    from search_spaces import get_space, list_spaces
    from supernets import OFATrainConfig

    if cfg.space.name not in list_spaces():
        raise ConfigError(f"space.name: unknown space {cfg.space.name!r}; valid: {', '.join(list_spaces())}")
    try:
        get_space(cfg.space.name, **cfg.space.options)
    except Exception as exc:  # noqa: BLE001  (any factory error is the user's option)
        raise ConfigError(f"space.options: {exc}") from None
    if cfg.supernet.checkpoint is None:
        OFATrainConfig.from_dict(cfg.supernet.train, where="supernet.train")
    elif cfg.supernet.train:
        raise ConfigError("supernet: give either checkpoint or train, not both")
    for i, dev in enumerate(cfg.devices):
        if dev.kind not in list_devices():
            raise ConfigError(f"devices[{i}].kind: unknown device {dev.kind!r}; valid: {', '.join(list_devices())}")
        if dev.table is None:
            get_device(dev.kind, **dev.options)  # absent hardware and bad options fail here
    if cfg.predictor.name not in list_predictors():
        raise ConfigError(f"predictor.name: unknown predictor {cfg.predictor.name!r}; "
                          f"valid: {', '.join(list_predictors())}")
    if cfg.search.engine not in list_engines():
        raise ConfigError(f"search.engine: unknown engine {cfg.search.engine!r}; valid: {', '.join(list_engines())}")
    return cfg
