"""What each subcommand does: parse its options into the library's arguments, call the
library, render the result as a table (or ``--json``) and a report."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._validation import ArgumentError
from .parser import Parser

__all__ = ["COMMANDS", "compact", "option_names"]

_LIBRARY_NAMES = {"path": "store", "penalties": "penalty"}
"""Library argument -> this command's option, where the two differ (``Store(path)`` is
``--store``; a one-penalty command's ``--penalty`` is a run's ``penalties``)."""


def option_names(parser: Parser, command: str) -> Callable[[str], str]:
    """How ``command`` spells a library argument: its option (``--hidden``), or the
    metavar of a positional (``RUN_ID``)."""
    options = parser.commands[command].spelled

    def name(argument: str) -> str:
        dest = argument if argument in options else _LIBRARY_NAMES.get(argument, argument)
        return options.get(dest, "--" + argument.replace("_", "-"))

    return name


def _integers(option: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ArgumentError(option, f"must be comma-separated integers; got {text!r}") from None


def _settings(args: argparse.Namespace, penalties: Sequence[str]) -> Any:
    from ..experiments import Settings

    if args.data is None:
        raise ArgumentError("data", "is required (a bundled dataset name or a CSV file)")
    lams = None
    if args.lams:
        try:
            lams = tuple(float(v) for v in args.lams.split(","))
        except ValueError:
            raise ArgumentError(
                "lams", f"must be comma-separated numbers; got {args.lams!r}"
            ) from None
    return Settings(
        data=args.data,
        target=args.target,
        model=args.model,
        penalties=tuple(penalties),
        cv=args.cv,
        rule=args.rule,
        seed=args.seed,
        n_lambdas=args.n_lambdas,
        hidden=_integers("hidden", args.hidden) if args.hidden is not None else None,
        epochs=args.epochs,
        path_epochs=args.path_epochs,
        learning_rate=args.learning_rate,
        l1_ratio=args.l1_ratio,
        lams=lams,
        path_learning_rate=args.path_learning_rate,
    )


def _one_penalty(args: argparse.Namespace) -> str:
    """``--penalty``, checked before the settings (which speak of a list of penalties)."""
    from ..experiments import PENALTIES

    if args.penalty not in PENALTIES[1:]:
        raise ArgumentError(
            "penalty", f"must be one of {', '.join(PENALTIES[1:])}; got {args.penalty!r}"
        )
    return str(args.penalty)


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if quiet:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bars: dict[str, Any] = {}
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as progress:

        def update(task: str, done: int, total: int) -> None:
            if task not in bars:
                bars[task] = progress.add_task(task, total=total)
            progress.update(bars[task], completed=done, total=total)

        yield update


def _print_table(rows: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for key in rows[0]:
        table.add_column(key, justify="left" if key in ("penalty", "feature") else "right")
    for row in rows:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def _emit(
    args: argparse.Namespace, payload: dict[str, Any], rows: list[dict[str, Any]], title: str
) -> None:
    """``--json``: ``payload`` as it is; otherwise the table ``rows`` and ``payload``'s
    ``"footer"``."""
    footer = payload.pop("footer")
    if args.json:
        print(json.dumps(payload, indent=2))
        return
    if rows:
        _print_table(rows, title)
    print(footer)


def _run(args: argparse.Namespace, store: Any, penalties: Sequence[str], command: str) -> str:
    from ..experiments import run_experiment

    settings = None if args.resume else _settings(args, penalties)
    if args.resume and args.data is not None:
        print(
            "shrinkage: --resume continues the stored run with its own settings; "
            "--data and the other run options are ignored",
            file=sys.stderr,
        )
    with _progress(args.quiet) as progress:

        def announce(run_id: str) -> None:
            print(f"run {run_id} (resume with --resume {run_id})", file=sys.stderr, flush=True)

        return run_experiment(
            settings, store, command=command, resume=args.resume, progress=progress,
            on_run=announce,
        )  # fmt: skip


def _view(store: Any, run_id: str) -> Any:
    """The stored run, as its report reads it (:func:`~..experiments.report.load_run`)."""
    from ..experiments.report import load_run

    return load_run(store, run_id)


def _report(view: Any, out: str | None) -> Path:
    """Render the run's report; print a note for each lam chosen at an end of its grid."""
    from ..experiments.report import edge_notes, render

    for note in edge_notes(view):
        print(f"shrinkage: note: {note}", file=sys.stderr)
    return render(view, out or Path("reports") / view.info.id)


