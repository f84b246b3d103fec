"""The experiment store: runs, their path points and result rows in one SQLite file.

Every finished path point and every finished penalty is committed the moment it is done, so
an interrupted run loses at most the point it was computing and ``--resume RUN_ID`` carries
on from there. The database runs in WAL mode with a busy timeout, so several processes can
write runs into one store at once.

Where the store lives: the path given, else the ``SHRINKAGE_STORE`` environment variable, else
``./shrinkage-runs.db``.

Arrays (coefficients, network weights, optimizer state) are kept as ``.npz`` blobs written
and read with ``allow_pickle=False``, and the structure around them as JSON: loading a run
never unpickles anything.
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._validation import ArgumentError
from ..path import NetworkState, PathPoint
from .results import ResultRow

__all__ = ["DEFAULT_STORE", "RunInfo", "Store", "decode", "default_store_path", "encode"]

DEFAULT_STORE = "shrinkage-runs.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    config TEXT NOT NULL,
    meta TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS points (
    run_id TEXT NOT NULL REFERENCES runs(id),
    penalty TEXT NOT NULL,
    fold INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    record TEXT NOT NULL,
    arrays BLOB NOT NULL,
    PRIMARY KEY (run_id, penalty, fold, idx)
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(id),
    penalty TEXT NOT NULL,
    position INTEGER NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (run_id, penalty)
);
"""


def default_store_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit``, else ``$SHRINKAGE_STORE``, else ``./shrinkage-runs.db``."""
    return Path(explicit or os.environ.get("SHRINKAGE_STORE") or DEFAULT_STORE)


# -- JSON + npz encoding ---------------------------------------------------------------------
def _encoded(o: Any, arrays: dict[str, np.ndarray]) -> Any:
    """``o`` as JSON-ready values, its arrays and tensors moved into ``arrays``."""
    if isinstance(o, torch.Tensor | np.ndarray):
        key = f"a{len(arrays)}"
        tensor = isinstance(o, torch.Tensor)
        arrays[key] = o.detach().cpu().numpy() if isinstance(o, torch.Tensor) else o
        return {"__tensor__" if tensor else "__ndarray__": key}
    if isinstance(o, dict):
        if all(isinstance(k, str) for k in o):
            return {"__dict__": {k: _encoded(v, arrays) for k, v in o.items()}}
        return {"__items__": [[_encoded(k, arrays), _encoded(v, arrays)] for k, v in o.items()]}
    if isinstance(o, tuple):
        return {"__tuple__": [_encoded(v, arrays) for v in o]}
    if isinstance(o, list):
        return [_encoded(v, arrays) for v in o]
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return {"__float__": repr(o)}
    if o is None or isinstance(o, bool | int | float | str):
        return o
    raise TypeError(f"cannot store a value of type {type(o).__name__}")


def encode(obj: Any) -> tuple[str, bytes]:
    """``(json, npz bytes)`` for a structure of dicts, lists, scalars, NumPy arrays and torch
    tensors. Dicts with non-string keys (optimizer states) and tuples round-trip."""
    arrays: dict[str, np.ndarray] = {}
    doc = json.dumps(_encoded(obj, arrays))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # (the keys are a0, a1, ...)
    return doc, buffer.getvalue()


def decode(doc: str, blob: bytes) -> Any:
    """The inverse of :func:`encode` (tensors come back as torch tensors on the CPU)."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}

    def walk(o: Any) -> Any:
        if isinstance(o, list):
            return [walk(v) for v in o]
        if not isinstance(o, dict):
            return o
        if "__tensor__" in o:
            return torch.from_numpy(arrays[o["__tensor__"]].copy())
        if "__ndarray__" in o:
            return arrays[o["__ndarray__"]]
        if "__dict__" in o:
            return {k: walk(v) for k, v in o["__dict__"].items()}
        if "__items__" in o:
            return {walk(k): walk(v) for k, v in o["__items__"]}
        if "__tuple__" in o:
            return tuple(walk(v) for v in o["__tuple__"])
        if "__float__" in o:
            return float(o["__float__"])
        raise ValueError(f"unknown stored structure {sorted(o)}")

    return walk(json.loads(doc))


@dataclass(frozen=True)
class RunInfo:
    id: str
    command: str
    config: dict[str, Any]
    meta: dict[str, Any]
    status: str
    created: float
    finished: float | None


