"""Checkpoints of compacted non-Sequential models (safetensors, no pickles) and crafted files
that must be refused before they allocate what they claim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from test_graph_compaction import TinyResNet, unit_with, zero
from torch import nn

from shrinkage import compact, load_sparse, save_sparse


def compacted() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = TinyResNet().eval()
    x = torch.randn(16, 1, 8, 8)
    for key, index in [(("stem.weight", 0), 1), (("layer2.0.conv1.weight", 0), 3)]:
        zero(model, unit_with(model, x, key, index))
    small, _ = compact(model, x)
    return small, x


def test_a_compacted_model_round_trips_through_safetensors(tmp_path: Path) -> None:
    small, x = compacted()
    report = save_sparse(small, tmp_path / "small.safetensors", input_shape=(1, 8, 8))
    assert report.bytes > 0
    with safe_open(str(tmp_path / "small.safetensors"), framework="pt") as f:
        modules = json.loads(f.metadata()["modules"])
    assert modules["layer1.0.conv1"]["in_channels"] == 7
    back = load_sparse(tmp_path / "small.safetensors", architecture=TinyResNet)
    assert type(back) is TinyResNet and back.layer2[0].conv1.out_channels == 15
    with torch.no_grad():
        assert torch.equal(back(x), small(x))
    state = load_sparse(tmp_path / "small.safetensors")  # no architecture: the state dict
    assert isinstance(state, dict) and torch.equal(state["fc.weight"], small.fc.weight)
    assert (tmp_path / "small.safetensors").read_bytes()[8:9] == b"{"  # no pickle anywhere


def test_wrong_architecture_and_damaged_files_name_the_layer(tmp_path: Path) -> None:
    small, _ = compacted()
    path = tmp_path / "small.safetensors"
    save_sparse(small, path)
    with pytest.raises(ValueError, match="holds a TinyResNet, but architecture builds a Linear"):
        load_sparse(path, architecture=lambda: nn.Linear(2, 2))
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    modules = json.loads(metadata["modules"])
    modules["layer1.0.conv1"]["out_channels"] = 100_000  # the attributes lie about the shapes
    save_file(
        tensors, str(tmp_path / "a.safetensors"), {**metadata, "modules": json.dumps(modules)}
    )
    with pytest.raises(ValueError, match=r"layer 'layer1\.0\.conv1': weight has shape"):
        load_sparse(tmp_path / "a.safetensors", architecture=TinyResNet)
    records = json.loads(metadata["tensors"])
    records["fc.weight"]["shape"] = [100_000, 100_000]  # the record lies about a tensor
    save_file(
        tensors, str(tmp_path / "b.safetensors"), {**metadata, "tensors": json.dumps(records)}
    )
    with pytest.raises(ValueError, match=r"fc.weight: recorded shape \[100000, 100000\]"):
        load_sparse(tmp_path / "b.safetensors", architecture=TinyResNet)


CRAFT = """
import importlib, resource, sys, torch
from shrinkage import load_sparse
extra = {}
if len(sys.argv) > 2:  # module:class of the architecture
    module, name = sys.argv[2].split(":")
    extra["architecture"] = getattr(importlib.import_module(module), name)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_sparse(sys.argv[1], **extra)
    outcome = "loaded"
except ValueError as error:
    outcome = str(error)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(outcome)
print((after - before) * 1024)
"""


def _load_in_fresh_process(path: Path, *arch: str) -> tuple[str, int]:
    """What ``load_sparse`` says in a new interpreter, and how much its peak memory grew."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run(
        [sys.executable, "-c", CRAFT, str(path), *arch],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    outcome, grown = out.stdout.strip().rsplit("\n", 1)
    return outcome, int(grown)


