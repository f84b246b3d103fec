"""Searching the penalty strength with Optuna: what ``shrinkage tune`` runs.

A *study* is Optuna's: a named set of trials in a database that any number of worker
processes, on any number of machines, join by name. Each trial draws ``lam`` (log scale,
over the penalty's default grid interval) and, where they apply, ``l1_ratio`` (Elastic Net)
and the learning rate of the penalized epochs (MLPs, log scale over a tenth to ten times
the learning rate), trains that point with :class:`~.trainer.PointTrainer`
and is scored by its validation score (accuracy, or R^2), which the study maximizes. MLP
trials report the score after every epoch, so a median pruner stops those that trail the
others.

    config = TuneConfig(Settings(data="digits"), penalty="l1", trials=30, workers=2,
                        storage=sqlite_url("shrinkage-runs.db"))
    outcome = tune(config)            # outcome.best: the best finished trial

Storage: any database URL that SQLAlchemy takes. ``sqlite:///file.db`` for one machine
(the command line's default is the run store's own file); ``postgresql://user@host/db``
for many, where every worker started anywhere with the same study name and storage joins
the same study. Workers beat a heartbeat into the database; a trial whose worker
stopped beating (killed, or its machine lost) is marked failed by the next worker that
starts a trial, so the study stays usable. The study records the settings it was created
with; a worker with other settings is refused rather than mixed in.

Optuna is an optional dependency: ``pip install 'shrinkage[tune]'``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from .settings import Settings
from .study import (
    SEARCHABLE,
    TrialProgress,
    TuneConfig,
    experimental_features_on_purpose,
    hide_password,
    import_optuna,
    open_storage,
    open_study,
    run_trials,
    search_space,
    sqlite_url,
)
from .trainer import PointTrainer
from .workers import run_workers

__all__ = [
    "SEARCHABLE",
    "Outcome",
    "TrialRow",
    "TuneConfig",
    "best_settings",
    "open_study",
    "sqlite_url",
    "trial_rows",
    "tune",
]


@dataclass
class Outcome:
    """What a ``tune`` command leaves: the study's best trial and its counts.

    ``best``: ``{"number", "value", "params", "user_attrs"}`` of the best trial finished when
    the command ended (trials that other commands on the study were still running, counted as
    ``RUNNING``, may beat it: the last command to end reports the best of them all);
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


def tune(config: TuneConfig, progress: TrialProgress | None = None) -> Outcome:
    """Run ``config.trials`` trials of the study (creating it if new) in ``config.workers``
    processes, and return the study's best trial.

    With one worker the trials run in this process. With more, ``workers`` processes are
    started (spawned), each running its share from this process's dense network (handed
    over, not trained again), while this process follows their finished trials for
    ``progress``. A worker that dies (killed, out of memory) does not stop the others: its
    running trial is marked failed and the death is listed in ``Outcome.lost_workers``.
    """
    optuna = import_optuna()
    start = time.perf_counter()
    trainer = PointTrainer(config.settings, config.penalty)  # input errors before any process
    storage = open_storage(config.storage, config.heartbeat)
    study = open_study(config, 0, search_space(trainer, config), storage)
    lost: list[str] = []
    if config.workers == 1:
        ran = run_trials(study, trainer, config.trials, progress)
    else:
        ran = run_workers(config, study, storage, trainer.start, progress, lost)
    with experimental_features_on_purpose():
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
        storage=hide_password(config.storage),
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


def best_settings(config: TuneConfig, outcome: Outcome) -> Settings:
    """The settings that reproduce the best trial as a ``compare`` run: no penalty, and the
    penalty on the one-point grid of the best ``lam`` (with its ``l1_ratio`` and learning
    rate)."""
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


@dataclass(frozen=True)
class TrialRow:
    """One finished trial: its number, validation score, parameters, the features its point
    kept, the fraction of weights exactly zero and its training time."""

    trial: int
    value: float
    params: dict[str, float]
    features: int | None
    zeros: float | None
    seconds: float | None

    def columns(self) -> dict[str, Any]:
        """The columns of a table of trials, in order, with their headers."""
        return {
            "trial": self.trial,
            "value": self.value,
            **self.params,
            "features": self.features,
            "zeros": self.zeros,
            "seconds": self.seconds,
        }


def trial_rows(config: TuneConfig, limit: int = 10) -> list[TrialRow]:
    """The study's best finished trials, best first (``limit`` of them)."""
    optuna = import_optuna()
    study = optuna.load_study(
        study_name=config.study, storage=open_storage(config.storage, config.heartbeat)
    )
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    done.sort(key=lambda t: (-t.value, t.number))
    return [
        TrialRow(
            t.number,
            float(t.value),
            {k: float(v) for k, v in t.params.items()},
            t.user_attrs.get("n_nonzero"),
            t.user_attrs.get("zeros"),
            t.user_attrs.get("seconds"),
        )
        for t in done[:limit]
    ]
