"""Searching the penalty strength with Optuna: what ``shrinkage tune`` runs.

A *study* is Optuna's: a named set of trials in a database that any number of worker
processes, on any number of machines, join by name. Each trial draws ``lam`` (log scale,
over the penalty's default grid interval) and, where they apply, ``l1_ratio`` (Elastic Net)
and the learning rate of the penalized epochs (MLPs, log scale over a tenth to ten times
``--learning-rate``), trains that point with :class:`~shrinkage.experiment.PointTrainer`
and is scored by its validation score (accuracy, or R^2), which the study maximizes. MLP
trials report the score after every epoch, so a median pruner stops those that trail the
others.

    config = TuneConfig(Settings(data="digits"), penalty="l1", trials=30, workers=2,
                        storage=sqlite_url("shrinkage-runs.db"))
    outcome = tune(config)            # outcome.best: the best finished trial

Storage: any database URL that SQLAlchemy takes. ``sqlite:///file.db`` for one machine
(the command line's default is the run store's own file); ``postgresql://user@host/db``
for many, where every worker started anywhere with the same ``--study`` and ``--storage``
joins the same study. Workers beat a heartbeat into the database; a trial whose worker
stopped beating (killed, or its machine lost) is marked failed by the next worker that
starts a trial, so the study stays usable. The study records the settings it was created
with; a worker with other settings is refused rather than mixed in.

Optuna is an optional dependency: ``pip install 'shrinkage[tune]'``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .experiment import PointTrainer, Settings
from .path import PathPoint

__all__ = [
    "SEARCHABLE",
    "Outcome",
    "TuneConfig",
    "best_settings",
    "open_study",
    "sqlite_url",
    "trial_rows",
    "tune",
]

SEARCHABLE = ("lam", "l1_ratio", "learning_rate")
"""What a study may search; ``lam`` always."""
_ATTR = "shrinkage"  # the study's user attribute holding what it was created with

Progress = Callable[[int, int], None]
"""``progress(finished, total)``: trials of this command finished so far."""


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:  # pragma: no cover - exercised where optuna is absent
        raise ValueError("shrinkage tune needs Optuna: pip install 'shrinkage[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats and fail_stale_trials are marked experimental; they are what keeps a study
    # usable when a worker dies, so they are used on purpose
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of an SQLite file (absolute, so workers started elsewhere agree)."""
    return f"sqlite:///{os.path.abspath(path)}"


def _hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


@dataclass(frozen=True)
class TuneConfig:
    """One ``tune`` command.

    ``settings``: the data, model and training settings (its ``penalties`` are ignored);
    ``penalty``: one of the experiment penalties but "none"; ``trials``: the trials this
    command runs, split over ``workers`` local processes; ``search``: the names searched,
    from :data:`SEARCHABLE` (default: all that apply); ``pruner``: "median" or "none";
    ``heartbeat``: seconds between a running trial's heartbeats (a trial silent for twice
    that is failed); ``sampler_seed``: the TPE sampler's seed (worker ``i`` uses
    ``sampler_seed + i``; default: fresh entropy, so workers started apart draw apart).
    """

    settings: Settings
    penalty: str
    storage: str
    study: str | None = None
    trials: int = 30
    workers: int = 1
    search: tuple[str, ...] | None = None
    pruner: str = "median"
    heartbeat: int = 10
    sampler_seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("trials", "workers", "heartbeat"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name} must be an integer >= 1; got {value!r}")
        if self.workers > self.trials:
            raise ValueError(
                f"--workers ({self.workers}) must not exceed --trials ({self.trials}): "
                "each worker runs at least one trial"
            )
        if self.pruner not in ("median", "none"):
            raise ValueError(f"--pruner must be 'median' or 'none'; got {self.pruner!r}")
        applicable = self.applicable()
        if self.search is not None:
            search = tuple(self.search)
            unknown = [s for s in search if s not in SEARCHABLE]
            if unknown or "lam" not in search:
                raise ValueError(
                    f"--search must list lam and any of {', '.join(SEARCHABLE[1:])}; "
                    f"got {','.join(search) or 'nothing'}"
                )
            extra = [s for s in search if s not in applicable]
            if extra:
                raise ValueError(
                    f"--search {extra[0]} does not apply to --penalty {self.penalty} with "
                    f"--model {self.settings.model}; it may list {', '.join(applicable)}"
                )
            object.__setattr__(self, "search", search)
        if self.study is None:
            name = f"{os.path.basename(self.settings.data)}-{self.settings.model}-{self.penalty}"
            object.__setattr__(self, "study", name)

    def applicable(self) -> tuple[str, ...]:
        """What can be searched for this penalty and model."""
        names = ["lam"]
        if self.penalty == "elasticnet":
            names.append("l1_ratio")
        if self.settings.model == "mlp":
            names.append("learning_rate")
        return tuple(names)

    @property
    def searched(self) -> tuple[str, ...]:
        return self.search if self.search is not None else self.applicable()

    def identity(self) -> dict[str, Any]:
        """What every worker of one study must share (recorded in the study)."""
        settings = self.settings.to_dict()
        for key in ("penalties", "lams", "path_learning_rate", "rule", "n_lambdas", "cv"):
            settings.pop(key, None)
        return {"settings": settings, "penalty": self.penalty, "search": list(self.searched)}


