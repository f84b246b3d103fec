"""Taking columns of a dense matrix: ``M.index_select(1, idx)`` against one ``torch.gather``.

The linear solvers take columns at every working set: ``X[:, S]`` of a wide design, and the
principal blocks ``G[S][:, S]`` of a Gram matrix. Both calls copy the same values
(``shrinkage.linear._design.take_columns`` is the gather); this prints their times side by
side, interleaved in one run, on the shapes those solvers meet, and the ratio (above 1: the
gather is faster).

    python benchmarks/column_take.py
    python benchmarks/column_take.py --threads 1
"""

from __future__ import annotations

import argparse
from functools import partial

import torch

from shrinkage.linear._design import take_columns
from timing import interleaved

SHAPES = [
    # (rows, columns, taken): a Gram matrix's blocks, then wide and tall designs
    (500, 500, 250),
    (2000, 2000, 100),
    (300, 20000, 300),
    (1600, 20000, 30),
    (1600, 20000, 1000),
    (20000, 500, 250),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, float64; milliseconds per call")
    print(f"{'matrix':>14} {'taken':>6} {'index_select':>13} {'gather':>8} {'ratio':>7}")
    for rows, cols, taken in SHAPES:
        M = torch.randn(rows, cols, dtype=torch.float64, generator=gen)
        idx = torch.randperm(cols, generator=gen)[:taken].sort().values
        assert torch.equal(M.index_select(1, idx), take_columns(M, idx))
        inner = max(1, int(2e7 // (rows * taken)))
        calls = {
            "index_select": partial(M.index_select, 1, idx),
            "gather": partial(take_columns, M, idx),
        }
        times = interleaved(calls, rounds=args.rounds, inner=inner)
        a, b = times["index_select"] * 1e3, times["gather"] * 1e3
        print(f"{f'{rows} x {cols}':>14} {taken:>6} {a:>13.3f} {b:>8.3f} {a / b:>6.2f}x")


if __name__ == "__main__":
    main()
