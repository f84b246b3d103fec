"""Units of any traced network: coupling through residual adds, concatenation, depthwise
convolutions, channel shuffles and broadcast multiplies; one unit zeroed is exactly that unit
removed, with the outputs unchanged; dead channels' constants folded where exact."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

import shrinkage
from shrinkage import ArgumentError, CompactionError, compact, count_macs, neuron_groups
from shrinkage.structured.trace import Unit, trace


def bn(c: int) -> nn.BatchNorm2d:
    layer = nn.BatchNorm2d(c)
    with torch.no_grad():  # non-trivial statistics and affine maps
        layer.running_mean.uniform_(-0.5, 0.5)
        layer.running_var.uniform_(0.5, 2.0)
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-0.5, 0.5)
    return layer


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = bn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = bn(cout)
        self.down = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.down is None else self.down(x)))


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn = bn(8)
        self.layer1 = nn.Sequential(Block(8, 8, 1), Block(8, 8, 1))
        self.layer2 = nn.Sequential(Block(8, 16, 2))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer2(self.layer1(F.relu(self.bn(self.stem(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Dense(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 3, 3, padding=1)
        self.c, self.head = nn.Conv2d(7, 5, 1), nn.Linear(5, 3)

    def forward(self, x: Tensor) -> Tensor:
        x0 = F.relu(self.a(x))
        y = F.relu(self.c(torch.cat([x0, F.relu(self.b(x0))], 1)))
        return self.head(y.mean((2, 3)))


class Depthwise(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pw, self.bn1 = nn.Conv2d(1, 6, 1, bias=False), bn(6)
        self.dw, self.bn2 = nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False), bn(6)
        self.pj, self.head = nn.Conv2d(6, 4, 1), nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self.bn2(self.dw(F.relu6(self.bn1(self.pw(x))))))
        return self.head(self.pj(y).mean((2, 3)))


class Shuffle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(1, 8, 1), nn.Conv2d(8, 6, 3), nn.Conv2d(6, 4, 1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        y = self.a(x)
        n, ch, h, w = y.shape
        y = y.view(n, 2, ch // 2, h, w).transpose(1, 2).reshape(n, ch, h, w)
        return self.head(self.c(F.relu(self.b(y))).mean((2, 3)))


class SqueezeExcite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.fc1, self.fc2 = nn.Conv2d(6, 2, 1), nn.Conv2d(2, 6, 1)
        self.out, self.head = nn.Conv2d(6, 4, 1), nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.conv(x))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(y.mean((2, 3), keepdim=True)))))
        return self.head(self.out(y * s).mean((2, 3)))


@pytest.fixture(scope="module")
def images(digit_images: tuple[Tensor, Tensor]) -> Tensor:
    return digit_images[0][:64]


def unit_with(model: nn.Module, x: Tensor, key: tuple[str, int], index: int) -> Unit:
    units = [u for u in trace(model, x).units if index in u.members.get(key, [])]
    assert len(units) == 1, units
    return units[0]


def zero(model: nn.Module, unit: Unit) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for (name, dim), slices in unit.members.items():
            if name in params:
                params[name].index_fill_(dim, torch.tensor(slices), 0.0)


def removed_exactly(model: nn.Module, x: Tensor, unit: Unit) -> nn.Module:
    """Compact ``model`` with ``unit`` zeroed: every member loses exactly its slices, nothing
    else changes size, and the outputs are the same."""
    zero(model, unit)
    before = {k: v.shape for k, v in model.state_dict().items()}
    small, report = compact(model, x)
    assert type(small) is type(model)
    after = small.state_dict()
    assert set(after) >= set(before)
    for name, shape in before.items():
        expected = list(shape)
        for (member, dim), slices in unit.members.items():
            if member == name:
                expected[dim] -= len(slices)
        assert list(after[name].shape) == expected, name
    with torch.no_grad():
        a, b = model.eval()(x), small(x)
    a, b = (a.logits, b.logits) if hasattr(a, "logits") else (a, b)
    scale = max(1.0, float(a.abs().max()))  # float sums over fewer channels: 1e-5 of the scale
    torch.testing.assert_close(b, a, atol=1e-5 * scale, rtol=1e-5)
    assert report.parameters_after < report.parameters_before
    return small


def test_residual_add_across_a_downsample_ties_both_branches(images: Tensor) -> None:
    torch.manual_seed(0)
    model = TinyResNet().eval()
    unit = unit_with(model, images, ("layer2.0.down.0.weight", 0), 5)
    for key in [
        ("layer2.0.conv2.weight", 0), ("layer2.0.bn2.weight", 0), ("layer2.0.bn2.bias", 0),
        ("layer2.0.down.1.weight", 0), ("layer2.0.down.1.running_mean", 0), ("fc.weight", 1),
    ]:  # fmt: skip
        assert unit.members[key] == [5], key
    stream = unit_with(model, images, ("stem.weight", 0), 2)  # through two identity blocks
    assert stream.members[("layer1.1.conv1.weight", 1)] == [2]
    assert stream.members[("layer2.0.down.0.weight", 1)] == [2]
    assert stream.members[("layer1.0.bn2.bias", 0)] == [2]
    zero(model, stream)
    original = copy.deepcopy(model)
    small = removed_exactly(model, images, stream)
    assert small.layer1[1].conv2.out_channels == 7 and small.layer2[0].down[0].in_channels == 7
    for p, q in zip(model.parameters(), original.parameters(), strict=True):
        assert torch.equal(p, q)  # compact changed nothing of the input model but the zeros


def test_zeroed_stream_channel_is_zero_everywhere_it_appears(images: Tensor) -> None:
    torch.manual_seed(1)
    model = TinyResNet().eval()
    zero(model, unit_with(model, images, ("stem.weight", 0), 3))
    seen = []
    for name in ["bn", "layer1.0", "layer1.1"]:
        model.get_submodule(name).register_forward_hook(lambda m, i, o: seen.append(o[:, 3]))
    with torch.no_grad():
        model(images)
    assert len(seen) == 3 and all(bool((s == 0).all()) for s in seen)


def test_concatenation_offsets(images: Tensor) -> None:
    torch.manual_seed(0)
    model = Dense().eval()
    late = unit_with(model, images, ("b.weight", 0), 1)
    assert late.members[("c.weight", 1)] == [5]
    early = unit_with(model, images, ("a.weight", 0), 2)
    assert early.members[("b.weight", 1)] == [2] and early.members[("c.weight", 1)] == [2]
    small = removed_exactly(model, images, late)
    assert small.c.in_channels == 6


def test_depthwise_convolution_ties_its_input_and_output(images: Tensor) -> None:
    torch.manual_seed(0)
    model = Depthwise().eval()
    unit = unit_with(model, images, ("pw.weight", 0), 2)
    assert unit.members[("dw.weight", 0)] == [2] and unit.members[("pj.weight", 1)] == [2]
    small = removed_exactly(model, images, unit)
    assert (small.dw.groups, small.dw.in_channels, small.dw.out_channels) == (5, 5, 5)


def test_channel_shuffle_pins_the_shuffled_channels(images: Tensor) -> None:
    torch.manual_seed(0)
    model = Shuffle().eval()
    graph = trace(model, images)
    assert not any(("a.weight", 0) in u.members for u in graph.units)
    assert any("splits or merges channels" in why for why in graph.pinned)
    removed_exactly(model, images, unit_with(model, images, ("b.weight", 0), 4))


def test_broadcast_multiply_ties_the_gate_to_its_channel(images: Tensor) -> None:
    torch.manual_seed(0)
    model = SqueezeExcite().eval()
    unit = unit_with(model, images, ("conv.weight", 0), 3)
    for key in [("fc1.weight", 1), ("fc2.weight", 0), ("fc2.bias", 0), ("out.weight", 1)]:
        assert unit.members[key] == [3], key
    small = removed_exactly(model, images, unit)
    assert small.fc2.out_channels == 5 and small.out.in_channels == 5


class Slimmed(nn.Module):
    """conv -> BatchNorm -> ReLU into a 1x1 convolution, then into a zero-padded 3x3 one."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 6, 3, padding=1), bn(6)
        self.c2, self.b2 = nn.Conv2d(6, 5, 1, bias=False), bn(5)
        self.c3, self.head = nn.Conv2d(5, 4, 3, padding=1), nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))))
        return self.head(self.c3(y).mean((2, 3)))


