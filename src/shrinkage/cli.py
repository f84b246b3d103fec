"""The ``shrinkage`` command: parse, call the library, render.

    shrinkage compare --data digits                       # no penalty vs L1, L2, Elastic Net
    shrinkage compare --data houses.csv --target price --model linear --cv 5 --rule 1se
    shrinkage path --data diabetes --penalty l1 --model linear
    shrinkage select --data table.csv --target label      # rank and keep features
    shrinkage tune --data digits --penalty l1 --trials 30 --workers 2   # Optuna search
    shrinkage compact model.pt                            # drop dead neurons and channels
    shrinkage runs                                        # what the store holds
    shrinkage report RUN_ID                               # render a stored run again

Runs live in the store (``--store``, ``$SHRINKAGE_STORE`` or ``./shrinkage-runs.db``);
``--resume RUN_ID`` continues an interrupted run. Exit status: 0 on success, 2 on bad input
(one line on stderr, no traceback), 1 when a ``tune`` worker was lost (the rest is
reported), 130 when interrupted. The command needs its extra: ``pip install 'shrinkage[cli]'``
(matplotlib for the reports, rich for the tables and progress bars).

The library names its arguments as Python does (``hidden``); this module renders its errors
with the options of the command that was typed (``--hidden``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._validation import ArgumentError

__all__ = ["main"]

EXTRA = "pip install 'shrinkage[cli]'"
_NEEDS = ("matplotlib", "rich")
_LIBRARY_NAMES = {"path": "store", "penalties": "penalty"}
"""Library argument -> this command's option, where the two differ (``Store(path)`` is
``--store``; a one-penalty command's ``--penalty`` is a run's ``penalties``)."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, with one-line errors, that remembers how it spells each argument
    (``spelled[dest]``: its last option string, or a positional's metavar) and its
    sub-commands' parsers (``commands``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.spelled: dict[str, str] = {}
        self.commands: dict[str, _Parser] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.spelled[action.dest] = (
            action.option_strings[-1] if action.option_strings else str(action.metavar)
        )
        return action

    def error(self, message: str) -> Any:  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"shrinkage: error: {message}\n")


