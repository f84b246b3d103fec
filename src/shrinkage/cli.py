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
reported), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .data import BUNDLED
from .experiment import MODELS, PENALTIES, Settings, result_table, run_experiment
from .store import Store

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"shrinkage: error: {message}\n")


def _experiment_options(p: argparse.ArgumentParser, *, many: bool) -> None:
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
    p.add_argument("--hidden", default="256,256", help="MLP hidden widths, comma-separated")
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


def build_parser() -> argparse.ArgumentParser:
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
    report.add_argument("run_id")
    report.add_argument("--report-dir")
    for p in (compare, path, select, tune, compact, runs, report):
        _common(p)
    return parser


def _integers(option: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{option} must be comma-separated integers; got {text!r}") from None


def _settings(args: argparse.Namespace, penalties: Sequence[str]) -> Settings:
    if args.data is None:
        raise ValueError("--data is required (a bundled dataset name or a CSV file)")
    hidden = _integers("--hidden", args.hidden)
    lams = None
    if args.lams:
        try:
            lams = tuple(float(v) for v in args.lams.split(","))
        except ValueError:
            raise ValueError(f"--lams must be comma-separated numbers; got {args.lams!r}") from None
    return Settings(
        data=args.data,
        target=args.target,
        model=args.model,
        penalties=tuple(penalties),
        cv=args.cv,
        rule=args.rule,
        seed=args.seed,
        n_lambdas=args.n_lambdas,
        hidden=hidden,
        epochs=args.epochs,
        path_epochs=args.path_epochs,
        learning_rate=args.learning_rate,
        l1_ratio=args.l1_ratio,
        lams=lams,
        path_learning_rate=args.path_learning_rate,
    )


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


def _run(args: argparse.Namespace, store: Store, penalties: Sequence[str], command: str) -> str:
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
            settings,
            store,
            command=command,
            resume=args.resume,
            progress=progress,
            on_run=announce,
        )


def _report(store: Store, run_id: str, out: str | None) -> Path:
    from .report import load_run, render

    return render(load_run(store, run_id), out or Path("reports") / run_id)


def _emit(
    args: argparse.Namespace,
    payload: dict[str, Any],
    key: str,
    rows: list[dict[str, Any]],
    title: str,
    footer: str,
) -> None:
    """``--json``: ``payload`` with ``rows`` under ``key``; otherwise a table and a line."""
    if args.json:
        print(json.dumps({**payload, key: rows}, indent=2))
        return
    _print_table(rows, title)
    print(footer)


def _compare(args: argparse.Namespace, store: Store) -> None:
    run_id = _run(
        args, store, [p.strip() for p in args.penalties.split(",") if p.strip()], "compare"
    )
    rows = result_table(store.results(run_id))
    html = _report(store, run_id, args.report_dir)
    _emit(
        args, {"run": run_id, "report": str(html)}, "rows", rows, f"run {run_id}", f"report: {html}"
    )


def _one_penalty(args: argparse.Namespace) -> str:
    """``--penalty``, checked before the settings (which speak of ``--penalties``)."""
    if args.penalty not in PENALTIES[1:]:
        raise ValueError(
            f"--penalty must be one of {', '.join(PENALTIES[1:])}; got {args.penalty!r}"
        )
    return str(args.penalty)


def _path(args: argparse.Namespace, store: Store) -> None:
    run_id = _run(args, store, [_one_penalty(args)], "path")
    from .report import load_run, zero_fraction

    view = load_run(store, run_id)
    name = view.rows[0]["penalty"]
    rows = [
        {
            "lam": p.lam,
            "train loss": p.train_loss,
            "val loss": p.val_loss,
            "val score": p.val_score,
            "features": p.n_nonzero,
            "zeros": zero_fraction(view, p),
            "chosen": "<-" if p.lam == view.chosen[name].lam else "",
        }
        for p in view.paths[name][0]
    ]
    html = _report(store, run_id, args.report_dir)
    title = f"{name} path, run {run_id}"
    _emit(args, {"run": run_id, "report": str(html)}, "points", rows, title, f"report: {html}")


def _select(args: argparse.Namespace, store: Store) -> None:
    penalty = args.penalty or ("group_inputs" if args.model == "mlp" else "l1")
    run_id = _run(args, store, [penalty], "select")
    from .report import importances, load_run

    view = load_run(store, run_id)
    name = view.rows[0]["penalty"]
    scores = importances(view, name)
    names = view.feature_names
    selected = list(view.chosen[name].selected)
    ranking = [
        {"feature": names[j], "importance": float(scores[j]), "selected": j in selected}
        for j in sorted(range(len(names)), key=lambda j: -scores[j])
    ]
    out = Path(args.out or f"{Path(view.settings.data).stem}-selected.csv")
    _write_selected(view.settings, [names[j] for j in selected], out)
    _emit(
        args,
        {"run": run_id, "out": str(out)},
        "features",
        ranking,
        f"features by importance ({name}), run {run_id}",
        f"{len(selected)} of {len(names)} features selected; written to {out}",
    )


