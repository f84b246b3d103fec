"""A network with nothing to group is told why: neuron_groups warns with the top reasons, and
explain lists every one."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor, nn

from shrinkage.structured import explain, neuron_groups


class Normed(nn.Module):
    """Every hidden channel goes through a norm (a LayerNorm by default), whose statistics
    mix them all."""

    def __init__(self, norm: type[nn.Module] = nn.LayerNorm) -> None:
        super().__init__()
        self.a, self.norm, self.b = nn.Linear(4, 6), norm(6), nn.Linear(6, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(self.norm(self.a(x)))


def test_an_empty_group_list_comes_with_its_reasons() -> None:
    with pytest.warns(UserWarning, match=r"found no unit of Normed .*: layer_norm .*explain\("):
        assert neuron_groups(Normed(), 0.1, example_input=torch.zeros(2, 4)) == []
    reasons = explain(Normed(), torch.zeros(2, 4))
    first = next(iter(reasons))
    assert first.startswith("layer_norm (aten.layer_norm.default) computes")
    assert first.endswith("[in norm]")  # the layer that pins them
    assert reasons["a model input"] == 1 and reasons["a model output"] == 2
    assert list(reasons.values()) == sorted(reasons.values(), reverse=True)


def test_a_network_with_units_is_not_warned_about() -> None:
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (groups,) = neuron_groups(model, 0.1, example_input=torch.zeros(2, 4))
    assert groups.units == 6


class Shuffled(nn.Module):
    """A channel shuffle between two convolutions: its reshape mixes the channels."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 1), nn.Conv2d(4, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.a(x)
        n, c, hh, ww = h.shape
        h = h.view(n, 2, c // 2, hh, ww).transpose(1, 2).reshape(n, c, hh, ww)
        return self.b(h)


@pytest.mark.parametrize(
    ("model", "example", "layer"),
    [
        (Normed(), torch.zeros(2, 4), "norm"),
        (Shuffled(), torch.zeros(2, 1, 3, 3), ""),
        (Normed(nn.RMSNorm), torch.zeros(2, 4), "norm"),
    ],
    ids=["layernorm", "channel-shuffle", "rmsnorm"],
)
def test_every_model_without_units_is_warned_about(
    model: nn.Module, example: Tensor, layer: str
) -> None:
    """Each is warned about, and ``explain`` gives a reason for its hidden channels beyond
    the model's own inputs and outputs, naming the layer where an op of one pins them."""
    with pytest.warns(UserWarning, match="found no unit"):
        assert neuron_groups(model, 0.1, example_input=example) == []
    reasons = explain(model, example)
    hidden = [why for why in reasons if why not in ("a model input", "a model output")]
    assert hidden, reasons
    if layer:
        assert any(why.endswith(f"[in {layer}]") for why in hidden), reasons