def _experiment_options(p: argparse.ArgumentParser, *, many: bool) -> None:
    from .experiments import BUNDLED, MODELS, PENALTIES, Settings

    p.add_argument("--data", help=f"{', '.join(BUNDLED)}, or a CSV file")
    p.add_argument("--target", help="the target column of a CSV file")
    p.add_argument("--model", choices=MODELS, default="mlp")
    if many:
        p.add_argument(
            "--penalties",
            default="none,l1,l2,elasticnet",
            help=f"comma-separated, from {','.join(PENALTIES)}",
        )
    else:
        p.add_argument("--penalty", default="l1", help=f"one of {','.join(PENALTIES[1:])}")
    p.add_argument(
        "--cv", type=int, default=None, help="K-fold cross-validation (default: one split)"
    )
    p.add_argument("--rule", choices=("min", "1se"), default="min")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-lambdas", type=int, default=Settings.n_lambdas)
    p.add_argument(
        "--hidden",
        help="MLP hidden widths, or CNN block widths, comma-separated (default: 256,256 for "
        "an MLP, 16,32 for the CNN)",
    )
    p.add_argument("--epochs", type=int, default=Settings.epochs, help="dense training epochs")
    p.add_argument("--path-epochs", type=int, default=Settings.path_epochs, help="epochs per lam")
    p.add_argument("--learning-rate", type=float, default=Settings.learning_rate)
    p.add_argument("--l1-ratio", type=float, default=Settings.l1_ratio)
    p.add_argument("--path-learning-rate", type=float, help="learning rate of the penalized epochs")
    p.add_argument("--lams", help="the lam grid, comma-separated (default: from lam_max)")
    p.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run")
    p.add_argument("--report-dir", help="where to write the report (default: reports/RUN_ID)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store", help="the run store (default: $SHRINKAGE_STORE or ./shrinkage-runs.db)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def build_parser() -> _Parser:
    parser = _Parser(prog="shrinkage", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    compare = sub.add_parser("compare", help="every penalty side by side, lam chosen on validation")
    _experiment_options(compare, many=True)
    path = sub.add_parser("path", help="one penalty over its lam grid")
    _experiment_options(path, many=False)
    select = sub.add_parser("select", help="feature selection; writes the selected columns")
    _experiment_options(select, many=False)
    select.set_defaults(penalty=None, rule="1se")
    select.add_argument("--out", help="CSV to write the selected columns to")
    tune = sub.add_parser("tune", help="search lam (and l1_ratio, learning rate) with Optuna")
    _experiment_options(tune, many=False)
    tune.add_argument("--trials", type=int, default=30, help="trials this command runs")
    tune.add_argument("--workers", type=int, default=1, help="local worker processes")
    tune.add_argument("--study", help="the study's name (default: DATA-MODEL-PENALTY)")
    tune.add_argument(
        "--storage",
        help="a database URL, e.g. postgresql://user@host/db (default: the run store's file)",
    )
    tune.add_argument(
        "--search", help="what to search: lam and any of l1_ratio,learning_rate (default: all)"
    )
    tune.add_argument("--pruner", choices=("median", "none"), default="median")
    tune.add_argument(
        "--heartbeat", type=int, default=10, help="seconds between a trial's heartbeats"
    )
    tune.add_argument("--sampler-seed", type=int, help="the TPE sampler's seed")
    compact = sub.add_parser(
        "compact", help="remove dead neurons and channels from a save_sparse model file"
    )
    compact.add_argument("model_file", help="a model saved with shrinkage.save_sparse")
    compact.add_argument("--out", help="where to write the compact model (default: *-compact.pt)")
    compact.add_argument(
        "--input-shape", help="one sample's shape, e.g. 64 or 1,8,8 (default: from the file)"
    )
    runs = sub.add_parser("runs", help="list the stored runs")
    report = sub.add_parser("report", help="render a stored run's report again")
    report.add_argument("run_id", metavar="RUN_ID")
    report.add_argument("--report-dir")
    for name, p in (("compare", compare), ("path", path), ("select", select), ("tune", tune),
                    ("compact", compact), ("runs", runs), ("report", report)):  # fmt: skip
        _common(p)
        parser.commands[name] = p
    return parser


def _option_names(parser: _Parser, command: str) -> Callable[[str], str]:
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
    from .experiments import Settings

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
    from .experiments import PENALTIES

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
    from .experiments import run_experiment

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


def _report(store: Any, run_id: str, out: str | None) -> Path:
    from .experiments.report import load_run, render

    return render(load_run(store, run_id), out or Path("reports") / run_id)


def _compare(args: argparse.Namespace, store: Any) -> None:
    run_id = _run(
        args, store, [p.strip() for p in args.penalties.split(",") if p.strip()], "compare"
    )
    rows = [row.columns() for row in store.results(run_id)]
    html = _report(store, run_id, args.report_dir)
    payload = {"run": run_id, "report": str(html), "rows": rows, "footer": f"report: {html}"}
    _emit(args, payload, rows, f"run {run_id}")


def _path(args: argparse.Namespace, store: Any) -> None:
    from .experiments.report import load_run
    from .experiments.results import zero_fraction

    run_id = _run(args, store, [_one_penalty(args)], "path")
    view = load_run(store, run_id)
    name = view.rows[0].penalty
    rows = [
        {
            "lam": p.lam, "train loss": p.train_loss, "val loss": p.val_loss,
            "val score": p.val_score, "features": p.n_nonzero, "zeros": zero_fraction(p),
            "chosen": "<-" if p.lam == view.chosen[name].lam else "",
        }
        for p in view.paths[name][0]
    ]  # fmt: skip
    html = _report(store, run_id, args.report_dir)
    payload = {"run": run_id, "report": str(html), "points": rows, "footer": f"report: {html}"}
    _emit(args, payload, rows, f"{name} path, run {run_id}")


def _select(args: argparse.Namespace, store: Any) -> None:
    from .experiments.data import write_selected
    from .experiments.report import importances, load_run

    penalty = args.penalty or ("group_inputs" if args.model == "mlp" else "l1")
    args.penalty = penalty
    run_id = _run(args, store, [_one_penalty(args)], "select")
    view = load_run(store, run_id)
    name = view.rows[0].penalty
    scores, names = importances(view, name), view.feature_names
    selected = list(view.chosen[name].selected)
    ranking = [
        {"feature": names[j], "importance": float(scores[j]), "selected": j in selected}
        for j in sorted(range(len(names)), key=lambda j: -scores[j])
    ]
    settings = view.settings
    out = Path(args.out or f"{Path(settings.data).stem}-selected.csv")
    write_selected(
        settings.data, settings.target, [names[j] for j in selected], out, seed=settings.seed
    )
    footer = f"{len(selected)} of {len(names)} features selected; written to {out}"
    payload = {"run": run_id, "out": str(out), "features": ranking, "footer": footer}
    _emit(args, payload, ranking, f"features by importance ({name}), run {run_id}")


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
    html = _report(store, args.run_id, args.report_dir)
    print(json.dumps({"run": args.run_id, "report": str(html)}) if args.json else f"report: {html}")


def _compact(args: argparse.Namespace) -> None:
    from .structured import compact_file

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
        "units_kept": {str(k): list(v) for k, v in report.kept.items()},
        "footer": footer,
    }
    _emit(args, payload, [], "")


def _tune(args: argparse.Namespace, store: Any) -> int:
    from .experiments import run_experiment
    from .experiments.tune import TuneConfig, best_settings, sqlite_url, trial_rows, tune

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
    html = _report(store, run_id, args.report_dir)
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


_COMMANDS: dict[str, Callable[[argparse.Namespace, Any], int | None]] = {  # need the store
    "compare": _compare,
    "path": _path,
    "select": _select,
    "tune": _tune,
    "runs": _runs,
    "report": _render,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    missing = [name for name in _NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        print(f"shrinkage: the command line needs {', '.join(missing)}: {EXTRA}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "compact":
            _compact(args)
            return 0
        from .experiments import Store

        with Store(args.store) as store:
            return _COMMANDS[args.command](args, store) or 0
    except ArgumentError as error:
        message = error.render(_option_names(parser, args.command))
        print(f"shrinkage: error: {message.splitlines()[0]}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"shrinkage: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "shrinkage: interrupted (finished points and trials are stored: use --resume, or run "
            "tune again with the same --study)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
