"""Bad input to the command line: exit status 2, one clear line, never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shrinkage.cli import main

FAST = ["--model", "linear", "--penalties", "l1", "--n-lambdas", "2", "--quiet"]


def good_rows(n: int = 30, classes: int = 2) -> list[list[str]]:
    rng = np.random.default_rng(0)
    return [[f"{rng.normal():.4f}", f"{rng.normal():.4f}", str(i % classes)] for i in range(n)]


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return path


def run(tmp_path: Path, data: Path | str, *extra: str, target: str | None = "y") -> int:
    args = ["compare", "--data", str(data), "--store", str(tmp_path / "s.db"), *FAST, *extra]
    args += ["--report-dir", str(tmp_path / "rep")]
    return main(args + (["--target", target] if target else []))


def one_line_error(capsys: pytest.CaptureFixture[str], expected: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("shrinkage: error: "), err
    assert expected in err[0], err[0]


def test_a_good_csv_runs(tmp_path: Path) -> None:
    assert run(tmp_path, write(tmp_path / "d.csv", ["a", "b", "y"], good_rows())) == 0


@pytest.mark.parametrize(
    ("rows_edit", "extra", "expected"),
    [
        (lambda h, r: (["a", "b", "label"], r), [], "--target 'y' is not a column"),
        (lambda h, r: (h, [[x if i != 4 else "abc" for x in row[:1]] + row[1:]
                           for i, row in enumerate(r)]),
         [], "column 'a' has a non-numeric value 'abc'"),
        (lambda h, r: (h, [[("" if i in (3, 7) else row[0]), *row[1:]] for i, row in enumerate(r)]),
         [], "column 'a' has missing or non-finite values on line(s) 5, 9"),
        (lambda h, r: (h, [["nan" if i == 0 else row[0], *row[1:]] for i, row in enumerate(r)]),
         [], "line(s) 2"),
        (lambda h, r: (h, [[row[0], "3.0", row[2]] for row in r]), [], "column 'b' is constant"),
        (lambda h, r: (h, r[:12]), ["--cv", "10"], "12 rows; 20 are needed"),
        (lambda h, r: (h, r[:6]), [], "6 data rows; at least 10"),
        (lambda h, r: (h, [[*row[:2], "1"] for row in r]), [], "single class"),
        (lambda h, r: (["a", "a", "y"], r), [], "more than once"),
        (lambda h, r: (h, [row[:2] for row in r]), [], "fields, the header has 3"),
    ],
)  # fmt: skip
def test_bad_csv(tmp_path, capsys, rows_edit, extra, expected) -> None:
    header, rows = rows_edit(["a", "b", "y"], good_rows())
    path = write(tmp_path / "d.csv", header, rows)
    assert run(tmp_path, path, *extra) == 2
    one_line_error(capsys, expected)


def test_empty_unreadable_and_unknown(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty.csv").write_text("")
    assert run(tmp_path, tmp_path / "empty.csv") == 2
    one_line_error(capsys, "is empty")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    assert run(tmp_path, tmp_path / "binary.csv") == 2
    one_line_error(capsys, "not UTF-8")
    (tmp_path / "folder.csv").mkdir()
    assert run(tmp_path, tmp_path / "folder.csv") == 2
    one_line_error(capsys, "no such file")
    assert run(tmp_path, "mnist", target=None) == 2
    one_line_error(capsys, "neither a bundled dataset")
    assert run(tmp_path, tmp_path / "d.csv", target=None) == 2
    one_line_error(capsys, "no such file")
    write(tmp_path / "d.csv", ["a", "b", "y"], good_rows())
    assert run(tmp_path, tmp_path / "d.csv", target=None) == 2
    one_line_error(capsys, "--target is required")


cells = st.one_of(
    st.sampled_from(["", "nan", "inf", "-1", "0", "1", "2.5", "1e308", "x", '"', "a,b", " "]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=5),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    header=st.lists(st.sampled_from(["a", "b", "y", "", "c"]), min_size=0, max_size=4),
    rows=st.lists(st.lists(cells, min_size=0, max_size=4), min_size=0, max_size=14),
    raw=st.one_of(st.none(), st.binary(max_size=64)),
)
def test_malformed_csv_never_gives_a_traceback(header, rows, raw, capsys) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "m.csv"
        if raw is not None:
            path.write_bytes(raw)
        else:
            path.write_text("\n".join(",".join(r) for r in [header, *rows]))
        code = run(folder, path)  # any exception escaping main() fails the test
    assert code in (0, 2)
    if code == 2:
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("shrinkage: error: ")