@dataclass
class Outcome:
    """What a ``tune`` command leaves: the study's best trial and its counts.

    ``best``: ``{"number", "value", "params", "user_attrs"}`` of the best finished trial;
    ``counts``: trials of the whole study per state (``COMPLETE``, ``PRUNED``, ``FAIL``,
    ``RUNNING``, ...); ``ran``: the trials this command finished; ``lost_workers``: one
    line per local worker that ended abnormally (its running trial is marked failed).
    """

    study: str
    storage: str
    metric: str
    best: dict[str, Any]
    counts: dict[str, int]
    ran: int
    lost_workers: list[str] = field(default_factory=list)
    seconds: float = 0.0


# -- storage and study --------------------------------------------------------------------
def _storage(url: str, heartbeat: int) -> Any:
    """Optuna's RDB storage, retried while another worker creates the tables."""
    optuna = _optuna()
    from sqlalchemy.exc import DBAPIError

    given = _hide_password(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 60}}
    elif url.startswith(("postgresql://", "postgres://")):  # the driver shrinkage[tune] installs
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    delay, last = 0.2, None
    for _ in range(5):  # a database error (tables being created, server starting): retried
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=kwargs, heartbeat_interval=heartbeat
            )
        except (DBAPIError, optuna.exceptions.StorageInternalError) as error:
            last = error
            time.sleep(delay)
            delay *= 2
        except Exception as error:  # a malformed URL, an unknown dialect, no driver
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ValueError(f"--storage {given}: {message}") from None
    message = str(last).splitlines()[0] if last is not None else "unknown error"
    raise ValueError(f"--storage {given} cannot be opened: {message}")


def _sampler(config: TuneConfig, index: int) -> Any:
    optuna = _optuna()
    seed = None if config.sampler_seed is None else config.sampler_seed + index
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _pruner(config: TuneConfig) -> Any:
    optuna = _optuna()
    if config.pruner == "none" or config.settings.model != "mlp":
        return optuna.pruners.NopPruner()
    warmup = min(3, max(config.settings.path_epochs - 1, 0))
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)


def open_study(config: TuneConfig, index: int = 0, space: dict[str, Any] | None = None) -> Any:
    """Create the study or join it; a study created with other settings is refused.

    ``space`` (the search intervals) is recorded by the worker that creates the study;
    joining workers read it, so every worker of a study draws from the same intervals.
    """
    optuna = _optuna()
    storage = _storage(config.storage, config.heartbeat)
    study = optuna.create_study(
        storage=storage,
        study_name=config.study,
        direction="maximize",
        sampler=_sampler(config, index),
        pruner=_pruner(config),
        load_if_exists=True,
    )
    mine = config.identity()
    recorded = study.user_attrs.get(_ATTR)
    if recorded is None:
        if space is None:
            raise ValueError(f"study {config.study!r} records no search space yet")
        study.set_user_attr(_ATTR, {**mine, "space": space})
        recorded = study.user_attrs[_ATTR]
    _check_same(config, mine, recorded)
    return study