def test_constants_of_dead_channels_are_folded_where_exact(images: Tensor) -> None:
    torch.manual_seed(0)
    model = Slimmed().eval()
    with torch.no_grad():  # network slimming: zero BatchNorm scales, shifts left as they are
        model.b1.weight[[1, 4]] = 0.0
        model.b1.bias[[1, 4]] = torch.tensor([0.7, -0.3])  # relu: 0.7 and 0
        model.b2.weight[[0, 2]] = 0.0
        model.b2.bias[[0, 2]] = torch.tensor([0.5, -0.2])  # relu: 0.5 and 0
    small, report = compact(model, images)
    assert small.c2.in_channels == 4  # 0.7 folded into c2's new bias, exact (1x1, no padding)
    assert small.c3.in_channels == 4  # 0 needs no folding; 0.5 would meet c3's zero padding
    (row,) = [r for r in report.groups if r.label == "c2"]
    assert (row.units_before, row.units_after) == (5, 4)
    assert row.kept == {"a constant channel enters c3, whose output then varies by position": 1}
    with torch.no_grad():
        torch.testing.assert_close(small(images), model(images), atol=1e-5, rtol=1e-5)


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(64, 8), nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = self.a(x.flatten(1))
        return self.b(h if bool(h.sum() > 0) else -h)


