"""Datasets for the command line and the experiments: scikit-learn's bundled sets, generated
Friedman #1 data, or a CSV file the user passes. Nothing is downloaded.

    load_dataset("digits")                        # bundled with scikit-learn
    load_dataset("friedman1", seed=0)              # make_friedman1(1000, 10 features)
    load_dataset("houses.csv", target="price")     # any CSV with a header row

and the splits every experiment uses: a held-out test part, then either one validation part
or K folds of the rest, all drawn from one seed (stratified for classification).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn import datasets as skd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from .._validation import ArgumentError

__all__ = ["BUNDLED", "Dataset", "Fold", "load_dataset", "make_folds", "write_selected"]

BUNDLED = ("digits", "breast_cancer", "diabetes", "wine", "iris", "friedman1")
"""Names ``load_dataset`` knows without a file."""

_LOADERS = {
    "digits": skd.load_digits,
    "breast_cancer": skd.load_breast_cancer,
    "diabetes": skd.load_diabetes,
    "wine": skd.load_wine,
    "iris": skd.load_iris,
}


@dataclass(frozen=True)
class Dataset:
    """Features ``X [n, p]`` (float64), targets ``y [n]`` (class indices ``0..K-1`` for
    classification, floats for regression), names of the features and the classes."""

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    task: str
    """``"classification"`` or ``"regression"``."""
    class_names: tuple[str, ...] = ()

    @property
    def n_classes(self) -> int:
        """The number of classes (0 for a regression)."""
        return len(self.class_names)


def load_dataset(name: str, target: str | None = None, *, seed: int = 0) -> Dataset:
    """A bundled dataset by name, or a CSV file with a header row.

    The task is classification when the target has non-numeric values, or integer values
    with at most 20 distinct ones; regression otherwise.

    Args:
        name: one of :data:`BUNDLED`, or the path of a CSV file.
        target: the CSV's target column (only for a CSV); every other column must be
            numeric.
        seed: the seed of the generated ``friedman1`` data.

    Returns:
        The dataset: ``X [n, p]``, ``y [n]``, feature names, task and class names.

    Raises:
        ArgumentError: a ``target`` given for a bundled dataset, or missing for a CSV; a CSV
            that cannot be read or used, with the file, line and column at fault.

    Example:
        >>> load_dataset("iris").X.shape
        (150, 4)
    """
    if name in _LOADERS:
        if target is not None:
            raise ArgumentError("target", f"is only for CSV files; {name!r} has its own target")
        bunch = _LOADERS[name]()
        X = np.asarray(bunch.data, dtype=np.float64)
        names = tuple(str(f) for f in getattr(bunch, "feature_names", [])) or tuple(
            f"x{j}" for j in range(X.shape[1])
        )
        if name == "diabetes":
            return Dataset(name, X, np.asarray(bunch.target, dtype=np.float64), names, "regression")
        classes = tuple(str(c) for c in bunch.target_names)
        return Dataset(
            name, X, np.asarray(bunch.target, dtype=np.int64), names, "classification", classes
        )
    if name == "friedman1":
        if target is not None:
            raise ArgumentError("target", "is only for CSV files; 'friedman1' has its own target")
        X, y = skd.make_friedman1(n_samples=1000, n_features=10, noise=1.0, random_state=seed)
        names = tuple(f"x{j}" for j in range(10))
        return Dataset(name, X, y, names, "regression")
    path = Path(name)
    if path.suffix.lower() != ".csv" and not path.exists():
        raise ArgumentError(
            "data", f"{name!r} is neither a bundled dataset ({', '.join(BUNDLED)}) nor a CSV file"
        )
    return _load_csv(path, target)


MIN_ROWS = 10
"""Fewest rows an experiment accepts (a test part, a validation part and a training part)."""


def _load_csv(path: Path, target: str | None) -> Dataset:
    """A CSV file with a header row: numeric features, and a target column (classes when it
    holds text or at most 20 distinct integers, else a regression target)."""
    header, body = _read_rows(path, target)
    assert target is not None
    t = header.index(target)
    lines = np.array([line for line, _ in body])
    X = _features(path, header, body, t, lines)
    feature_names = tuple(h for j, h in enumerate(header) if j != t)
    raw = [r[t].strip() for _, r in body]
    empty = np.array([not v or v.lower() == "nan" for v in raw])
    if empty.any():
        raise ValueError(
            f"{path.name}: the target {target!r} is missing on line(s) {_lines(lines[empty])}"
        )
    if not all(_is_number(v) for v in raw):
        classes_s, y = np.unique(np.array(raw), return_inverse=True)
        dataset = Dataset(
            path.stem, X, y.astype(np.int64), feature_names, "classification", tuple(classes_s)
        )
        return _checked(dataset, target)
    values = np.array([float(v) for v in raw])
    if not np.all(np.isfinite(values)):
        bad = lines[~np.isfinite(values)]
        raise ValueError(f"{path.name}: the target {target!r} is infinite on line(s) {_lines(bad)}")
    if np.all(values == np.round(values)) and len(np.unique(values)) <= 20:
        classes, y = np.unique(values.astype(np.int64), return_inverse=True)
        names = tuple(str(c) for c in classes)
        dataset = Dataset(path.stem, X, y.astype(np.int64), feature_names, "classification", names)
        return _checked(dataset, target)
    return Dataset(path.stem, X, values, feature_names, "regression")


def _read_rows(path: Path, target: str | None) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-empty data rows (with their line numbers), checked: UTF-8,
    unique column names, the target among them, every row as wide as the header, and at
    least :data:`MIN_ROWS` rows."""
    where = repr(str(path))

    def bad_file(problem: str) -> ArgumentError:
        return ArgumentError("data", f"{where} {problem}")

    if not path.is_file():
        raise bad_file("is no such file")
    if target is None:
        raise ArgumentError("target", f"is required with a CSV file ({path.name}): name its column")
    rows = _csv_rows(path, bad_file)
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise bad_file("is empty; it needs a header row and data rows")
    header = _header(rows[0], target, path, bad_file)
    body = [(i + 2, r) for i, r in enumerate(rows[1:]) if any(cell.strip() for cell in r)]
    for line, r in body:
        if len(r) != len(header):
            raise ValueError(
                f"{path.name}: line {line} has {len(r)} fields, the header has {len(header)}"
            )
    if len(body) < MIN_ROWS:
        raise bad_file(f"has {len(body)} data rows; at least {MIN_ROWS} are needed")
    return header, body


