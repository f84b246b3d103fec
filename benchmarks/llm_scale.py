"""The structured recipe on Llama-architecture decoders from 10M to 1B parameters, on a CPU.

Each size runs in a fresh process: build ``LlamaForCausalLM`` from a config (random weights,
float32, untied LM head), then the stages of the recipe, each timed and its peak resident
memory sampled every 5 ms:

* ``group``: ``head_groups(model, lam, residual=True)`` (heads and residual width) and
  ``neuron_groups(model, lam, example_input=...)`` (MLP neurons, through the traced graph);
* ``prox steps``: three steps of ``Proximal(SGD)`` (``--optimizer adamw``: of
  ``Proximal(AdamW)``, whose prox takes AdamW's element-wise steps) on the next-token loss of
  one batch;
* ``compact``: a quarter of the residual channels, of the query heads and of the MLP neurons
  set to zero (what a long enough path would do), then ``compact`` (outputs checked);
* ``save``: ``save_sparse`` of the compact model;
* ``load``: ``load_sparse`` with the config, in a new process (as a server loads it), and
  its logits compared with the compact model's.

Peak memory is reported above the process's resident memory before the model was built (for
``load``, before loading), as a multiple of the original model's size (4 bytes a parameter),
so that a stage that grows faster than the model shows. The stages of one process run in
order, so a stage's peak includes what the earlier ones still hold (the original model
throughout).

    python benchmarks/llm_scale.py                       # 10M, 100M, 300M and 1B
    python benchmarks/llm_scale.py --sizes 10M 100M
    python benchmarks/llm_scale.py --sizes 100M 300M --optimizer adamw
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]
try:  # torchvision's registry wheel beside the CPU torch: see tests/torchvision_cpu.py
    from torchvision_cpu import import_torchvision

    import_torchvision()
except ImportError:
    pass

import transformers  # noqa: E402

import shrinkage  # noqa: E402

# hidden width, layers, heads, MLP width, vocabulary
SIZES: dict[str, tuple[int, int, int, int, int]] = {
    "10M": (256, 6, 8, 1024, 8192),
    "100M": (768, 12, 12, 2048, 16384),
    "300M": (1024, 20, 16, 2816, 16384),
    "1B": (2048, 16, 16, 5632, 32000),
}
TOKENS = 32
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident() -> int:
    """This process's resident memory, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Peak:
    """The highest resident memory seen by a thread sampling every 5 ms."""

    def __init__(self) -> None:
        self.value = resident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.value = max(self.value, resident())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.value, resident())


@contextmanager
def stage(rows: dict[str, Any], name: str, base: int) -> Iterator[None]:
    """Time the block and record its peak memory above ``base``."""
    peak = Peak()
    start = time.perf_counter()
    yield
    rows[name] = {"seconds": time.perf_counter() - start, "peak": peak.stop() - base}


def config(size: str) -> Any:
    hidden, layers, heads, mlp, vocab = SIZES[size]
    return transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, intermediate_size=mlp,
        max_position_embeddings=TOKENS, use_cache=False, tie_word_embeddings=False,
    )  # fmt: skip


def zero_quarter(groups: list[shrinkage.SliceGroups]) -> None:
    """Every fourth unit of every group to exactly zero."""
    with torch.no_grad():
        for g in groups:
            for m in g.members:
                rows = torch.nonzero((m.unit >= 0) & (m.unit % 4 == 0)).reshape(-1)
                m.parameter.index_fill_(m.dim, rows, 0.0)


OPTIMIZERS = {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}