class HardCoded(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4 * 36, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(F.relu(self.conv(x)).view(-1, 4 * 36))


def test_refusals_name_the_reason_and_change_nothing(images: Tensor) -> None:
    model = DataDependent()
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(CompactionError, match=r"torch\.export could not trace DataDependent"):
        compact(model, images)
    with pytest.raises(CompactionError, match="nothing was changed"):
        neuron_groups(model, 0.1, example_input=images)
    hard = HardCoded()
    with torch.no_grad():
        hard.conv.weight[1] = 0.0
        hard.conv.bias[1] = 0.0
    with pytest.raises(CompactionError, match=r"fails on the example input.*nothing was changed"):
        compact(hard, images)
    assert hard.conv.out_channels == 4 and hard.conv.weight.shape[0] == 4
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])
    with pytest.raises(ArgumentError, match="example_input"):
        neuron_groups(TinyResNet(), 0.1)


def test_proximal_training_zeroes_whole_units_that_compact_removes(
    images: Tensor, digit_images: tuple[Tensor, Tensor]
) -> None:
    X, y = digit_images
    torch.manual_seed(0)
    model = TinyResNet()
    groups = neuron_groups(model, 4e-3, example_input=X[:8])
    reg = shrinkage.Regularizer(model, None, groups=groups)
    opt = shrinkage.Proximal(torch.optim.Adam(model.parameters(), lr=1e-2), reg)
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        model.train()
        for idx in torch.randperm(len(X), generator=gen).split(64):
            opt.zero_grad()
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    zeros = sum(int((g.norms() == 0).sum()) for g in groups)
    assert zeros > 0
    small, report = compact(model, X[:256])
    assert (
        sum(a for a, _ in report.kept.values()) <= sum(b for _, b in report.kept.values()) - zeros
    )
    assert all(after > 0 for after, _ in report.kept.values())  # not a collapsed network
    assert count_macs(small, X[:1]) < count_macs(model, X[:1])
    with torch.no_grad():
        full, compacted = model(X), small(X)
    torch.testing.assert_close(compacted, full, atol=1e-4, rtol=1e-4)
    # the same predictions wherever the top two logits are not within the tolerance above
    top2 = full.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-3
    assert torch.equal(compacted.argmax(1)[clear], full.argmax(1)[clear])


