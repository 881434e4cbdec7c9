"""OFA supernet checkpoints: the training state (``supernet.json``) and the weights
(``supernet.pt``), device-independent: tensors are saved from the CPU and loaded with
``map_location="cpu"`` and ``weights_only=True``, so a run trained on a GPU resumes or
evaluates on a CPU and the other way round, with any number of processes."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from search_spaces import SearchSpace, get_space
from supernets._ofa.supernet import OFASupernet
from supernets.errors import SupernetError

__all__ = ["FORMAT", "META", "METRICS", "RNG_SCHEME", "WEIGHTS", "SupernetState", "load_supernet",
           "save_checkpoint", "to_cpu"]

FORMAT = "ofa-supernet/2"
RNG_SCHEME = "SeedSequence([seed, step]) per step; [seed, phase, epoch] per epoch"
WEIGHTS, META, METRICS = "supernet.pt", "supernet.json", "metrics.csv"


def to_cpu(obj: Any) -> Any:
    """``obj`` (tensors in dicts, lists, tuples) with every tensor detached on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, Mapping):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


# ---------------------------------------------------------------------- state


@dataclass(frozen=True)
class SupernetState:
    """Where a supernet training run stands; ``supernet.json`` is written from it.

    Attributes:
        space, space_options, fingerprint: the search space (name and factory options,
            so :func:`load_supernet` can rebuild it) and its grammar fingerprint.
        num_classes, input_shape, data: the data the supernet was built for;
            ``data_config`` its full settings (``supernets.data.DataConfig``), so that
            evaluation and extraction reload the same data.
        seed: the run's seed (``config["seed"]``).
        config: the training settings as plain data (``OFATrainConfig.to_dict()``).
        phase, phase_step, step: progress (phase index, step within it, steps in all).
        finished: every phase is done.
    """

    space: str
    space_options: dict[str, Any]
    fingerprint: str
    num_classes: int
    input_shape: tuple[int, ...]
    data: str
    config: dict[str, Any]
    phase: int = 0
    phase_step: int = 0
    step: int = 0
    finished: bool = False
    data_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    format: str = FORMAT
    rng: str = RNG_SCHEME

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape)
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> SupernetState:
        """Read ``supernet.json`` (written by this module); refuses another format."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SupernetError(f"{where}: not a supernet record (invalid JSON: {exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise SupernetError(f"{where}: format {found!r} is not {FORMAT!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(names - set(data) - {"phase", "phase_step", "step", "finished", "rng",
                                              "data_config"})
        if missing:
            raise SupernetError(f"{where}: not a supernet checkpoint record (missing {missing})")
        try:
            data["input_shape"] = tuple(data["input_shape"])
            return cls(**{k: v for k, v in data.items() if k in names})
        except (TypeError, ValueError) as exc:
            raise SupernetError(f"{where}: malformed supernet record ({exc})") from None


# ---------------------------------------------------------------------- checkpoints


def save_checkpoint(run_dir: Path, supernet: OFASupernet, state: SupernetState,
                    optimizer_state: Mapping[str, Any] | None = None,
                    scaler_state: Mapping[str, Any] | None = None) -> None:
    """Write weights (+ optimiser and fp16 gradient-scaler state, all as CPU tensors, and
    the state) in one atomic replace, then the JSON state as a readable copy: a crash
    between the two writes leaves a checkpoint whose weights and step agree."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (WEIGHTS + ".tmp")
    record = {"model": supernet.state_dict(), "optimizer": dict(optimizer_state or {}),
              "state": state.to_json()}  # the authority: supernet.json is a readable copy
    if scaler_state:
        record["scaler"] = dict(scaler_state)
    torch.save(to_cpu(record), tmp)
    os.replace(tmp, run_dir / WEIGHTS)
    tmp = run_dir / (META + ".tmp")
    tmp.write_text(state.to_json())
    os.replace(tmp, run_dir / META)


def _paths(checkpoint: str | Path) -> tuple[Path, Path]:
    path = Path(checkpoint)
    if path.is_dir():
        return path / WEIGHTS, path / META
    return path, path.with_suffix(".json")


def load_supernet(checkpoint: str | Path, space: SearchSpace | None = None
                  ) -> tuple[OFASupernet, SupernetState]:
    """Rebuild a supernet from a checkpoint (a run folder or its ``supernet.pt``).

    The space is rebuilt from the recorded name and factory options (or ``space`` is
    used) and must have the recorded fingerprint.

    Returns:
        The supernet (eval mode) and its training state.
    """
    weights, meta_path = _paths(checkpoint)
    if not weights.is_file():
        raise SupernetError(f"{checkpoint}: not a supernet checkpoint (needs {WEIGHTS})")
    saved = read_weights(weights)
    if "state" in saved:
        state = SupernetState.from_json(saved["state"], str(weights))
    elif meta_path.is_file():  # written before the state moved into the weights file
        state = SupernetState.from_json(_read_text(meta_path), str(meta_path))
    else:
        raise SupernetError(f"{checkpoint}: not a supernet checkpoint (needs {META})")
    if space is None:
        space = get_space(state.space, **state.space_options)
    if space.fingerprint != state.fingerprint:
        raise SupernetError(
            f"{checkpoint}: checkpoint of space {state.space!r} (fingerprint "
            f"{state.fingerprint}), not of space {space.name!r} (fingerprint {space.fingerprint})")
    net = OFASupernet.from_space(space, state.num_classes, state.input_shape)
    try:
        net.load_state_dict(saved["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SupernetError(f"{weights}: weights do not fit the recorded supernet ({first})") from None
    return net.eval(), state


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SupernetError(f"{path}: cannot be read ({exc})") from None


def read_weights(path: Path) -> dict[str, Any]:
    """The record of ``supernet.pt`` (``weights_only``); a truncated, foreign or malicious
    file is one :class:`SupernetError` naming it."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError,
            TypeError) as exc:
        text = str(exc).strip()
        if "weights_only" in text or "Unsupported global" in text or "GLOBAL" in text:
            why = "it holds Python objects other than tensors (refused: weights_only)"
        else:
            why = text.splitlines()[0] if text else type(exc).__name__
        raise SupernetError(f"{path}: not a readable supernet checkpoint: {why}") from None
    if not isinstance(saved, dict) or "model" not in saved:
        raise SupernetError(f"{path}: not a supernet checkpoint (no model weights)")
    return saved
