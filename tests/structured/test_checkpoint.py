"""Sparse checkpoints: exact round trip, smaller than dense, and no code execution on load."""

from __future__ import annotations

import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from shrinkage.structured import load_sparse, save_sparse


def sparse_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            layer.weight.mul_(torch.rand_like(layer.weight) < 0.1)  # 90 % zeros
    return model


def test_round_trip_is_exact_and_smaller(tmp_path: Path) -> None:
    model = sparse_mlp()
    report = save_sparse(model, tmp_path / "m.pt", input_shape=(64,))
    assert report.bytes < 0.3 * report.dense_bytes
    assert report.nonzeros < 0.15 * report.entries
    back = load_sparse(tmp_path / "m.pt")
    assert isinstance(back, nn.Sequential)
    for (k, v), (k2, v2) in zip(model.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    x = torch.randn(5, 64)
    assert torch.equal(model(x), back(x))


def test_cnn_with_batchnorm_and_other_models(tmp_path: Path) -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 64, 3),
    ).eval()  # fmt: skip
    model[1].running_mean.fill_(0.3)
    save_sparse(model, tmp_path / "c.pt")
    back = load_sparse(tmp_path / "c.pt")
    x = torch.randn(2, 1, 8, 8)
    assert isinstance(back, nn.Module) and torch.equal(model(x), back(x))

    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(100))

    state = load_sparse(save_sparse(Custom(), tmp_path / "s.pt").path)
    assert isinstance(state, dict) and torch.equal(state["w"], torch.zeros(100))


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch PWNED",))


def test_a_malicious_checkpoint_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.save({"format": "shrinkage-sparse/1", "tensors": _Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="refused to load"):
        load_sparse(tmp_path / "evil.pt")
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(ValueError, match="refused to load"):
        load_sparse(tmp_path / "raw.pkl")
    assert not (tmp_path / "PWNED").exists()
    torch.save({"some": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a shrinkage checkpoint"):
        load_sparse(tmp_path / "other.pt")


def test_compact_command(tmp_path: Path, capsys, monkeypatch) -> None:
    from shrinkage.cli import main

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        model[0].weight[:10] = 0.0
        model[0].bias[:10] = 0.0
    save_sparse(model, tmp_path / "m.pt", input_shape=(8,))
    assert main(["compact", str(tmp_path / "m.pt"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["parameters_after"] < result["parameters_before"]
    assert result["units_kept"] == {"0": [6, 16]}
    small = load_sparse(result["out"])
    x = torch.randn(20, 8)
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=1e-5)
    assert not (tmp_path / "shrinkage-runs.db").exists()
    save_sparse(model, tmp_path / "noshape.pt")
    assert main(["compact", str(tmp_path / "noshape.pt")]) == 2
    assert "--input-shape is needed" in capsys.readouterr().err
    assert main(["compact", str(tmp_path / "noshape.pt"), "--input-shape", "8"]) == 0
    torch.save({"x": 1}, tmp_path / "plain.pt")
    assert main(["compact", str(tmp_path / "plain.pt")]) == 2
    assert "not a shrinkage checkpoint" in capsys.readouterr().err


def test_layer_names_survive_the_round_trip(tmp_path: Path) -> None:
    model = sparse_mlp()
    named = nn.Sequential(OrderedDict(zip(["hidden", "act", "out"], model, strict=True)))
    back = load_sparse(save_sparse(named, tmp_path / "n.pt").path)
    assert type(back) is nn.Sequential
    assert [name for name, _ in back.named_children()] == ["hidden", "act", "out"]
    x = torch.randn(5, 64)
    assert torch.equal(named(x), back(x))


def test_a_file_of_the_earlier_format_still_loads_and_says_so() -> None:
    """data/sequential-v1.pt was written by the earlier save_sparse (a torch.save payload) from
    an nn.Sequential whose tensors data/sequential-v1.json lists."""
    data = Path(__file__).parent / "data"
    path = data / "sequential-v1.pt"
    assert path.read_bytes()[:2] == b"PK"  # a zip: torch.save's format, not safetensors
    with pytest.warns(FutureWarning, match=r"earlier format \(shrinkage-sparse/1\)"):
        back = load_sparse(path)
    assert isinstance(back, nn.Sequential)
    assert [type(m) for m in back] == [nn.Linear, nn.ReLU, nn.Linear]
    expected = json.loads((data / "sequential-v1.json").read_text())
    state = back.state_dict()
    assert list(state) == list(expected)
    for name, values in expected.items():
        assert torch.equal(state[name], torch.tensor(values, dtype=torch.float32)), name
    assert int((state["0.weight"][1] == 0).sum()) == 4  # its zeros, where they were


def test_every_model_is_saved_in_one_format(tmp_path: Path) -> None:
    from shrinkage.structured.safefile import is_safetensors

    save_sparse(sparse_mlp(), tmp_path / "seq.pt")
    save_sparse(nn.Bilinear(3, 3, 2), tmp_path / "other.pt")
    assert is_safetensors(tmp_path / "seq.pt") and is_safetensors(tmp_path / "other.pt")
