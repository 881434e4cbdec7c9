"""``run_sweep``: the trials of a sweep file as Ray Tune trials, on a local Ray or a cluster.

What lands where (``<out>`` is the sweep's ``output``, default ``runs/<name>``):

* ``<out>/trials/<trial>/``: each trial's own run directory (``nas run`` artefacts or
  the ``nas search`` study and results) and ``trial_result.json``;
* ``<out>/sweep.csv`` and ``sweep.json``: one row per trial (overrides, status, metrics);
* ``<out>/trials.json``: the expanded trial list (a resume checks it is unchanged);
* ``<out>/ray_tune/``: Ray Tune's experiment state (what ``--resume`` restores);
* ``<out>/ray_tmp/``: a local Ray's session files and logs, and Tune's lock files
  (nothing goes to ``/tmp/ray``, ``~/ray_results`` or ``~/.ray``).

A local Ray starts in 5-20 s here and a trial costs ~2.5 s when it starts a worker
process (torch and this package are imported), 0.5-0.8 s when it reuses one
(``bench/ray_scaling.py``). Trials reuse their worker processes (``reuse_actors``), so
only the first trial per worker pays the imports, and a trial is a whole experiment,
never one candidate: see :mod:`nas.sweep._evaluator` for evaluation inside a search.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nas.config import redact, resolve_paths
from nas.errors import ConfigError, SweepError
from nas.run._stages import atomic_write_text
from nas.sweep._config import SweepConfig, TrialSpec, expand_trials, load_sweep
from nas.sweep._tables import build_shared_tables, plan_shared_tables
from nas.sweep._trial import ERROR_FILE, RESULT_FILE, tune_trainable

__all__ = ["SweepResult", "ray_session", "run_sweep"]

TUNE_DIR = "ray_tune"
#: Unix socket paths are limited to 107 bytes and Ray puts ~62 more characters below
#: its temp dir, so a longer temp dir is reached through a short symlink.
MAX_TEMP_DIR = 40


@dataclasses.dataclass
class SweepResult:
    """What a sweep produced: one row per trial and the names of failed trials."""

    output: Path
    trials: list[TrialSpec]
    table: pd.DataFrame
    failed: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.failed


# Ray session ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _short(path: Path) -> tuple[Path, Path | None]:
    """``path`` itself when short enough for Ray's sockets, else a short symlink to it."""
    path.mkdir(parents=True, exist_ok=True)
    if len(str(path)) <= MAX_TEMP_DIR:
        return path, None
    link = Path(tempfile.mkdtemp(prefix="nasray")) / "t"
    link.symlink_to(path, target_is_directory=True)
    return link, link


def _refresh_ray_config() -> None:
    """Ray reads its settings (the auth mode) when imported; re-read them after we set them."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # another Ray version: it reads the environment at ray.init
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


RAY_LOOPBACK = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch of cluster mode: "0" keeps a local instance on the loopback interface."""


