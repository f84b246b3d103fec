"""The ``shrinkage`` command's options: every one with its help and its default, every
subcommand with a description and examples."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

__all__ = ["DESCRIPTION", "Parser", "build_parser"]

DESCRIPTION = """\
L1, L2, Elastic-Net and group-lasso regularization of neural networks and linear models,
with lam chosen on validation data. Each run trains along a warm-started path of penalty
strengths, keeps every point in a run store (resume an interrupted run with --resume), and
writes an HTML report with its figures."""

EPILOG = """\
examples:
  shrinkage compare --data digits                 # no penalty, L1, L2, Elastic Net side by side
  shrinkage path --data diabetes --model linear --penalty l1
  shrinkage select --data breast_cancer           # which inputs matter
  shrinkage compact model.pt                      # remove dead neurons and channels
  shrinkage <command> --help                      # a command's options and examples

exit status: 0 success, 2 bad input (one line on stderr), 1 a lost tune worker, 130 interrupted"""

_COMMANDS: dict[str, tuple[str, str, str]] = {
    # name: (one-line help, description, examples)
    "compare": (
        "every penalty side by side, lam chosen on validation data",
        "Train the model once without a penalty and once along the lam path of each penalty; "
        "choose each penalty's lam on validation data (--rule), score it on the held-out test "
        "part, and print one row per penalty.",
        "shrinkage compare --data digits\n"
        "shrinkage compare --data digits --penalties none,l1,group_inputs --cv 5 --rule 1se\n"
        "shrinkage compare --data houses.csv --target price --model linear",
    ),
    "path": (
        "one penalty over its lam grid",
        "Train one penalty along its warm-started lam path and print every point: losses, "
        "validation score, features in use and exact zeros; the chosen point is marked.",
        "shrinkage path --data diabetes --model linear --penalty l1\n"
        "shrinkage path --data digits --penalty elasticnet --l1-ratio 0.2 --n-lambdas 20",
    ),
    "select": (
        "feature selection: rank the inputs, keep those the chosen lam keeps",
        "Fit a sparsity penalty along its lam path (group_inputs for an MLP, l1 for a linear "
        "model), choose lam by --rule (default 1se: the sparsest model within one standard "
        "error of the best), print the features with the selected ones first, and write the "
        "selected columns (and the target) to a CSV file.",
        "shrinkage select --data breast_cancer\n"
        "shrinkage select --data table.csv --target label --model linear --out kept.csv",
    ),
    "tune": (
        "search lam (and l1_ratio, learning rate) with Optuna",
        "Run an Optuna study of the penalty's lam (and l1_ratio and the learning rate) on "
        "validation data, then retrain the best trial as a run. Studies live in SQLite or "
        "PostgreSQL: start the same command on several machines to share one study. Needs the "
        "tune extra: pip install 'shrinkage[cli,tune]'.",
        "shrinkage tune --data digits --penalty l1 --trials 30 --workers 2\n"
        "shrinkage tune --data digits --penalty elasticnet --storage postgresql://me@db/studies",
    ),
    "compact": (
        "remove dead neurons and channels from a saved sparse model",
        "Load a model saved with shrinkage.save_sparse, remove the neurons, channels and heads "
        "whose weights are all exactly zero, check that the outputs are unchanged, and save "
        "the smaller model.",
        "shrinkage compact model.pt\nshrinkage compact model.pt --out small.pt --input-shape 1,8,8",
    ),
    "runs": (
        "list the stored runs",
        "List the runs in the run store: id, command, data, model, status and points stored.",
        "shrinkage runs\nshrinkage runs --store /shared/runs.db --json",
    ),
    "report": (
        "render a stored run's report again",
        "Write the HTML report and figures of a stored run again.",
        "shrinkage report 3f2a9c1e\nshrinkage report 3f2a9c1e --report-dir /tmp/report",
    ),
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; ``(default: X)`` after an option's help when it
    has a default worth saying (not ``None``, not a switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default is not None and action.default is not False
        shown = shown and action.default != argparse.SUPPRESS
        if shown and action.option_strings and "default" not in text:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """argparse's parser, with one-line errors, that remembers how it spells each argument
    (``spelled[dest]``: its last option string, or a positional's metavar) and its
    subcommands' parsers (``commands``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.spelled: dict[str, str] = {}
        self.commands: dict[str, Parser] = {}
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.spelled[action.dest] = (
            action.option_strings[-1] if action.option_strings else str(action.metavar)
        )
        return action

    def error(self, message: str) -> Any:  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"shrinkage: error: {message}\n")