def test_a_crafted_sequential_checkpoint_cannot_exhaust_memory(tmp_path: Path) -> None:
    """The architecture records Linear(100000, 100000) (40 GB), the tensors are 1000 x 2000
    (8 MB): refused before anything that size is allocated."""
    weight = torch.randn(1000, 2000)
    payload = {
        "format": "shrinkage-sparse/1",
        "architecture": [
            {
                "type": "Linear",
                "name": "0",
                "args": {"in_features": 100_000, "out_features": 100_000, "bias": True},
            },
        ],
        "input_shape": None,
        "tensors": {"0.weight": weight, "0.bias": torch.zeros(1000)},
    }
    path = tmp_path / "crafted.pt"
    torch.save(payload, path)
    outcome, grown = _load_in_fresh_process(path)
    assert "layer 0 (Linear) records 0.weight of shape [100000, 100000]" in outcome
    assert grown < 10 * path.stat().st_size, (grown, path.stat().st_size)


def test_a_crafted_safetensors_checkpoint_cannot_exhaust_memory(tmp_path: Path) -> None:
    small, _ = compacted()
    path = tmp_path / "small.safetensors"
    save_sparse(small, path)
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    tensors["fc.weight"] = torch.randn(2000, 1000)  # 8 MB stored
    records = json.loads(metadata["tensors"])
    records["fc.weight"]["shape"] = [100_000, 100_000]  # 40 GB claimed
    crafted = tmp_path / "crafted.safetensors"
    save_file(tensors, str(crafted), {**metadata, "tensors": json.dumps(records)})
    outcome, grown = _load_in_fresh_process(crafted, "test_graph_compaction:TinyResNet")
    assert "fc.weight: recorded shape [100000, 100000]" in outcome
    assert grown < 10 * crafted.stat().st_size, (grown, crafted.stat().st_size)


def test_a_mask_that_disagrees_with_its_shape_is_refused(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(1000, 2000), nn.ReLU(), nn.Linear(2000, 2))
    with torch.no_grad():
        model[0].weight[:, ::3] = 0.0
    from shrinkage.structured.safefile import pack_nonzeros

    packed = pack_nonzeros(model[0].weight.detach())
    assert packed is not None  # stored as a bit mask and the nonzeros
    linear = {"type": "Linear", "args": {"bias": True}}
    payload = {  # the earlier format, still read: a torch.save of plain tensors
        "format": "shrinkage-sparse/1",
        "architecture": [
            {
                **linear,
                "name": "0",
                "args": {"in_features": 1000, "out_features": 2000, "bias": True},
            },
            {"type": "ReLU", "name": "1", "args": {}},
            {**linear, "name": "2", "args": {"in_features": 2000, "out_features": 2, "bias": True}},
        ],
        "input_shape": None,
        "tensors": {
            # the mask is 250 kB: it encodes 2,000,000 entries, not 10^10
            "0.weight": {"shape": [100_000, 100_000], "mask": packed[0], "values": packed[1]},
            **{k: v for k, v in model.state_dict().items() if k != "0.weight"},
        },
    }
    torch.save(payload, tmp_path / "crafted.pt")
    outcome, grown = _load_in_fresh_process(tmp_path / "crafted.pt")
    assert "0.weight: a mask of 250000 bytes" in outcome
    assert grown < 10 * (tmp_path / "crafted.pt").stat().st_size
    small, _ = compacted()
    save_sparse(small, tmp_path / "s.safetensors")
    with safe_open(str(tmp_path / "s.safetensors"), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    tensors["fc.weight/mask"] = torch.zeros(10**6, dtype=torch.uint8)  # 8e6 entries claimed
    tensors["fc.weight/values"] = torch.zeros(0)
    tensors.pop("fc.weight")
    records = json.loads(metadata["tensors"])
    records["fc.weight"].update(encoding="bitmask", shape=[10, 15])
    crafted = tmp_path / "crafted.safetensors"
    save_file(tensors, str(crafted), {**metadata, "tensors": json.dumps(records)})
    outcome, grown = _load_in_fresh_process(crafted, "test_graph_compaction:TinyResNet")
    assert "fc.weight: recorded shape [10, 15] does not match its stored mask" in outcome
    assert grown < 10 * crafted.stat().st_size
