"""Which parameters a Regularizer targets, its loss term, Keras-style layers and describe()."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import shrinkage
from shrinkage import L1, L2, GroupLasso, Regularizer, regularize_layer


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.conv = nn.Conv1d(8, 4, 3)
        self.norm = nn.BatchNorm1d(4)
        self.ln = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 3)
        self.head = nn.Linear(3, 2)
        self.scale = nn.Parameter(torch.ones(3, 3))  # a 2-D parameter of no layer
        self.pos = nn.Parameter(torch.zeros(1, 4))
        self.head.weight.requires_grad_(False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.conv(self.embed(idx).transpose(1, 2))
        h = self.ln(self.norm(h).mean(-1) + self.pos)
        return self.head(self.fc(h))

    def no_weight_decay(self) -> set[str]:
        return {"pos"}


def plain(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """The layer's output without running its hooks."""
    return nn.functional.linear(x, layer.weight, layer.bias)


def names(reg: Regularizer) -> list[str]:
    return [t.name for t in reg.targets]


def test_default_targets_are_weight_matrices_and_kernels_only() -> None:
    assert names(Regularizer(Net(), L1(0.1))) == ["conv.weight", "fc.weight"]


def test_embeddings_on_request() -> None:
    assert names(Regularizer(Net(), L1(0.1), embeddings=True)) == [
        "embed.weight",
        "conv.weight",
        "fc.weight",
    ]


def test_no_weight_decay_hook_is_honoured() -> None:
    class Hooked(Net):
        def no_weight_decay(self) -> set[str]:
            return {"fc.weight", "conv"}

    with pytest.raises(ValueError, match="selects no parameter"):
        Regularizer(Hooked(), L1(0.1))


def test_default_mask_is_a_mapping_over_named_parameters() -> None:
    model = Net()
    mask = shrinkage.default_mask(model)
    assert list(mask) == [n for n, _ in model.named_parameters()]
    assert {n for n, v in mask.items() if v} == {"conv.weight", "fc.weight"}


def test_mapping_first_match_wins_and_none_excludes() -> None:
    model = Net()
    reg = Regularizer(model, {"fc.weight": None, "fc.*": L2(0.5), "*.weight": L1(0.1)})
    chosen = {t.name: t.penalty for t in reg.targets}
    assert "fc.weight" not in chosen
    assert chosen["fc.bias"] == L2(0.5)
    assert chosen["conv.weight"] == L1(0.1) and chosen["norm.weight"] == L1(0.1)
    assert "head.weight" not in chosen  # frozen parameters are never targeted


def test_mapping_pattern_that_matches_nothing_warns() -> None:
    with pytest.warns(UserWarning, match="typo"):
        Regularizer(Net(), {"fc.weight": L1(0.1), "typo.*": L1(0.1)})


def test_penalty_is_the_sum_of_target_values() -> None:
    model = Net()
    reg = Regularizer(model, {"fc.weight": L1(0.1), "conv.weight": L2(0.2)})
    expected = 0.1 * model.fc.weight.abs().sum() + 0.2 * (model.conv.weight**2).sum()
    torch.testing.assert_close(reg.penalty(), expected)
    reg.penalty().backward()
    torch.testing.assert_close(model.fc.weight.grad, 0.1 * model.fc.weight.sign())


def test_layer_penalties_take_precedence_and_activity_is_batch_averaged() -> None:
    first = regularize_layer(nn.Linear(5, 4), kernel=L2(0.01), bias=L1(0.5), activity=L1(1e-2))
    model = nn.Sequential(first, nn.ReLU(), nn.Linear(4, 2))
    reg = Regularizer(model, L1(0.3))
    chosen = {t.name: t.penalty for t in reg.targets}
    assert chosen == {"0.weight": L2(0.01), "0.bias": L1(0.5), "2.weight": L1(0.3)}
    x = torch.randn(8, 5)
    model(x)
    activity = 1e-2 * plain(first, x).abs().sum() / 8  # what Keras adds: the batch mean
    params = 0.01 * (first.weight**2).sum() + 0.5 * first.bias.abs().sum()
    params = params + 0.3 * model[2].weight.abs().sum()
    torch.testing.assert_close(reg.penalty(), params + activity)


def test_activity_terms_come_from_the_last_forward_pass_only() -> None:
    layer = regularize_layer(nn.Linear(3, 3), activity=L2(1.0))
    model = nn.Sequential(layer)
    reg = Regularizer(model)
    model(torch.ones(2, 3))
    x = torch.randn(4, 3)
    model(x)
    torch.testing.assert_close(reg.penalty(), (plain(layer, x) ** 2).sum() / 4)


def test_activity_counts_every_call_in_one_forward() -> None:
    layer = regularize_layer(nn.Linear(3, 3), activity=L1(1.0))

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = layer

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(self.layer(x))

    model = Twice()
    reg = Regularizer(model)
    x = torch.randn(2, 3)
    model(x)
    h = plain(layer, x)
    expected = h.abs().sum() / 2 + plain(layer, h).abs().sum() / 2
    torch.testing.assert_close(reg.penalty(), expected)


def test_describe_lists_every_target_with_penalty_shape_and_size() -> None:
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    text = Regularizer(model, GroupLasso(0.1, "inputs")).describe()
    assert "0.weight" in text and "(256, 64)" in text and "16,384" in text
    assert "2.weight" in text and "(10, 256)" in text and "2,560" in text
    assert "GroupLasso(lam=0.1, groups='inputs')" in text
    assert "2 parameters, 18,944 entries regularized" in text


def test_state_dict_round_trip_restores_penalties() -> None:
    model = Net()
    saved = Regularizer(model, L1(0.7)).state_dict()
    reg = Regularizer(model, L1(0.1))
    reg.load_state_dict(saved)
    assert all(t.penalty == L1(0.7) for t in reg.targets)