def _data_options(p: argparse.ArgumentParser, name: str) -> None:
    from ..experiments import BUNDLED, MODELS, PENALTIES

    p.add_argument("--data", help=f"a bundled dataset ({', '.join(BUNDLED)}) or a CSV file")
    p.add_argument("--target", help="the target column of a CSV file (required for a CSV)")
    p.add_argument(
        "--model",
        choices=MODELS,
        default="mlp",
        help="mlp: ReLU network trained with Adam; cnn: a small ResNet on square images; "
        "linear: least squares or logistic regression, solved exactly",
    )
    if name == "compare":
        p.add_argument(
            "--penalties",
            default="none,l1,l2,elasticnet",
            help=f"comma-separated, from {','.join(PENALTIES)}",
        )
    elif name == "select":
        p.add_argument(
            "--penalty",
            help=f"one of {','.join(PENALTIES[1:])} (default: group_inputs for an MLP, else l1)",
        )
    else:
        p.add_argument("--penalty", default="l1", help=f"one of {','.join(PENALTIES[1:])}")


def _path_options(p: argparse.ArgumentParser) -> None:
    from ..experiments import Settings

    p.add_argument("--cv", type=int, help="K-fold cross-validation to choose lam (default: one "
                   "validation split)")  # fmt: skip
    p.add_argument(
        "--rule",
        choices=("min", "1se"),
        default="min",
        help="min: the lam of the best validation loss; 1se: the largest lam within one "
        "standard error of it (a sparser model)",
    )
    p.add_argument("--seed", type=int, default=0, help="splits, initialisation, batch order")
    p.add_argument("--n-lambdas", type=int, default=Settings.n_lambdas, help="points per path")
    p.add_argument("--lams", help="the lam grid, comma-separated (default: n-lambdas from lam_max)")
    p.add_argument(
        "--hidden",
        help="MLP hidden widths, or CNN block widths, comma-separated (default: 256,256 for "
        "an MLP, 16,32 for the CNN)",
    )
    p.add_argument("--epochs", type=int, default=Settings.epochs, help="dense training epochs")
    p.add_argument("--path-epochs", type=int, default=Settings.path_epochs, help="epochs per lam")
    p.add_argument(
        "--learning-rate", type=float, default=Settings.learning_rate, help="Adam's learning rate"
    )
    p.add_argument(
        "--path-learning-rate",
        type=float,
        help="learning rate of the penalized epochs (default: --learning-rate)",
    )
    p.add_argument(
        "--l1-ratio",
        type=float,
        default=Settings.l1_ratio,
        help="the Elastic Net's mix: 1 is L1, 0 is L2",
    )
    p.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run")
    p.add_argument("--report-dir", help="where to write the report (default: reports/RUN_ID)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store", help="the run store (default: $SHRINKAGE_STORE or ./shrinkage-runs.db)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _tune_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trials", type=int, default=30, help="trials this command runs")
    p.add_argument("--workers", type=int, default=1, help="local worker processes")
    p.add_argument("--study", help="the study's name (default: DATA-MODEL-PENALTY)")
    p.add_argument(
        "--storage",
        help="a database URL, e.g. postgresql://user@host/db (default: the run store's file)",
    )
    p.add_argument(
        "--search", help="what to search: lam and any of l1_ratio,learning_rate (default: all)"
    )
    p.add_argument(
        "--pruner",
        choices=("median", "none"),
        default="median",
        help="median: stop a trial whose validation loss is worse than the median of earlier "
        "trials at the same lam; none: run every trial to the end",
    )
    p.add_argument("--heartbeat", type=int, default=10, help="seconds between a trial's heartbeats")
    p.add_argument("--sampler-seed", type=int, help="the TPE sampler's seed (default: random)")


def _subcommand(sub: Any, name: str) -> Parser:
    summary, description, examples = _COMMANDS[name]
    epilog = "examples:\n" + "\n".join("  " + line for line in examples.splitlines())
    parser: Parser = sub.add_parser(
        name, help=summary, description=textwrap.fill(description, 88), epilog=epilog
    )
    return parser


def build_parser() -> Parser:
    """The ``shrinkage`` parser with its seven subcommands."""
    parser = Parser(prog="shrinkage", description=DESCRIPTION, epilog=EPILOG)
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=Parser, metavar="COMMAND"
    )
    for name in ("compare", "path", "select", "tune"):
        p = parser.commands[name] = _subcommand(sub, name)
        _data_options(p, name)
        _path_options(p)
    select = parser.commands["select"]
    select.set_defaults(rule="1se")
    select.add_argument("--out", help="the CSV file of the selected columns (default: "
                        "selected.csv in the report's folder)")  # fmt: skip
    _tune_options(parser.commands["tune"])
    compact = parser.commands["compact"] = _subcommand(sub, "compact")
    compact.add_argument("model_file", help="a model saved with shrinkage.save_sparse")
    compact.add_argument("--out", help="where to write the compact model (default: "
                         "NAME-compact.pt beside MODEL_FILE)")  # fmt: skip
    compact.add_argument(
        "--input-shape", help="one sample's shape, e.g. 64 or 1,8,8 (default: from the file)"
    )
    parser.commands["runs"] = _subcommand(sub, "runs")
    report = parser.commands["report"] = _subcommand(sub, "report")
    report.add_argument("run_id", metavar="RUN_ID", help="the run's id, as `shrinkage runs` lists")
    report.add_argument("--report-dir", help="where to write the report (default: reports/RUN_ID)")
    for p in parser.commands.values():
        _common(p)
    return parser