def _check_same(config: TuneConfig, mine: dict[str, Any], recorded: dict[str, Any]) -> None:
    theirs = {k: recorded.get(k) for k in mine}
    if theirs == mine:
        return
    flat_mine = {**mine["settings"], "penalty": mine["penalty"], "search": mine["search"]}
    flat_theirs = {
        **(theirs.get("settings") or {}),
        "penalty": theirs.get("penalty"),
        "search": theirs.get("search"),
    }
    for key, value in flat_mine.items():
        if flat_theirs.get(key) != value:
            raise ValueError(
                f"study {config.study!r} was created with {key} = {flat_theirs.get(key)!r}; "
                f"this command has {value!r}. Join it with the same settings, or name "
                "another study with --study"
            )
    raise ValueError(f"study {config.study!r} was created with other settings")


def _space(trainer: PointTrainer, config: TuneConfig) -> dict[str, Any]:
    lo, hi = trainer.lam_range
    space: dict[str, Any] = {"lam": [lo, hi]}
    if "l1_ratio" in config.searched:
        space["l1_ratio"] = [0.05, 1.0]
    if "learning_rate" in config.searched:
        rate = config.settings.learning_rate
        space["learning_rate"] = [rate / 10, rate * 10]
    return space


# -- one worker ---------------------------------------------------------------------------
def _objective(trainer: PointTrainer, space: dict[str, Any]) -> Callable[[Any], float]:
    optuna = _optuna()
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: Any) -> float:
        trial.set_user_attr("worker", worker)
        lam = trial.suggest_float("lam", *space["lam"], log=True)
        l1_ratio = learning_rate = None
        if "l1_ratio" in space:
            l1_ratio = trial.suggest_float("l1_ratio", *space["l1_ratio"])
        if "learning_rate" in space:
            learning_rate = trial.suggest_float("learning_rate", *space["learning_rate"], log=True)

        def report(epoch: int, score: float) -> None:
            trial.report(score, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation score {score:.4g} after epoch {epoch + 1}")

        result = trainer.fit(lam, l1_ratio=l1_ratio, learning_rate=learning_rate, report=report)
        for key in ("val_loss", "n_nonzero", "zeros", "epochs", "seconds"):
            trial.set_user_attr(key, getattr(result, key))
        if not math.isfinite(result.val_score):
            raise FloatingPointError(f"the validation score is {result.val_score}")
        return result.val_score

    return objective


def _work(
    study: Any, trainer: PointTrainer, n_trials: int, progress: Progress | None = None
) -> int:
    """Run ``n_trials`` trials of the open ``study`` in this process; returns how many
    finished."""
    space = study.user_attrs[_ATTR]["space"]
    done = 0

    def count(study: Any, trial: Any) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, n_trials)

    study.optimize(
        _objective(trainer, space),
        n_trials=n_trials,
        catch=(FloatingPointError,),
        callbacks=[count],
    )
    return done


def _child(
    config: TuneConfig, index: int, n_trials: int, threads: int, start: PathPoint | None
) -> None:
    import sys

    import torch

    # the cores are shared by the workers: more threads than cores makes them wait on each
    # other's spinning threads (tens of times slower on 2 cores)
    torch.set_num_threads(threads)
    try:
        trainer = PointTrainer(config.settings, config.penalty, start)
        _work(open_study(config, index, _space(trainer, config)), trainer, n_trials)
    except ValueError as error:
        print(f"shrinkage: error: worker {index}: {error}", file=sys.stderr)
        sys.exit(2)


# -- the command --------------------------------------------------------------------------
def _shares(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


def _fail_trials_of(study: Any, worker: str, why: str) -> list[int]:
    """Mark the running trials of a worker known to be dead as failed; their numbers."""
    optuna = _optuna()
    storage = study._storage
    study_id = storage.get_study_id_from_name(study.study_name)
    numbers = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get("worker") != worker:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "failed_because", why)
        storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
        numbers.append(trial.number)
    return numbers


