"""Local worker processes of a ``tune`` command: each runs its share of the trials from the
dense network the command trained, with its share of the cores; a worker that dies is noticed
and its running trial marked failed, so the study stays usable."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
from typing import Any

from ..path import PathPoint
from .study import TrialProgress, TuneConfig, import_optuna, open_study, run_trials, search_space
from .trainer import PointTrainer

__all__ = ["run_workers"]


def _child(
    config: TuneConfig,
    index: int,
    n_trials: int,
    threads: int,
    start: PathPoint | None,
    log_level: int,
    errors: Any,
) -> None:
    """A worker process: its trials, or the input error that stopped it, sent to ``errors``
    (the command reports it)."""
    import torch

    # this process is the worker's own: its threads are its share of the cores (more threads
    # than cores makes workers wait on each other's spinning threads), and Optuna logs at
    # the level of the command that started it
    torch.set_num_threads(threads)
    import_optuna().logging.set_verbosity(log_level)
    try:
        trainer = PointTrainer(config.settings, config.penalty, start)
        run_trials(open_study(config, index, search_space(trainer, config)), trainer, n_trials)
    except ValueError as error:
        errors.put((index, str(error)))


def _shares(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


def fail_trials_of(study: Any, storage: Any, worker: str, why: str) -> list[int]:
    """Mark the running trials of a worker known to be dead as failed, through the
    ``storage`` the study was opened on; returns their numbers."""
    optuna = import_optuna()
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


def run_workers(
    config: TuneConfig,
    study: Any,
    storage: Any,
    start: PathPoint | None,
    progress: TrialProgress | None,
    lost: list[str],
) -> int:
    """Run ``config.trials`` trials in ``config.workers`` spawned processes; returns how many
    of theirs finished. Each worker that ended abnormally adds a line to ``lost``."""
    optuna = import_optuna()
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    context = multiprocessing.get_context("spawn")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // config.workers)
    log_level = logging.getLogger("optuna").getEffectiveLevel()
    errors = context.Queue()
    processes = [
        context.Process(
            target=_child,
            args=(config, i, n, threads, start, log_level, errors),
            name=f"shrinkage-tune-{i}",
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
    lost += _lost_workers(processes, errors, study, storage, host)
    done = ran()
    if progress is not None:
        progress(done, config.trials)
    return done


def _lost_workers(
    processes: list[Any], errors: Any, study: Any, storage: Any, host: str
) -> list[str]:
    """A line for each worker that ended abnormally (its trials marked failed)."""
    stopped: dict[int, str] = {}
    while not errors.empty():
        index, message = errors.get()
        stopped[index] = message
    lines = []
    for i, process in enumerate(processes):
        code = process.exitcode
        if code == 0 and i not in stopped:
            continue
        why = f"stopped: {stopped[i]}" if i in stopped else _exit_reason(code)
        failed = fail_trials_of(study, storage, f"{host}:{process.pid}", f"worker {why}")
        what = f"; its trial {', '.join(map(str, failed))} is marked failed" if failed else ""
        lines.append(f"worker {i} (pid {process.pid}) {why}{what}")
    return lines


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"
