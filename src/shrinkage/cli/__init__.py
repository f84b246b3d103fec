"""The ``shrinkage`` command: regularization runs from the shell.

    shrinkage compare --data digits                       # no penalty vs L1, L2, Elastic Net
    shrinkage path --data diabetes --penalty l1 --model linear
    shrinkage select --data breast_cancer                 # rank and keep features
    shrinkage tune --data digits --penalty l1 --trials 30 # Optuna search
    shrinkage compact model.pt                            # drop dead neurons and channels
    shrinkage runs                                        # what the store holds
    shrinkage report RUN_ID                               # render a stored run again

``shrinkage --help`` and ``shrinkage COMMAND --help`` describe every option with its default
and give examples (:mod:`.parser`); :mod:`.commands` holds what each command does. Exit
status: 0 on success, 2 on bad input or a missing extra (one line on stderr, no traceback), 1
when a ``tune`` worker was lost (the rest is reported), 130 when interrupted.

The library names its arguments as Python does (``hidden``); the command renders its errors
with the options that were typed (``--hidden``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence

from .._extras import install_hint
from .._validation import ArgumentError
from . import commands
from .parser import build_parser

__all__ = ["build_parser", "main"]

_NEEDS = ("matplotlib", "rich")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: the arguments after ``shrinkage`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status (see the module docstring).

    Example:
        >>> main(["runs", "--store", ":memory:", "--quiet"])  # doctest: +SKIP
    """
    missing = [name for name in _NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"shrinkage: the command line needs {', '.join(missing)}: pip install 'shrinkage[cli]'",
            file=sys.stderr,
        )
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except ArgumentError as error:
        message = error.render(commands.option_names(parser, args.command))
        return _fail(message)
    except ModuleNotFoundError as error:
        hint = install_hint(error, f"the {args.command} command")
        if hint is None:
            raise
        return _fail(hint)
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        return _fail(str(error) or type(error).__name__)
    except KeyboardInterrupt:
        print(
            "shrinkage: interrupted (finished points and trials are stored: use --resume, or run "
            "tune again with the same --study)",
            file=sys.stderr,
        )
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "compact":  # the only command without a store
        commands.compact(args)
        return 0
    from ..experiments import Store

    with Store(args.store) as store:
        return commands.COMMANDS[args.command](args, store) or 0


def _fail(message: str) -> int:
    print("shrinkage: error: " + message.splitlines()[0], file=sys.stderr)
    return 2