def _write_selected(settings: Settings, keep: list[str], out: Path) -> None:
    """The selected columns (and the target) of the input, as CSV: copied from the user's
    file, or written from the bundled dataset."""
    source, target = Path(settings.data), settings.target
    if source.suffix.lower() == ".csv" and source.is_file():
        with source.open(newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [*keep, target] if target else keep
            with out.open("w", newline="") as sink:
                writer = csv.writer(sink)
                writer.writerow(columns)
                for row in reader:
                    writer.writerow([row[c] for c in columns])
        return
    from .data import load_dataset

    dataset = load_dataset(settings.data, settings.target, seed=settings.seed)
    index = [dataset.feature_names.index(k) for k in keep]
    with out.open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow([*keep, "target"])
        for x, y in zip(dataset.X[:, index], dataset.y, strict=True):
            writer.writerow([*(repr(float(v)) for v in x), y])


def _runs(args: argparse.Namespace, store: Store) -> None:
    import time

    rows = [
        {
            "run": r.id,
            "command": r.command,
            "data": r.config.get("data"),
            "model": r.config.get("model"),
            "penalties": ",".join(r.config.get("penalties", [])),
            "status": r.status,
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)),
            "points": store.count_points(r.id),
        }
        for r in store.runs()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        _print_table(rows, f"runs in {store.path}")
    else:
        print(f"no runs in {store.path}")


def _render(args: argparse.Namespace, store: Store) -> None:
    html = _report(store, args.run_id, args.report_dir)
    print(json.dumps({"run": args.run_id, "report": str(html)}) if args.json else f"report: {html}")


def _compact(args: argparse.Namespace, store: Store | None) -> None:
    import torch
    from torch import nn

    from .checkpoint import load_payload, load_sparse, save_sparse
    from .compaction import compact

    source = Path(args.model_file)
    model = load_sparse(source)
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"{source} holds a state dict without an architecture; compact needs an "
            "nn.Sequential saved with save_sparse"
        )
    if args.input_shape:
        shape = _integers("--input-shape", args.input_shape)
    else:
        stored = load_payload(source).get("input_shape")
        if not stored:
            raise ValueError(f"{source} does not record its input shape; pass --input-shape")
        shape = tuple(int(v) for v in stored)
    example = torch.randn((64, *shape), generator=torch.Generator().manual_seed(0))
    small, report = compact(model, example)
    out = Path(args.out or source.with_name(f"{source.stem}-compact.pt"))
    saved = save_sparse(small, out, input_shape=shape)
    result = {
        "out": str(out),
        "parameters_before": report.parameters_before,
        "parameters_after": report.parameters_after,
        "bytes_before": source.stat().st_size,
        "bytes_after": saved.bytes,
        "units_kept": {str(k): list(v) for k, v in report.kept.items()},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"parameters {report.parameters_before:,} -> {report.parameters_after:,}; file "
        f"{result['bytes_before']:,} -> {saved.bytes:,} bytes; units kept per layer "
        + ", ".join(f"layer {k}: {a}/{b}" for k, (a, b) in report.kept.items())
    )
    print(f"written to {out}")


def _tune(args: argparse.Namespace, store: Store) -> int:
    from .tune import TuneConfig, best_settings, sqlite_url, trial_rows, tune

    for option in ("cv", "resume", "lams", "path_learning_rate"):
        if getattr(args, option) is not None:
            flag = "--" + option.replace("_", "-")
            raise ValueError(f"{flag} does not apply to tune (trials search the lam grid)")
    penalty = _one_penalty(args)
    config = TuneConfig(
        _settings(args, [penalty]),
        penalty,
        args.storage or sqlite_url(store.path),
        study=args.study,
        trials=args.trials,
        workers=args.workers,
        search=None if args.search is None else tuple(args.search.split(",")),
        pruner=args.pruner,
        heartbeat=args.heartbeat,
        sampler_seed=args.sampler_seed,
    )
    with _progress(args.quiet) as bar:

        def progress(done: int, total: int) -> None:
            if bar is not None:
                bar(f"study {config.study}", done, total)

        outcome = tune(config, progress)
    for line in outcome.lost_workers:
        print(f"shrinkage: warning: {line}; the study stays usable", file=sys.stderr)
    best = outcome.best
    run_id = run_experiment(
        best_settings(config, outcome),
        store,
        command="tune",
        meta={"study": outcome.study, "storage": outcome.storage, "trial": best["number"]},
    )
    html = _report(store, run_id, args.report_dir)
    rows = result_table(store.results(run_id))
    payload = {
        "study": outcome.study,
        "storage": outcome.storage,
        "counts": outcome.counts,
        "ran": outcome.ran,
        "lost_workers": outcome.lost_workers,
        "seconds": outcome.seconds,
        "best": best,
        "run": run_id,
        "report": str(html),
        "rows": rows,
    }
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(outcome.counts.items()))
    params = ", ".join(f"{k} = {v:.4g}" for k, v in best["params"].items())
    footer = (
        f"study {outcome.study} ({counts}); best: trial {best['number']}, validation "
        f"{outcome.metric} {best['value']:.4f} at {params}\n"
        f"the best trial retrained as run {run_id}; report: {html}"
    )
    if args.json:
        print(json.dumps({**payload, "trials": trial_rows(config)}, indent=2))
    else:
        _print_table(trial_rows(config), f"best trials of study {outcome.study}")
        _print_table(rows, f"run {run_id}")
        print(footer)
    return 1 if outcome.lost_workers else 0


_COMMANDS: dict[str, Callable[[argparse.Namespace, Store], int | None]] = {  # need the store
    "compare": _compare,
    "path": _path,
    "select": _select,
    "tune": _tune,
    "runs": _runs,
    "report": _render,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "compact":
            _compact(args, None)
        else:
            with Store(args.store) as store:
                status = _COMMANDS[args.command](args, store)
                if status:
                    return status
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