def _compare(args: argparse.Namespace, store: Any) -> None:
    run_id = _run(
        args, store, [p.strip() for p in args.penalties.split(",") if p.strip()], "compare"
    )
    rows = [row.columns() for row in store.results(run_id)]
    html = _report(_view(store, run_id), args.report_dir)
    payload = {"run": run_id, "report": str(html), "rows": rows, "footer": f"report: {html}"}
    _emit(args, payload, rows, f"run {run_id}")


def _path(args: argparse.Namespace, store: Any) -> None:
    from ..experiments.results import zero_fraction

    run_id = _run(args, store, [_one_penalty(args)], "path")
    view = _view(store, run_id)
    name = view.rows[0].penalty
    rows = [
        {
            "lam": p.lam, "train loss": p.train_loss, "val loss": p.val_loss,
            "val score": p.val_score, "features": p.n_nonzero, "zeros": zero_fraction(p),
            "chosen": "<-" if p.lam == view.chosen[name].lam else "",
        }
        for p in view.paths[name][0]
    ]  # fmt: skip
    html = _report(view, args.report_dir)
    payload = {"run": run_id, "report": str(html), "points": rows, "footer": f"report: {html}"}
    _emit(args, payload, rows, f"{name} path, run {run_id}")


def _select(args: argparse.Namespace, store: Any) -> None:
    from ..experiments.data import write_selected

    args.penalty = args.penalty or ("group_inputs" if args.model == "mlp" else "l1")
    run_id = _run(args, store, [_one_penalty(args)], "select")
    view = _view(store, run_id)
    name = view.rows[0].penalty
    row, names = view.row(name), view.feature_names
    ranking = _ranking(view, name)
    html = _report(view, args.report_dir)
    out = Path(args.out) if args.out else html.parent / "selected.csv"
    kept = [r["feature"] for r in ranking if r["selected"]]
    write_selected(view.settings.data, view.settings.target, kept, out, seed=view.settings.seed)
    footer = (
        f"{len(kept)} of {len(names)} features selected by {name} at lam {row.lam:.4g} "
        f"(rule {view.settings.rule}); test {row.metric} {row.test:.4f} (train {row.train:.4f})\n"
        f"selected columns written to {out}; report: {html}"
    )
    payload = {
        "run": run_id, "penalty": name, "lam": row.lam, "metric": row.metric,
        "test": row.test, "train": row.train, "out": str(out), "report": str(html),
        "features": ranking, "footer": footer,
    }  # fmt: skip
    _emit(args, payload, ranking, f"features, selected first ({name}), run {run_id}")


def _ranking(view: Any, name: str) -> list[dict[str, Any]]:
    """The features, the selected ones first, each ordered by the strongest lam from which it
    stays in the model down to the chosen lam (the features that left before it: by the
    strongest lam at which they were in it)."""
    from ..experiments.report import importances, staying_from

    chosen = view.chosen[name]
    selected = set(chosen.selected)
    stays, ever = staying_from(view, name), importances(view, name)
    names = view.feature_names
    order = sorted(range(len(names)), key=lambda j: (j not in selected, -stays[j], -ever[j]))
    return [
        {
            "feature": names[j],
            "selected": j in selected,
            "in model from lam": float(stays[j] if j in selected else ever[j]),
        }
        for j in order
    ]


def _runs(args: argparse.Namespace, store: Any) -> None:
    import time

    rows = [
        {
            "run": r.id, "command": r.command, "data": r.config.get("data"),
            "model": r.config.get("model"), "penalties": ",".join(r.config.get("penalties", [])),
            "status": r.status,
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)),
            "points": store.count_points(r.id),
        }
        for r in store.runs()
    ]  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        _print_table(rows, f"runs in {store.path}")
    else:
        print(f"no runs in {store.path}")


