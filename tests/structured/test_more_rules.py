"""Rules for GroupNorm groups and transposed convolutions: zero one unit alone, compact,
and exactly that unit goes, with the outputs unchanged."""

from __future__ import annotations

import torch
from torch import nn

import shrinkage
from shrinkage.structured import SliceGroups, compact, neuron_groups


def zero_unit(group: SliceGroups, unit: int) -> None:
    """Every entry of ``unit`` of ``group`` to zero."""
    with torch.no_grad():
        for m in group.members:
            rows = torch.nonzero(m.unit == unit).reshape(-1)
            m.parameter.index_fill_(m.dim, rows, 0.0)


def by_label(groups: list[SliceGroups]) -> dict[str, SliceGroups]:
    return {g.label: g for g in groups}


def same_outputs(model: nn.Module, small: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), atol=1e-4, rtol=1e-4)


def test_a_groupnorm_group_is_one_unit_and_goes_whole() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.ReLU(), nn.Conv2d(8, 2, 1)
    ).eval()
    x = torch.randn(3, 1, 6, 6)
    (group,) = neuron_groups(model, 0.1, example_input=x)
    assert group.units == 4 and group.sizes().tolist() == [2 * (9 + 1 + 2 + 2)] * 4
    zero_unit(group, 1)
    original = model[0].weight.detach().clone()
    small, report = compact(model, x)
    assert report.kept["0"] == (3, 4)
    assert (small[1].num_groups, small[1].num_channels) == (3, 6)
    torch.testing.assert_close(small[0].weight, original[[0, 1, 4, 5, 6, 7]])
    same_outputs(model, small, x)


def test_transposed_convolution_units_on_both_sides() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(4, 6, 2, stride=2), nn.ReLU(), nn.Conv2d(6, 2, 1),
    ).eval()  # fmt: skip
    x = torch.randn(3, 1, 5, 5)
    groups = by_label(neuron_groups(model, 0.1, example_input=x))
    assert (groups["0"].units, groups["2"].units) == (4, 6)
    zero_unit(groups["0"], 2)  # an input channel of the transposed convolution
    zero_unit(groups["2"], 4)  # one of its outputs
    weight = model[2].weight.detach().clone()
    small, report = compact(model, x)
    assert report.kept == {"0": (3, 4), "2": (5, 6)}
    assert (small[2].in_channels, small[2].out_channels) == (3, 5)
    torch.testing.assert_close(small[2].weight, weight[[0, 1, 3]][:, [0, 1, 2, 3, 5]])
    same_outputs(model, small, x)


def test_a_constant_channel_into_a_transposed_convolution_is_kept() -> None:
    """A zero filter with a bias feeds a constant into the transposed convolution, whose
    output then varies by position: the unit stays, with the reason."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(4, 3, 3, stride=2)
    ).eval()
    with torch.no_grad():
        model[0].weight[1] = 0.0
        model[0].bias[1] = 0.5
    x = torch.randn(2, 1, 5, 5)
    small, report = compact(model, x)
    assert report.kept["0"] == (4, 4)
    (row,) = [r for r in report.groups if r.label == "0"]
    assert row.kept == {"a constant channel enters 2, whose output then varies by position": 1}
    same_outputs(model, small, x)


class SquareResidual(nn.Module):
    """``h + relu(fc2(h))``: fc2's outputs are tied to its own inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        return self.head(h + torch.relu(self.fc2(h)))


def test_a_unit_that_is_a_row_and_a_column_of_one_weight() -> None:
    torch.manual_seed(0)
    model = SquareResidual().eval()
    x = torch.randn(5, 6)
    main, columns = neuron_groups(model, 0.1, example_input=x)
    assert main.units == columns.units == 8
    assert [(m.name, m.dim) for m in columns.members] == [("fc2.weight", 1)]
    zero_unit(main, 3)
    zero_unit(columns, 3)
    weight = model.fc2.weight.detach().clone()
    small, report = compact(model, x)
    assert report.kept["fc1"] == (7, 8)
    keep = [0, 1, 2, 4, 5, 6, 7]
    torch.testing.assert_close(small.fc2.weight, weight[keep][:, keep])
    same_outputs(model, small, x)


def test_the_square_unit_stays_while_it_carries_a_signal() -> None:
    """Its columns zero but not its rows: the channel still carries ``fc1``'s output to the
    head, so it stays. Its rows zero but not its columns: the channel is a constant zero,
    which nothing needs, so it goes."""
    torch.manual_seed(0)
    model = SquareResidual().eval()
    x = torch.randn(5, 6)
    main, columns = neuron_groups(model, 0.1, example_input=x)
    zero_unit(columns, 3)
    small, report = compact(model, x)
    assert report.kept["fc1"] == (8, 8)
    same_outputs(model, small, x)
    model = SquareResidual().eval()
    main, columns = neuron_groups(model, 0.1, example_input=x)
    zero_unit(main, 3)
    small, report = compact(model, x)
    assert report.kept["fc1"] == (7, 8)
    same_outputs(model, small, x)


def test_training_the_square_units_removes_them_whole() -> None:
    torch.manual_seed(0)
    model = SquareResidual()
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    groups = neuron_groups(model, 0.05, example_input=x)
    reg = shrinkage.Regularizer(model, None, groups=groups)
    opt = shrinkage.Proximal(torch.optim.Adam(model.parameters(), lr=1e-2), reg)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    small, report = compact(model, x)
    kept, units = report.kept["fc1"]
    assert kept < units
    same_outputs(model, small, x)
