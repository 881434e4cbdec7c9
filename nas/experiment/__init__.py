"""The one experiment schema of every command, read from YAML and validated up front.

Example:
    >>> from nas.experiment import load_experiment                     # doctest: +SKIP
    >>> exp = load_experiment("experiments/quickstart.yaml", "run")    # parsed + validated
    >>> exp.supernet.type, exp.search.engine
    ('ofa', 'evolution')

See :mod:`nas.experiment._schema` (``Experiment``) for the sections and how paths in a
file resolve (relative to the file), and ``experiments/README.md`` for examples.
"""

from nas.experiment._objectives import (
    OBJECTIVE_TYPES,
    build_objective,
    build_problem,
    register_objective_type,
)
from nas.experiment._schema import (
    DeviceSection,
    Experiment,
    ExportSection,
    ObjectiveSpec,
    PredictorSection,
    ReportSection,
    SearchSection,
    SpaceSection,
    StandaloneSection,
    SupernetSection,
)
from nas.experiment._validate import COMMANDS, load_experiment, load_plugins, validate_experiment

__all__ = [
    "COMMANDS",
    "OBJECTIVE_TYPES",
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
    "build_objective",
    "build_problem",
    "load_experiment",
    "load_plugins",
    "register_objective_type",
    "validate_experiment",
]