def _render(args: argparse.Namespace, store: Any) -> None:
    html = _report(_view(store, args.run_id), args.report_dir)
    print(json.dumps({"run": args.run_id, "report": str(html)}) if args.json else f"report: {html}")


def compact(args: argparse.Namespace) -> None:
    from ..structured import compact_file

    shape = _integers("input_shape", args.input_shape) if args.input_shape else None
    done = compact_file(Path(args.model_file), out=args.out and Path(args.out), input_shape=shape)
    report = done.report
    kept = ", ".join(f"layer {k}: {a}/{b}" for k, (a, b) in report.kept.items())
    footer = (
        f"parameters {report.parameters_before:,} -> {report.parameters_after:,}; MACs per "
        f"sample {report.macs_before:,} -> {report.macs_after:,}; file "
        f"{done.bytes_before:,} -> {done.bytes_after:,} bytes; units kept per layer {kept}\n"
        f"written to {done.out}"
    )
    payload = {
        "out": str(done.out),
        "parameters_before": report.parameters_before,
        "parameters_after": report.parameters_after,
        "macs_before": report.macs_before,
        "macs_after": report.macs_after,
        "bytes_before": done.bytes_before,
        "bytes_after": done.bytes_after,
        "units_kept": {k: list(v) for k, v in report.kept.items()},
        "footer": footer,
    }
    _emit(args, payload, [], "")


def _tune(args: argparse.Namespace, store: Any) -> int:
    from ..experiments import run_experiment
    from ..experiments.tune import TuneConfig, best_settings, sqlite_url, trial_rows, tune

    for option in ("cv", "resume", "lams", "path_learning_rate"):
        if getattr(args, option) is not None:
            raise ArgumentError(option, "does not apply to tune (trials search the lam grid)")
    penalty = _one_penalty(args)
    config = TuneConfig(
        _settings(args, [penalty]), penalty, args.storage or sqlite_url(store.path),
        study=args.study, trials=args.trials, workers=args.workers,
        search=None if args.search is None else tuple(args.search.split(",")),
        pruner=args.pruner, heartbeat=args.heartbeat, sampler_seed=args.sampler_seed,
    )  # fmt: skip
    import optuna  # the command's own output: Optuna's per-trial lines would break the bars

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with _progress(args.quiet) as bar:

        def progress(done: int, total: int) -> None:
            if bar is not None:
                bar(f"study {config.study}", done, total)

        outcome = tune(config, progress)
    for line in outcome.lost_workers:
        print(f"shrinkage: warning: {line}; the study stays usable", file=sys.stderr)
    best = outcome.best
    meta = {"study": outcome.study, "storage": outcome.storage, "trial": best["number"]}
    run_id = run_experiment(best_settings(config, outcome), store, command="tune", meta=meta)
    html = _report(_view(store, run_id), args.report_dir)
    rows = [row.columns() for row in store.results(run_id)]
    trials = [row.columns() for row in trial_rows(config)]
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(outcome.counts.items()))
    params = ", ".join(f"{k} = {v:.4g}" for k, v in best["params"].items())
    so_far = " so far" if "RUNNING" in outcome.counts else ""  # other workers' trials go on
    if args.json:
        print(json.dumps({
            "study": outcome.study, "storage": outcome.storage, "counts": outcome.counts,
            "ran": outcome.ran, "lost_workers": outcome.lost_workers,
            "seconds": outcome.seconds, "best": best, "run": run_id, "report": str(html),
            "rows": rows, "trials": trials,
        }, indent=2))  # fmt: skip
    else:
        _print_table(trials, f"best trials of study {outcome.study}")
        _print_table(rows, f"run {run_id}")
        print(
            f"study {outcome.study} ({counts}); best{so_far}: trial {best['number']}, validation "
            f"{outcome.metric} {best['value']:.4f} at {params}\n"
            f"the best trial retrained as run {run_id}; report: {html}"
        )
    return 1 if outcome.lost_workers else 0


COMMANDS: dict[str, Callable[[argparse.Namespace, Any], int | None]] = {  # need the store
    "compare": _compare,
    "path": _path,
    "select": _select,
    "tune": _tune,
    "runs": _runs,
    "report": _render,
}
