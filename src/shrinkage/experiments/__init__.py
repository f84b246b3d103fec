"""Experiments: penalties compared on one dataset along stored, resumable paths, with their
reports and their tuning.

* :mod:`.settings`: :class:`Settings`, what defines a run;
* :mod:`.data`: the bundled datasets, CSV files and the seeded splits;
* :mod:`.problems`: the model families (MLP, linear) on one training part;
* :mod:`.runner`: :func:`run_experiment`, the paths, the choice of each strength, the results;
* :mod:`.results`: :class:`ResultRow` and the weight summaries of a point;
* :mod:`.store`: the SQLite run store;
* :mod:`.report`: the figures and the HTML report, from stored records only (matplotlib);
* :mod:`.trainer`, :mod:`.study`, :mod:`.workers`, :mod:`.tune`: Optuna studies of single
  points (``pip install 'shrinkage[tune]'``).

Importing this package loads neither matplotlib nor Optuna; :mod:`.report` and :mod:`.tune`
do, when they are imported.
"""

from .data import BUNDLED, Dataset, load_dataset, make_folds
from .results import ResultRow
from .runner import Runner, chosen_point, run_experiment
from .settings import MODELS, PENALTIES, Settings
from .store import Store

__all__ = [
    "BUNDLED",
    "MODELS",
    "PENALTIES",
    "Dataset",
    "ResultRow",
    "Runner",
    "Settings",
    "Store",
    "chosen_point",
    "load_dataset",
    "make_folds",
    "run_experiment",
]