@contextlib.contextmanager
def ray_session(temp_dir: str | Path, address: str | None = None, num_cpus: int | None = None,
                num_gpus: int | None = None, dashboard: bool = False,
                log_to_driver: bool = False) -> Iterator[None]:
    """Start (or join) Ray quietly for the ``with`` block, then shut it down.

    Usage statistics are off; a local Ray keeps its session files in ``temp_dir``,
    starts no dashboard unless asked and gets a fresh authentication token in the
    environment (so nothing is written to ``~/.ray``). With ``address`` (``"auto"``,
    ``"ray://host:10001"``) the cluster's own settings apply.
    """
    private = Path(temp_dir).resolve()
    private.mkdir(parents=True, exist_ok=True)
    os.chmod(private, 0o700)  # Ray opens up its own folder (0777): keep it inside a private one
    short, link = _short(private / "ray")
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AIR_NEW_OUTPUT": "0",
           # our trials take their paths from their spec, not from the working directory
           "RAY_CHDIR_TO_TRIAL_DIR": "0"}
    if address is None:
        env["RAY_TMPDIR"] = str(short)
        # a local Ray binds its servers to 127.0.0.1 (read when Ray is first imported;
        # ``_node_ip_address`` below covers a process that imported it already)
        if RAY_LOOPBACK not in os.environ:  # the user's own setting wins
            env[RAY_LOOPBACK] = "0"
        if not any(k in os.environ for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    try:
        with _environ(env):
            import ray

            _refresh_ray_config()
            kwargs: dict[str, Any] = {"log_to_driver": log_to_driver,
                                      "logging_level": logging.WARNING}
            if address is None:
                kwargs.update(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=dashboard,
                              _temp_dir=str(short), _node_ip_address="127.0.0.1")
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise SweepError(f"cannot start or reach Ray at "
                                 f"{address or 'a new local instance'}: {first}") from None
            # A cluster is found through the user's RAY_TMPDIR (``address="auto"``); only
            # then do Tune's lock files move under the sweep's folder.
            relocate = (_environ({"RAY_TMPDIR": str(short)}) if address is not None
                        else contextlib.nullcontext())
            try:
                with relocate:
                    yield
            finally:
                ray.shutdown()
    finally:
        if link is not None:
            link.unlink(missing_ok=True)
            link.parent.rmdir()


# progress --------------------------------------------------------------------------------------
#: What Tune adds to every reported result; left out of our progress lines.
_TUNE_KEYS = {"timestamp", "done", "training_iteration", "time_this_iter_s", "time_total_s", "pid",
              "hostname", "node_ip", "time_since_restore", "iterations_since_restore", "date",
              "trial_id", "experiment_tag", "checkpoint_dir_name", "should_checkpoint"}


def _summary(metrics: dict[str, Any]) -> str:
    parts = []
    for key, value in metrics.items():
        if key in _TUNE_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts)


def _progress_callback(n_trials: int, echo: Callable[[str], None]):
    from ray import tune

    class _Progress(tune.Callback):
        """One line per trial event on the driver (Tune's own tables are off)."""

        def __init__(self) -> None:
            self.done = 0

        def __getstate__(self) -> dict[str, Any]:
            return {"done": 0}  # Tune pickles its run config; the echo function stays here

        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            echo(f"[sweep] start {trial.config['trial']['name']}")

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self.done += 1
            name = trial.config["trial"]["name"]
            metrics = trial.last_result or {}
            if "error" in metrics:
                echo(f"[sweep] {self.done}/{n_trials} {name} FAILED: {metrics['error']}")
            else:
                echo(f"[sweep] {self.done}/{n_trials} {name} done: {_summary(metrics)}")

        def on_trial_recover(self, iteration, trials, trial, **info) -> None:
            echo(f"[sweep] {trial.config['trial']['name']} failed (its worker died or it raised); "
                 f"retrying, attempt {trial.run_metadata.num_failures + 1}")

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self.done += 1
            echo(f"[sweep] {self.done}/{n_trials} {trial.config['trial']['name']} FAILED after "
                 f"{trial.run_metadata.num_failures} attempt(s); see {trial.path}/error.txt")

    return _Progress()


def _print_flushed(line: str) -> None:
    print(line, flush=True)  # progress shows as it happens, also when piped to a file


# the sweep -------------------------------------------------------------------------------------
def _check_owner(out: Path) -> None:
    """``--resume`` restores Tune state that Ray pickles: only from a folder of this user."""
    owner = out.stat().st_uid
    if hasattr(os, "getuid") and owner != os.getuid():
        raise SweepError(f"{out} belongs to another user (uid {owner}); a sweep folder is "
                         "restored with pickle, so only your own folders are resumed")


def _check_trial_list(out: Path, trials: list[TrialSpec], resume: bool) -> None:
    path = out / "trials.json"
    listed = [t.to_dict() for t in trials]
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous != json.loads(json.dumps(listed)):
            raise SweepError(f"{out} holds a sweep with other trials (the sweep or base file "
                             "changed); choose another output or delete the folder")
        if not resume and (out / TUNE_DIR).exists():
            raise SweepError(f"{out} already holds this sweep; pass --resume (resume=True) to "
                             "continue it, or choose another output")
    atomic_write_text(path, json.dumps(redact(listed), indent=1))


