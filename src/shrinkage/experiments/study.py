"""Optuna studies of single penalized points: the configuration of a ``tune`` command, the
study's storage (SQLite or PostgreSQL, with heartbeats), and the trials a worker runs.

A trial draws ``lam`` (log scale, over the penalty's default grid interval) and, where they
apply, ``l1_ratio`` and the learning rate of the penalized epochs, trains that point with
:class:`~.trainer.PointTrainer` and returns its validation score (accuracy, or R^2), which the
study maximizes; MLP trials report the score after every epoch for the pruner.
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .._validation import ArgumentError
from .settings import Settings
from .trainer import PointTrainer

__all__ = [
    "SEARCHABLE",
    "TrialProgress",
    "TuneConfig",
    "experimental_features_on_purpose",
    "hide_password",
    "import_optuna",
    "open_storage",
    "open_study",
    "run_trials",
    "search_space",
    "sqlite_url",
]

SEARCHABLE = ("lam", "l1_ratio", "learning_rate")
"""What a study may search; ``lam`` always."""
_ATTR = "shrinkage"  # the study's user attribute holding what it was created with

TrialProgress = Callable[[int, int], None]
"""``progress(finished, total)``: trials finished so far."""


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:  # pragma: no cover - exercised where optuna is absent
        raise ValueError("tuning needs Optuna: pip install 'shrinkage[tune]'") from None
    return optuna


@contextmanager
def experimental_features_on_purpose() -> Iterator[None]:
    """Heartbeats and ``fail_stale_trials`` are marked experimental in Optuna; they are what
    keeps a study usable when a worker dies, so their warnings are silenced, in this scope
    only (the caller's warning filters are restored on exit)."""
    optuna = import_optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of an SQLite file (absolute, so workers started elsewhere agree)."""
    return f"sqlite:///{os.path.abspath(path)}"


def hide_password(url: str) -> str:
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
                raise ArgumentError(name, f"must be an integer >= 1; got {value!r}")
        if self.workers > self.trials:
            raise ArgumentError(
                "workers",
                f"({self.workers}) must not exceed {{trials}} ({self.trials}): "
                "each worker runs at least one trial",
                related=("trials",),
            )
        if self.pruner not in ("median", "none"):
            raise ArgumentError("pruner", f"must be 'median' or 'none'; got {self.pruner!r}")
        applicable = self.applicable()
        if self.search is not None:
            search = tuple(self.search)
            unknown = [s for s in search if s not in SEARCHABLE]
            if unknown or "lam" not in search:
                raise ArgumentError(
                    "search",
                    f"must list lam and any of {', '.join(SEARCHABLE[1:])}; "
                    f"got {','.join(search) or 'nothing'}",
                )
            extra = [s for s in search if s not in applicable]
            if extra:
                raise ArgumentError(
                    "search",
                    f"lists {extra[0]}, which does not apply to {{penalty}} {self.penalty} "
                    f"with {{model}} {self.settings.model}; it may list {', '.join(applicable)}",
                    related=("penalty", "model"),
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


# -- storage and study --------------------------------------------------------------------
def open_storage(url: str, heartbeat: int) -> Any:
    """Optuna's RDB storage at ``url`` (heartbeats every ``heartbeat`` seconds), retried
    while another worker creates the tables."""
    optuna = import_optuna()
    from sqlalchemy.exc import DBAPIError

    given = hide_password(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 60}}
    elif url.startswith(("postgresql://", "postgres://")):  # the driver shrinkage[tune] installs
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    delay, last = 0.2, None
    for _ in range(5):  # a database error (tables being created, server starting): retried
        try:
            with experimental_features_on_purpose():
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=kwargs, heartbeat_interval=heartbeat
                )
        except (DBAPIError, optuna.exceptions.StorageInternalError) as error:
            last = error
            time.sleep(delay)
            delay *= 2
        except Exception as error:  # a malformed URL, an unknown dialect, no driver
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ArgumentError("storage", f"{given}: {message}") from None
    message = str(last).splitlines()[0] if last is not None else "unknown error"
    raise ArgumentError("storage", f"{given} cannot be opened: {message}")


def _sampler(config: TuneConfig, index: int) -> Any:
    optuna = import_optuna()
    seed = None if config.sampler_seed is None else config.sampler_seed + index
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _pruner(config: TuneConfig) -> Any:
    optuna = import_optuna()
    if config.pruner == "none" or config.settings.model != "mlp":
        return optuna.pruners.NopPruner()
    warmup = min(3, max(config.settings.path_epochs - 1, 0))
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)


def open_study(
    config: TuneConfig,
    index: int = 0,
    space: dict[str, Any] | None = None,
    storage: Any = None,
) -> Any:
    """Create the study or join it; a study created with other settings is refused.

    ``space`` (the search intervals) is recorded by the worker that creates the study;
    joining workers read it, so every worker of a study draws from the same intervals.
    ``storage``: an :func:`open_storage` to use (default: a new one on ``config.storage``).
    """
    optuna = import_optuna()
    if storage is None:
        storage = open_storage(config.storage, config.heartbeat)
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
            raise ArgumentError(
                "study",
                f"{config.study!r} was created with {key} = {flat_theirs.get(key)!r}, where "
                f"this has {value!r}: join it with the same settings, or name another study",
            )
    raise ValueError(f"study {config.study!r} was created with other settings")


def search_space(trainer: PointTrainer, config: TuneConfig) -> dict[str, Any]:
    """The intervals a trial draws from: ``lam`` over the penalty's default grid, the
    others where searched."""
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
    optuna = import_optuna()
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


def run_trials(
    study: Any, trainer: PointTrainer, n_trials: int, progress: TrialProgress | None = None
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