def recipe(size: str, optimizer: str = "sgd") -> dict[str, Any]:
    """The stages on one size, in this process, the prox steps with ``optimizer``."""
    torch.manual_seed(0)
    base = resident()
    rows: dict[str, Any] = {}
    with stage(rows, "build", base):
        model = transformers.LlamaForCausalLM(config(size))
    n = sum(p.numel() for p in model.parameters())
    x = torch.randint(0, model.config.vocab_size, (1, TOKENS))
    with stage(rows, "group", base):
        groups = shrinkage.head_groups(model, 1e-4, residual=True)
        groups += shrinkage.neuron_groups(model, 1e-4, example_input=x)
    with stage(rows, "prox steps", base):
        reg = shrinkage.Regularizer(model, None, groups=groups)
        opt = shrinkage.Proximal(OPTIMIZERS[optimizer](model.parameters(), lr=1e-3), reg)
        for _ in range(3):
            opt.zero_grad()
            model(x, labels=x).loss.backward()
            opt.step()
        opt.zero_grad(set_to_none=True)
        del opt, reg
    model.eval()
    with stage(rows, "compact", base):
        zero_quarter(groups)
        small, report = shrinkage.compact(model, x)
    del groups
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "small.safetensors"
        with stage(rows, "save", base):
            shrinkage.save_sparse(small, path)
        with torch.no_grad():
            torch.save({"tokens": x, "logits": small(x).logits}, Path(tmp) / "expected.pt")
        del model, small
        loaded = json.loads(fresh_process("--load", size, tmp))
    rows["load"] = loaded["stage"]
    same = loaded["equal"]
    return {
        "size": size,
        "parameters": n,
        "parameters_after": report.parameters_after,
        "reloaded_equal": same,
        "stages": rows,
    }


def build(size: str) -> Any:
    return transformers.LlamaForCausalLM(config(size))


def load(size: str, folder: str) -> dict[str, Any]:
    """``load_sparse`` of the saved model, in this (fresh) process, as a server would; and
    whether its logits equal the saved ones."""
    base = resident()
    rows: dict[str, Any] = {}
    with stage(rows, "load", base):
        file = Path(folder) / "small.safetensors"
        back = shrinkage.load_sparse(file, architecture=lambda: build(size))
    expected = torch.load(Path(folder) / "expected.pt")
    with torch.no_grad():
        equal = bool(back(expected["tokens"]).logits.equal(expected["logits"]))
    return {"stage": rows["load"], "equal": equal}


def table(results: list[dict[str, Any]]) -> str:
    names = ["build", "group", "prox steps", "compact", "save", "load"]
    head = f"{'model':>6} {'params':>8} " + " ".join(f"{n:>20}" for n in names)
    lines = [head, " " * 16 + " ".join(f"{'s / peak x model':>20}" for _ in names)]
    for r in results:
        model_bytes = 4 * r["parameters"]
        cells = [
            f"{r['stages'][n]['seconds']:8.1f} / {r['stages'][n]['peak'] / model_bytes:5.2f}x"
            for n in names
        ]
        lines.append(
            f"{r['size']:>6} {r['parameters'] / 1e6:7.0f}M " + " ".join(f"{c:>20}" for c in cells)
        )
    return "\n".join(lines)


def run(
    sizes: list[str], optimizer: str, launch: Callable[[str, str], dict[str, Any]]
) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        result = launch(size, optimizer)
        results.append(result)
        print(table([result]).splitlines()[-1], flush=True)
    return results


def fresh_process(*args: str) -> str:
    """The last line this script prints when run with ``args`` in a new process."""
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def in_fresh_process(size: str, optimizer: str) -> dict[str, Any]:
    return json.loads(fresh_process("--one", size, "--optimizer", optimizer))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd")
    parser.add_argument("--one", choices=list(SIZES), help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=2, metavar=("SIZE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(recipe(args.one, args.optimizer)))
        return
    if args.load:
        print(json.dumps(load(*args.load)))
        return
    print(f"torch threads: {torch.get_num_threads()}, {TOKENS} tokens, float32, {args.optimizer}")
    results = run(args.sizes, args.optimizer, in_fresh_process)
    print(table(results))
    for r in results:
        print(f"{r['size']}: parameters {r['parameters']:,} -> {r['parameters_after']:,}, "
              f"reloaded logits equal: {r['reloaded_equal']}")  # fmt: skip


if __name__ == "__main__":
    main()