def tune(config: TuneConfig, progress: Progress | None = None) -> Outcome:
    """Run ``config.trials`` trials of the study (creating it if new) in ``config.workers``
    processes, and return the study's best trial.

    With one worker the trials run in this process. With more, ``workers`` processes are
    started (spawned), each running its share from this process's dense network (handed
    over, not trained again), while this process follows their finished trials for
    ``progress``. A worker that dies (killed, out of memory) does not stop the others: its
    running trial is marked failed and the death is listed in ``Outcome.lost_workers``.
    """
    optuna = _optuna()
    start = time.perf_counter()
    trainer = PointTrainer(config.settings, config.penalty)  # input errors before any process
    study = open_study(config, 0, _space(trainer, config))
    lost: list[str] = []
    if config.workers == 1:
        ran = _work(study, trainer, config.trials, progress)
    else:
        ran = _run_workers(config, study, trainer.start, progress, lost)
    optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ValueError(
            f"no trial of study {config.study!r} finished ({counts}); see the errors above"
        )
    best = max(complete, key=lambda t: (t.value, -t.number))
    return Outcome(
        study=str(config.study),
        storage=_hide_password(config.storage),
        metric="accuracy" if trainer.task == "classification" else "r2",
        best={
            "number": best.number,
            "value": best.value,
            "params": dict(best.params),
            "user_attrs": dict(best.user_attrs),
        },
        counts=counts,
        ran=ran,
        lost_workers=lost,
        seconds=time.perf_counter() - start,
    )


def _run_workers(
    config: TuneConfig,
    study: Any,
    start: PathPoint | None,
    progress: Progress | None,
    lost: list[str],
) -> int:
    optuna = _optuna()
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    context = multiprocessing.get_context("spawn")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // config.workers)
    processes = [
        context.Process(
            target=_child, args=(config, i, n, threads, start), name=f"shrinkage-tune-{i}"
        )
        for i, n in enumerate(_shares(config.trials, config.workers))
    ]
    for process in processes:
        process.start()
    host = socket.gethostname()
    workers = {f"{host}:{process.pid}" for process in processes}

    def ran() -> int:  # the trials these workers finished (others may share the study)
        trials = study.get_trials(deepcopy=False, states=finished)
        return sum(t.user_attrs.get("worker") in workers for t in trials)

    try:
        while any(p.is_alive() for p in processes):
            if progress is not None:
                progress(ran(), config.trials)
            for process in processes:
                process.join(timeout=0.5 / len(processes))
    except BaseException:
        for process in processes:
            process.terminate()
        raise
    for i, process in enumerate(processes):
        code = process.exitcode
        if code == 0:
            continue
        why = _exit_reason(code)
        failed = _fail_trials_of(study, f"{host}:{process.pid}", f"worker {why}")
        what = f"; its trial {', '.join(map(str, failed))} is marked failed" if failed else ""
        lost.append(f"worker {i} (pid {process.pid}) {why}{what}")
    done = ran()
    if progress is not None:
        progress(done, config.trials)
    return done


def _exit_reason(code: int | None) -> str:
    import signal

    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def best_settings(config: TuneConfig, outcome: Outcome) -> Settings:
    """The settings that reproduce the best trial as a ``compare`` run: no penalty, and the
    penalty on the one-point grid of the best ``lam`` (with its ``l1_ratio`` and learning
    rate)."""
    from dataclasses import replace

    params = outcome.best["params"]
    changes: dict[str, Any] = {
        "penalties": ("none", config.penalty),
        "lams": (float(params["lam"]),),
        "cv": None,
    }
    if "l1_ratio" in params:
        changes["l1_ratio"] = float(params["l1_ratio"])
    if "learning_rate" in params:
        changes["path_learning_rate"] = float(params["learning_rate"])
    return replace(config.settings, **changes)


def trial_rows(config: TuneConfig, limit: int = 10) -> list[dict[str, Any]]:
    """The study's best finished trials, best first (``limit`` of them), as table rows."""
    optuna = _optuna()
    study = optuna.load_study(
        study_name=config.study, storage=_storage(config.storage, config.heartbeat)
    )
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    done.sort(key=lambda t: (-t.value, t.number))
    return [
        {
            "trial": t.number,
            "value": t.value,
            **{k: float(v) for k, v in t.params.items()},
            "features": t.user_attrs.get("n_nonzero"),
            "zeros": t.user_attrs.get("zeros"),
            "seconds": t.user_attrs.get("seconds"),
        }
        for t in done[:limit]
    ]