@pytest.mark.parametrize("model_class", [TinyResNet, Dense, Depthwise, SqueezeExcite])
def test_unit_macs_are_what_removing_the_unit_saves(images: Tensor, model_class: type) -> None:
    from shrinkage.structured.macs import unit_macs

    torch.manual_seed(0)
    model = model_class().eval()
    units = trace(model, images).units
    costs = unit_macs(model, units, images)
    full = count_macs(model, images[:1])
    for u in range(0, len(units), max(1, len(units) // 5)):
        pruned = copy.deepcopy(model)
        zero(pruned, units[u])
        small, _ = compact(pruned, images)
        assert full - count_macs(small, images[:1]) == pytest.approx(float(costs[u])), u


def test_mac_weighting_scales_each_unit_by_its_cost(images: Tensor) -> None:
    model = TinyResNet().eval()
    plain = neuron_groups(model, 1.0, example_input=images)
    weighted = neuron_groups(model, 1.0, example_input=images, weighting="macs")
    factors = torch.cat([g.penalty.factor for g in weighted])
    assert float(factors.mean()) == pytest.approx(1.0, rel=1e-6)
    assert len(set(factors.tolist())) > 1  # units at 8x8 cost more than those at 4x4
    for p, w in zip(plain, weighted, strict=True):
        torch.testing.assert_close(w.weights(), p.weights() * w.penalty.factor)
        expected = (w.penalty.factor * p.weights() * p.norms()).sum()
        torch.testing.assert_close(w.value().double(), expected, rtol=1e-5, atol=0)
    with pytest.raises(ArgumentError, match="weighting"):
        neuron_groups(model, 1.0, example_input=images, weighting="flops")
    with pytest.raises(ArgumentError, match="example_input"):
        neuron_groups(
            nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), 1.0, weighting="macs"
        )


def test_latency_weighting_shares_each_layers_measured_time_among_its_units() -> None:
    from shrinkage.structured.macs import unit_latency

    model = nn.Sequential(
        nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8), nn.ReLU(), nn.Linear(8, 4)
    )
    x = torch.randn(64, 16)
    units = trace(model, x).units
    costs = unit_latency(model, units, x, repeats=3)
    assert costs.shape == (40,) and bool((costs > 0).all()) and bool(costs.isfinite().all())
    for layer in (costs[:32], costs[32:]):  # alike units of one layer share its time alike
        torch.testing.assert_close(layer, layer[:1].expand_as(layer), rtol=1e-12, atol=0)
    groups = neuron_groups(model, 1.0, example_input=x, weighting="latency")
    factors = torch.cat([g.penalty.factor for g in groups])
    assert float(factors.mean()) == pytest.approx(1.0, rel=1e-6)


def test_count_macs_closed_forms() -> None:
    assert count_macs(nn.Linear(10, 20), torch.randn(3, 10)) == 3 * 10 * 20
    conv = nn.Conv2d(4, 6, 3)  # 6x6 outputs of 4*3*3 MACs each, per output channel
    assert count_macs(conv, torch.randn(2, 4, 8, 8)) == 2 * 6 * 6 * 6 * 4 * 9
    depthwise = nn.Conv2d(4, 4, 3, groups=4)
    assert count_macs(depthwise, torch.randn(1, 4, 8, 8)) == 4 * 6 * 6 * 9


def test_the_resnet_example_runs() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "resnet_channels.py"
    out = subprocess.run(
        [sys.executable, str(script), "--epochs", "2"], capture_output=True, text=True, check=True
    ).stdout
    assert "compacted: SmallResNet" in out and "loaded back identical: True" in out