def _flatten(prefix: str, value: Any, row: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, inner, row)
    else:
        row[prefix] = value


def collect_results(out: Path, trials: list[TrialSpec], errors: dict[str, str] | None = None,
                    reported: dict[str, dict[str, Any]] | None = None
                    ) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per trial: its result file, else what it reported to Tune (a custom
    trainable); a trial with neither, or with an error, is a failure."""
    errors, reported = dict(errors or {}), dict(reported or {})
    rows, failed = [], {}
    for spec in trials:
        row: dict[str, Any] = {"trial": spec.name}
        row.update({f"param.{k}": json.dumps(v) if isinstance(v, (list, dict)) else v
                    for k, v in spec.overrides.items()})
        path = Path(spec.trial_dir) / RESULT_FILE
        error_path = Path(spec.trial_dir) / ERROR_FILE
        if error_path.is_file():
            errors.setdefault(spec.name, json.loads(error_path.read_text())["error"])
        if spec.name not in errors and (path.is_file() or spec.name in reported):
            row["status"] = "done"
            metrics = (json.loads(path.read_text())["metrics"] if path.is_file()
                       else reported[spec.name])
            _flatten("", {k: v for k, v in metrics.items()
                          if k != "trial" and k not in _TUNE_KEYS}, row)
        else:
            row["status"] = "failed"
            failed[spec.name] = errors.get(spec.name, "no result was written")
            row["error"] = failed[spec.name]
        row["dir"] = spec.trial_dir
        rows.append(row)
    return pd.DataFrame(rows), failed


def run_sweep(sweep: SweepConfig | str | Path, *, output: str | Path | None = None,
              address: str | None = None, resume: bool = False, max_concurrent: int | None = None,
              echo: Callable[[str], None] | None = print,
              trainable: Callable[[dict[str, Any]], None] | None = None,
              plugins: Sequence[str] = ()) -> SweepResult:
    """Run every trial of a sweep as a Ray Tune trial; returns one row per trial.

    Uses the running Ray when ``ray.is_initialized()`` (and leaves it running), else
    starts a local one (``sweep.ray``) or joins ``address`` for the sweep's duration.

    Args:
        sweep: a sweep file or a parsed :class:`SweepConfig`.
        output: the sweep directory (default: the file's ``output`` or ``runs/<name>``).
        address: Ray to join (``"auto"``, ``"ray://host:10001"``); overrides the file.
        resume: continue a sweep in ``output`` whose driver stopped: finished trials
            keep their results, the others run again and continue from their folders.
        max_concurrent: trials running at once (default: the file's, else as many as
            the resources allow).
        echo: prints one line per trial event (``None``: silent).
        trainable: replaces :func:`nas.sweep.tune_trainable` (a function of Tune's config
            ``{"trial": TrialSpec dict}``, reporting with ``ray.tune.report``); for
            wrappers around it, such as the fault-injection of the tests.
        plugins: modules or ``.py`` files (relative to the working directory) every trial
            imports besides the sweep's and the experiment's own (``nas --plugin``).

    Raises:
        ConfigError: a bad sweep file or override (before Ray starts).
        SweepError: Ray cannot start, or ``output`` holds another or a finished sweep
            without ``resume``.
    """
    cfg = sweep if isinstance(sweep, SweepConfig) else load_sweep(sweep)
    if plugins:
        extra = resolve_paths(dataclasses.replace(cfg, plugins=tuple(plugins)), Path.cwd()).plugins
        cfg = dataclasses.replace(cfg, plugins=(*extra, *cfg.plugins))
    echo = echo or (lambda line: None)
    if echo is print:
        echo = _print_flushed
    out = Path(output if output is not None else cfg.output_dir).resolve()
    trials = expand_trials(cfg, out)  # validates every trial before Ray starts
    if not trials:
        raise ConfigError("the sweep has no trials")
    trials, tables = plan_shared_tables(trials, out)  # one table per target device
    out.mkdir(parents=True, exist_ok=True)
    if resume and out.exists():
        _check_owner(out)
    _check_trial_list(out, trials, resume)
    build_shared_tables(tables, echo)
    address = address if address is not None else cfg.ray.address
    max_concurrent = max_concurrent or cfg.max_concurrent

    import ray

    running = ray.is_initialized()
    session = (contextlib.nullcontext() if running else
               ray_session(out / "ray_tmp", address, cfg.ray.num_cpus, cfg.ray.num_gpus,
                           cfg.ray.dashboard, cfg.ray.log_to_driver))
    with session:
        where = "this process's Ray" if running else (address or "a local Ray")
        cpus = ray.cluster_resources().get("CPU", 0)
        echo(f"[sweep] {cfg.name}: {len(trials)} trials (nas {trials[0].command}), "
             f"{max_concurrent or 'as many as fit'} at a time, on {where} ({cpus:g} CPUs) -> {out}")
        errors, reported = _fit(cfg, trials, out, resume, max_concurrent, echo,
                                trainable or tune_trainable)
    table, failed = collect_results(out, trials, errors, reported)
    table.to_csv(out / "sweep.csv", index=False)
    atomic_write_text(out / "sweep.json", table.to_json(orient="records", indent=1))
    done = int((table["status"] == "done").sum())
    echo(f"[sweep] {done}/{len(trials)} trials done" +
         (f", failed: {', '.join(failed)}" if failed else "") + f"; results: {out / 'sweep.csv'}")
    return SweepResult(out, trials, table, failed)


def _fit(cfg: SweepConfig, trials: list[TrialSpec], out: Path, resume: bool,
         max_concurrent: int | None, echo: Callable[[str], None],
         trainable: Callable[[dict[str, Any]], None]
         ) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    from ray import tune

    res = cfg.resources
    head = {"CPU": res.cpu, **({"GPU": res.gpu} if res.gpu else {})}
    resources = (tune.PlacementGroupFactory([head] + [{"CPU": res.cpu}] * res.evaluation_workers)
                 if res.evaluation_workers else {"cpu": res.cpu, "gpu": res.gpu})
    runnable = tune.with_resources(trainable, resources)
    path = out / TUNE_DIR
    callbacks = [_progress_callback(len(trials), echo)]
    if resume and tune.Tuner.can_restore(str(path)):
        echo(f"[sweep] resuming from {path}: finished trials keep their results")
        tuner = tune.Tuner.restore(str(path), runnable, resume_errored=True)
        # Tuner.restore takes no run config; re-attach this driver's progress lines.
        internal = getattr(tuner, "_local_tuner", None)
        if internal is not None:
            internal.get_run_config().callbacks = callbacks
    else:

        def name(trial) -> str:
            return trial.config["trial"]["name"]

        tuner = tune.Tuner(
            runnable,
            param_space={"trial": tune.grid_search([t.to_dict() for t in trials])},
            tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True,
                                        trial_name_creator=name, trial_dirname_creator=name),
            run_config=tune.RunConfig(name=TUNE_DIR, storage_path=str(out), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
                                      callbacks=callbacks))
    # Tune logs each failed attempt's traceback; our progress line points to error.txt.
    tune_log = logging.getLogger("ray.tune")
    level = tune_log.level
    tune_log.setLevel(logging.CRITICAL)
    try:
        grid = tuner.fit()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001  (Tune wraps driver errors in many types)
        raise SweepError(f"the sweep stopped: {exc}; continue it with --resume") from None
    finally:
        tune_log.setLevel(level)
    errors, reported = {}, {}
    for result in grid:
        # a trial that never started has no config; its folder is named after it
        name = result.config["trial"]["name"] if result.config else Path(result.path).name
        if result.error is not None:
            errors[name] = str(result.error).strip().splitlines()[-1][:300]
        elif result.metrics and "error" not in result.metrics:
            reported[name] = {k: v for k, v in result.metrics.items() if k != "config"}
    sys.stdout.flush()
    return errors, reported
