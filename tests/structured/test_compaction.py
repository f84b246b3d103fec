"""compact(): dead neurons and channels removed, outputs unchanged (1e-5), on real inputs."""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn

from shrinkage.structured import compact


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 10)
    )


def cnn() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(12 * 4 * 4, 10),
    )  # fmt: skip
    for m in model:  # non-trivial running statistics and affine parameters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    return model.eval()


def same_outputs(a: nn.Module, b: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        torch.testing.assert_close(b.eval()(x), a.eval()(x), atol=1e-5, rtol=1e-5)


def test_mlp_dead_rows_and_unread_columns(digits_x: torch.Tensor) -> None:
    model = mlp()
    with torch.no_grad():
        model[0].weight[[1, 5, 6, 20]] = 0.0  # zero incoming weights: constant relu(bias)
        model[0].bias[5] = 0.7  # a positive constant, which must be folded forward
        model[2].weight[:, [3, 9]] = 0.0  # columns the next layer never reads
        model[2].weight[[0, 15]] = 0.0  # second hidden layer: tanh(bias) constants
    original = copy.deepcopy(model)
    small, report = compact(model, digits_x)
    assert report.kept == {"0": (26, 32), "2": (14, 16)}
    assert small[0].weight.shape == (26, 64) and small[2].weight.shape == (14, 26)
    assert small[4].weight.shape == (10, 14)
    assert report.parameters_after < report.parameters_before
    same_outputs(original, small, digits_x)
    for p, q in zip(model.parameters(), original.parameters(), strict=True):
        assert torch.equal(p, q)  # the input model is left alone


def test_mlp_layer_with_every_neuron_zeroed_and_one_with_none(digits_x: torch.Tensor) -> None:
    model = mlp()
    with torch.no_grad():
        model[0].weight.zero_()  # every neuron of the first layer is dead
    small, report = compact(model, digits_x)
    assert report.kept["0"] == (1, 32)  # one constant unit stays: layers cannot be empty
    assert report.kept["2"] == (16, 16)  # a layer with no dead neuron keeps them all
    same_outputs(model, small, digits_x)


def test_cnn_with_batchnorm(digits_x: torch.Tensor) -> None:
    images = digits_x.reshape(-1, 1, 8, 8)
    model = cnn()
    with torch.no_grad():
        model[0].weight[[2, 7]] = 0.0  # dead filters before a padded conv
        model[3].weight[:, 4] = 0.0  # an input channel the next conv never reads
        model[3].weight[[1, 3, 10]] = 0.0  # dead channels before the flatten + linear head
    small, report = compact(model, images, fuse_batchnorm=False)
    assert report.kept["3"] == (9, 12)
    assert small[4].num_features == 9 and small[4].running_mean.shape == (9,)
    assert small[8].weight.shape == (10, 9 * 16)
    assert report.kept["0"][0] <= 7  # channel 4 (unread) goes at least
    same_outputs(model, small, images)


def test_other_models_are_traced_and_mixed_channels_are_kept(digits_x: torch.Tensor) -> None:
    """What the layer-by-layer path does not take goes through the traced graph: a LayerNorm's
    channels are pinned (kept, with the reason in the report), a grouped convolution loses
    whole groups, and the input model is unchanged."""

    class Identity(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    same, report = compact(Identity(), digits_x)
    assert type(same) is Identity and report.kept == {} and "a model input" in report.pinned
    model = nn.Sequential(nn.Linear(64, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    with torch.no_grad():
        model[0].weight[3] = 0.0
    state = copy.deepcopy(model.state_dict())
    small, report = compact(model, digits_x)
    assert small[0].out_features == 8 and any("layer_norm" in why for why in report.pinned)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    grouped = nn.Sequential(
        nn.Conv2d(1, 4, 1), nn.Conv2d(4, 4, 3, groups=2), nn.ReLU(), nn.Conv2d(4, 3, 1)
    )
    with torch.no_grad():
        grouped[1].weight[2:] = 0.0  # the second group's filters
        grouped[1].bias[2:] = 0.0
    x = torch.randn(3, 1, 5, 5)
    small, _ = compact(grouped, x)
    assert small[0].out_channels == 2 and small[3].in_channels == 2
    assert (small[1].groups, small[1].in_channels, small[1].out_channels) == (1, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(small(x), grouped(x), atol=1e-5, rtol=1e-5)


def test_batchnorm_is_fused_by_default(digits_x: torch.Tensor) -> None:
    images = digits_x.reshape(-1, 1, 8, 8)
    model = cnn()
    with torch.no_grad():
        model[3].weight[[1, 3, 10]] = 0.0
    small, report = compact(model, images)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in small)
    assert len(small) == len(model) - 2 and report.kept["3"] == (9, 12)
    same_outputs(model, small, images)


def test_compact_returns_a_plain_sequential_with_the_layer_names(digits_x: torch.Tensor) -> None:
    model = mlp()
    named = nn.Sequential(
        OrderedDict(zip(["fc1", "act1", "fc2", "act2", "head"], model, strict=True))
    )
    with torch.no_grad():
        named.fc1.weight[:5] = 0.0
    small, report = compact(named, digits_x, fuse_batchnorm=False)
    assert type(small) is nn.Sequential  # an ordinary module, not a subclass of it
    assert [name for name, _ in small.named_children()] == ["fc1", "act1", "fc2", "act2", "head"]
    assert small.fc1.out_features == 27 and report.kept["fc1"] == (27, 32)
    same_outputs(named, small, digits_x)


def test_a_sequential_subclass_keeps_its_forward_and_its_batchnorm(digits_x: torch.Tensor) -> None:
    """Folding drops layers, which only a plain ``nn.Sequential`` can lose: a subclass with
    a forward of its own comes back as its class, its BatchNorm in place."""

    class Doubled(nn.Sequential):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2.0 * super().forward(x)

    images = digits_x.reshape(-1, 1, 8, 8)
    model = Doubled(*cnn())
    with torch.no_grad():
        model[3].weight[[1, 3, 10]] = 0.0
    small, report = compact(model, images)
    assert type(small) is Doubled and isinstance(small[4], nn.BatchNorm2d)
    assert report.kept["3"] == (9, 12)
    same_outputs(model, small, images)