def _header(
    row: list[str], target: str, path: Path, bad_file: Callable[[str], ArgumentError]
) -> list[str]:
    """The column names: unique, with ``target`` among them, and at least one feature."""
    header = [h.strip() for h in row]
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise bad_file(f"names column(s) {duplicates} more than once in its header")
    if target not in header:
        raise ArgumentError(
            "target", f"{target!r} is not a column of {path.name}; columns: {header}"
        )
    if len(header) < 2:
        raise bad_file(f"has no feature columns besides the target {target!r}")
    return header


def _csv_rows(path: Path, bad_file: Callable[[str], ArgumentError]) -> list[list[str]]:
    """Every row of the CSV file ``path``, read as UTF-8."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.reader(handle))
    except UnicodeDecodeError:
        raise bad_file("is not UTF-8 text; save it as a UTF-8 CSV") from None
    except (OSError, csv.Error) as error:
        raise bad_file(f"cannot be read as CSV: {error}") from None


def _features(
    path: Path,
    header: list[str],
    body: list[tuple[int, list[str]]],
    t: int,
    lines: np.ndarray,
) -> np.ndarray:
    """``[rows, columns - 1]``: every column but the target ``t``, each numeric, finite and
    not constant (the error names the column and the lines)."""
    X = np.empty((len(body), len(header) - 1))
    for k, j in enumerate(j for j in range(len(header)) if j != t):
        column = [r[j].strip() for _, r in body]
        for v in column:
            if v and not _is_number(v):
                raise ValueError(
                    f"{path.name}: column {header[j]!r} has a non-numeric value {v[:40]!r}; "
                    "features must be numbers"
                )
        X[:, k] = [float(v) if v else math.nan for v in column]
        missing = ~np.isfinite(X[:, k])
        if missing.any():
            raise ValueError(
                f"{path.name}: column {header[j]!r} has missing or non-finite values on "
                f"line(s) {_lines(lines[missing])}; fill or drop them"
            )
        if np.all(X[:, k] == X[0, k]):
            raise ValueError(
                f"{path.name}: column {header[j]!r} is constant (every value is {X[0, k]:g}); "
                "it carries no information, drop it"
            )
    return X


def _lines(lines: np.ndarray, show: int = 5) -> str:
    shown = ", ".join(str(int(v)) for v in lines[:show])
    return shown + (f" and {len(lines) - show} more" if len(lines) > show else "")


def _checked(dataset: Dataset, target: str) -> Dataset:
    counts = np.bincount(dataset.y)
    if len(counts) < 2:
        raise ValueError(
            f"the target {target!r} has a single class ({dataset.class_names[0]}); "
            "classification needs at least two"
        )
    return dataset


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Fold:
    """Row indices into the dataset: ``train`` to fit on, ``val`` to choose lam on."""

    train: np.ndarray
    val: np.ndarray


def _check_splittable(dataset: Dataset, cv: int | None) -> None:
    """Refuse a ``cv`` that is not an integer ``>= 2``, and data with too few rows, or too
    few of one class, for a test part and ``cv`` folds (see :func:`make_folds`)."""
    n = len(dataset.y)
    if cv is not None and (isinstance(cv, bool) or not isinstance(cv, int) or cv < 2):
        raise ArgumentError("cv", f"must be an integer >= 2; got {cv!r}")
    needed = max(MIN_ROWS, 2 * (cv or 2))
    if n < needed:
        raise ArgumentError("data", f"has {n} rows; {needed} are needed for these splits")
    if dataset.task != "classification":
        return
    counts = np.bincount(dataset.y)
    per_class = 2 + (cv or 2)
    if counts.min() < per_class:
        name = dataset.class_names[int(counts.argmin())] if dataset.class_names else ""
        raise ArgumentError(
            "data",
            f"has {int(counts.min())} rows of class {name!r}; every class needs at least "
            f"{per_class} to be split into test, training and validation parts"
            + (f" with {{cv}} {cv}" if cv else ""),
            related=("cv",),
        )


def make_folds(
    dataset: Dataset, *, seed: int, cv: int | None, test_size: float = 0.2, val_size: float = 0.25
) -> tuple[np.ndarray, np.ndarray, list[Fold]]:
    """Split the rows into a held-out test part and training/validation folds.

    The splits are stratified on the class for classification, and deterministic in
    ``seed``.

    Args:
        dataset: the data.
        seed: the seed of the shuffles.
        cv: ``None`` for one train/validation split of the rest, or a number of folds
            ``>= 2``.
        test_size: the share of the rows held out for the test.
        val_size: with ``cv=None``, the share of the rest kept for validation.

    Returns:
        ``(rest, test, folds)``: row indices of the rest and of the test part, and the
        folds, each with ``train`` and ``val`` row indices.

    Raises:
        ArgumentError: a ``cv`` that is not an integer ``>= 2``, or too few rows (or too
            few of one class) for these splits.
    """
    _check_splittable(dataset, cv)
    index = np.arange(len(dataset.y))
    stratify = dataset.y if dataset.task == "classification" else None
    rest, test = train_test_split(index, test_size=test_size, random_state=seed, stratify=stratify)
    y_rest = dataset.y[rest]
    if cv is None:
        tr, va = train_test_split(
            rest,
            test_size=val_size,
            random_state=seed,
            stratify=y_rest if stratify is not None else None,
        )
        return rest, test, [Fold(np.sort(tr), np.sort(va))]
    splitter = (
        StratifiedKFold(cv, shuffle=True, random_state=seed)
        if stratify is not None
        else KFold(cv, shuffle=True, random_state=seed)
    )
    folds = [Fold(rest[a], rest[b]) for a, b in splitter.split(rest, y_rest)]
    return rest, test, folds


def write_selected(
    data: str, target: str | None, keep: list[str], out: Path, *, seed: int = 0
) -> None:
    """Write the columns ``keep`` (and the target) of ``data`` to the CSV file ``out``:
    copied from the user's CSV file as written there, or from a bundled dataset."""
    source = Path(data)
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
    dataset = load_dataset(data, target, seed=seed)
    index = [dataset.feature_names.index(k) for k in keep]
    with out.open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow([*keep, "target"])
        for x, y in zip(dataset.X[:, index], dataset.y, strict=True):
            writer.writerow([*(repr(float(v)) for v in x), y])