class Store:
    """One SQLite file of runs, safe to share between processes (WAL, busy timeout).

    Args:
        path: the file (created if missing); ``None`` for :func:`default_store_path`'s.
        timeout: seconds to wait for another process's lock before giving up.

    Raises:
        ArgumentError: ``path`` in a folder that does not exist.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 60.0):
        self.path = default_store_path(path)
        if self.path.parent and not self.path.parent.exists():
            raise ArgumentError("path", f"{str(self.path)!r} is in a folder that does not exist")
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        # Switching a new file to WAL, and creating the tables, can meet another process doing
        # the same at that moment; SQLite then says "locked" at once, without waiting.
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
                with self._transaction():
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        self._db.execute(statement)
                break
            except sqlite3.OperationalError as error:
                busy = "locked" in str(error) or "busy" in str(error)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(2 * delay, 0.5)

    def close(self) -> None:
        """Close the file (also on leaving a ``with`` block)."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on an exception)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- runs --------------------------------------------------------------------------
    def create_run(self, command: str, config: dict[str, Any], meta: dict[str, Any]) -> str:
        """Record a new run.

        Args:
            command: the command that runs it (``"compare"``, ``"tune"``, ...).
            config: its settings, as JSON-compatible data.
            meta: more to record (its dataset, what it came from).

        Returns:
            The run's id, 8 hex digits.
        """
        with self._transaction():
            while True:
                run_id = secrets.token_hex(4)
                exists = self._db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
                if not exists:
                    break
            self._db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, 'running', ?, NULL)",
                (run_id, command, json.dumps(config), json.dumps(meta), time.time()),
            )
        return run_id

    def run(self, run_id: str) -> RunInfo:
        """One run's record.

        Args:
            run_id: its id.

        Returns:
            Its command, settings, metadata, status and times.

        Raises:
            ValueError: no such run, naming the id and the file.
        """
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise ValueError(f"no run {run_id!r} in the store {str(self.path)!r}")
        return RunInfo(row[0], row[1], json.loads(row[2]), json.loads(row[3]), *row[4:])

    def runs(self) -> list[RunInfo]:
        """Every run's record, oldest first."""
        rows = self._db.execute("SELECT id FROM runs ORDER BY created").fetchall()
        return [self.run(r[0]) for r in rows]

    def finish_run(self, run_id: str) -> None:
        """Mark a run done, with its finishing time.

        Args:
            run_id: its id.
        """
        with self._transaction():
            self._db.execute(
                "UPDATE runs SET status = 'done', finished = ? WHERE id = ?", (time.time(), run_id)
            )

    # -- path points -------------------------------------------------------------------
    def add_point(self, run_id: str, penalty: str, fold: int, idx: int, point: PathPoint) -> None:
        """Commit one finished path point; a point already there is kept.

        Args:
            run_id: the run.
            penalty: the penalty's name.
            fold: the fold's index (``-1`` for the refit).
            idx: the point's index along the path.
            point: the point.
        """
        record = {f.name: getattr(point, f.name) for f in fields(PathPoint)}
        state = record.pop("state")
        arrays = {
            "coef": record.pop("coef"),
            "intercept": record.pop("intercept"),
            "state": None if state is None else _state_record(state),
        }
        record["selected"] = list(point.selected)
        doc, blob = encode(arrays)
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO points VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, penalty, fold, idx, json.dumps({"record": record, "arrays": doc}), blob),
            )

    def points(self, run_id: str, penalty: str, fold: int) -> list[PathPoint]:
        """The stored points of one path.

        Args:
            run_id: the run.
            penalty: the penalty's name.
            fold: the fold's index (``-1`` for the refit).

        Returns:
            Its points in order: the stored prefix of the path.
        """
        rows = self._db.execute(
            "SELECT idx, record, arrays FROM points WHERE run_id = ? AND penalty = ? AND fold = ? "
            "ORDER BY idx",
            (run_id, penalty, fold),
        ).fetchall()
        out = []
        for expected, (idx, doc, blob) in enumerate(rows):
            if idx != expected:
                break  # only a contiguous prefix is a path
            payload = json.loads(doc)
            record = payload["record"]
            arrays = decode(payload["arrays"], blob)
            record["selected"] = tuple(record["selected"])
            state = arrays.pop("state")
            out.append(
                PathPoint(**record, **arrays, state=None if state is None else _network(state))
            )
        return out

    def count_points(self, run_id: str) -> int:
        """How many path points a run has stored.

        Args:
            run_id: the run.

        Returns:
            The count over all its penalties and folds.
        """
        row = self._db.execute("SELECT COUNT(*) FROM points WHERE run_id = ?", (run_id,)).fetchone()
        return int(row[0])

    # -- result rows -------------------------------------------------------------------
    def add_result(self, run_id: str, position: int, row: ResultRow) -> None:
        """Commit one penalty's result row.

        Args:
            run_id: the run.
            position: the row's place in the results table.
            row: the row.
        """
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                (run_id, row.penalty, position, json.dumps(encode(row.to_dict())[0])),
            )

    def results(self, run_id: str) -> list[ResultRow]:
        """A run's result rows.

        Args:
            run_id: the run.

        Returns:
            Its rows, in their positions' order.
        """
        rows = self._db.execute(
            "SELECT row FROM results WHERE run_id = ? ORDER BY position", (run_id,)
        ).fetchall()
        empty = encode({})[1]
        return [ResultRow.from_dict(decode(json.loads(r[0]), empty)) for r in rows]

    def integrity(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])


def _state_record(state: NetworkState) -> dict[str, Any]:
    return {
        "weights": state.weights,
        "optimizer": state.optimizer,
        "history": [list(h) for h in state.history],
        "relaxed": state.relaxed,
    }


def _network(record: dict[str, Any]) -> NetworkState:
    """A stored state back as a :class:`NetworkState` (stores written before it was typed
    keep the weights under ``"model"``)."""
    weights = record["weights"] if "weights" in record else record["model"]
    history = tuple((float(a), float(b)) for a, b in record.get("history") or ())
    return NetworkState(weights, record.get("optimizer"), history, record.get("relaxed"))
