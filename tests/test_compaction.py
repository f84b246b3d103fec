"""compact(): dead neurons and channels removed, outputs unchanged (1e-5), on real inputs."""

from __future__ import annotations

import copy
from collections import OrderedDict

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from shrinkage.compaction import CompactionError, LeanSequential, compact


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    X, _ = load_digits(return_X_y=True)
    return torch.tensor((X - X.mean(0)) / (X.std(0) + 1e-8), dtype=torch.float32)


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


def test_mlp_dead_rows_and_unread_columns(digits: torch.Tensor) -> None:
    model = mlp()
    with torch.no_grad():
        model[0].weight[[1, 5, 6, 20]] = 0.0  # zero incoming weights: constant relu(bias)
        model[0].bias[5] = 0.7  # a positive constant, which must be folded forward
        model[2].weight[:, [3, 9]] = 0.0  # columns the next layer never reads
        model[2].weight[[0, 15]] = 0.0  # second hidden layer: tanh(bias) constants
    original = copy.deepcopy(model)
    small, report = compact(model, digits)
    assert report.kept == {0: (26, 32), 2: (14, 16)}
    assert small[0].weight.shape == (26, 64) and small[2].weight.shape == (14, 26)
    assert small[4].weight.shape == (10, 14)
    assert report.parameters_after < report.parameters_before
    same_outputs(original, small, digits)
    for p, q in zip(model.parameters(), original.parameters(), strict=True):
        assert torch.equal(p, q)  # the input model is left alone


def test_mlp_layer_with_every_neuron_zeroed_and_one_with_none(digits: torch.Tensor) -> None:
    model = mlp()
    with torch.no_grad():
        model[0].weight.zero_()  # every neuron of the first layer is dead
    small, report = compact(model, digits)
    assert report.kept[0] == (1, 32)  # one constant unit stays: layers cannot be empty
    assert report.kept[2] == (16, 16)  # a layer with no dead neuron keeps them all
    same_outputs(model, small, digits)


def test_cnn_with_batchnorm(digits: torch.Tensor) -> None:
    images = digits.reshape(-1, 1, 8, 8)
    model = cnn()
    with torch.no_grad():
        model[0].weight[[2, 7]] = 0.0  # dead filters before a padded conv
        model[3].weight[:, 4] = 0.0  # an input channel the next conv never reads
        model[3].weight[[1, 3, 10]] = 0.0  # dead channels before the flatten + linear head
    small, report = compact(model, images, fuse_batchnorm=False)
    assert report.kept[3] == (9, 12)
    assert small[4].num_features == 9 and small[4].running_mean.shape == (9,)
    assert small[8].weight.shape == (10, 9 * 16)
    assert report.kept[0][0] <= 7  # channel 4 (unread) goes at least
    same_outputs(model, small, images)


def test_unsupported_models_are_refused_unchanged(digits: torch.Tensor) -> None:
    class Residual(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    with pytest.raises(CompactionError, match=r"nn\.Sequential"):
        compact(Residual(), digits)
    model = nn.Sequential(nn.Linear(64, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(CompactionError, match=r"layer 1 \(LayerNorm\) is not supported"):
        compact(model, digits)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    grouped = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Flatten())
    with pytest.raises(CompactionError, match="grouped convolution"):
        compact(grouped, torch.zeros(1, 2, 5, 5))


def test_batchnorm_is_fused_by_default(digits: torch.Tensor) -> None:
    images = digits.reshape(-1, 1, 8, 8)
    model = cnn()
    with torch.no_grad():
        model[3].weight[[1, 3, 10]] = 0.0
    small, report = compact(model, images)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in small)
    assert len(small) == len(model) - 2 and report.kept[3] == (9, 12)
    same_outputs(model, small, images)


def test_lean_sequential_computes_what_sequential_computes(digits: torch.Tensor) -> None:
    """Direct ``forward`` calls: the same outputs and gradients bit for bit, in train mode
    (Dropout drawing the same mask) and eval mode; hooks still fire; scripting, tracing and
    torch.fx see the layers as modules."""
    torch.manual_seed(0)
    plain = nn.Sequential(
        nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10)
    )  # fmt: skip
    lean = LeanSequential(*copy.deepcopy(list(plain)))
    x = digits[:50]
    for train in (True, False):
        plain.train(train)
        lean.train(train)
        torch.manual_seed(1)
        a = plain(x)
        torch.manual_seed(1)
        b = lean(x)
        assert torch.equal(a, b)
        a.square().sum().backward()
        b.square().sum().backward()
        for p, q in zip(plain.parameters(), lean.parameters(), strict=True):
            assert p.grad is not None and q.grad is not None and torch.equal(p.grad, q.grad)
    seen: list[str] = []
    handle = lean[0].register_forward_hook(lambda m, i, o: seen.append("layer"))
    lean(x)
    handle.remove()
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: seen.append(type(m).__name__)
    )
    lean(x)
    handle.remove()
    lean(x)
    assert seen == ["layer", "Linear", "ReLU", "Dropout", "Linear", "LeanSequential"]

    class Counted(nn.Identity):
        def __call__(self, *args: object, **kwargs: object) -> torch.Tensor:
            seen.append("own __call__")
            return super().__call__(*args, **kwargs)

    lean.append(Counted())
    assert torch.equal(lean(x), plain(x)) and seen[-1] == "own __call__"
    del lean[-1]
    lean.eval()
    assert torch.equal(torch.jit.script(lean)(x), lean(x))
    with torch.jit.optimized_execution(False):
        assert torch.equal(torch.jit.trace(lean, x)(x), lean(x))
    graph = torch.fx.symbolic_trace(lean).graph
    assert [n.op for n in graph.nodes].count("call_module") == 4


@pytest.mark.parametrize(
    ("layers", "shape"),
    [
        ([nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 3, bias=False)], (5, 12)),
        ([nn.ReLU(inplace=True), nn.Flatten(0, 1)], (4, 3, 2)),
        (
            [nn.Conv1d(3, 4, 3, stride=2, padding=1, dilation=1), nn.MaxPool1d(2, ceil_mode=True)],
            (2, 3, 13),
        ),
        ([nn.Conv1d(3, 4, 3, padding="same", padding_mode="reflect"), nn.ReLU()], (2, 3, 9)),
        (
            [nn.Conv1d(4, 4, 3, groups=2, bias=False), nn.MaxPool1d(3, stride=1, padding=1)],
            (2, 4, 9),
        ),
        (
            [
                nn.Conv2d(2, 5, 3, stride=(2, 1), padding=(1, 2), dilation=2),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ],
            (3, 2, 9, 8),
        ),
        ([nn.Conv2d(2, 4, 3, padding="same", padding_mode="circular"), nn.Flatten()], (3, 2, 6, 6)),
        (
            [nn.Conv2d(2, 4, 2, padding="valid", groups=2), nn.MaxPool2d((2, 1), dilation=(1, 2))],
            (1, 2, 7, 9),
        ),
        ([nn.MaxPool2d(2, return_indices=True)], (1, 2, 4, 4)),
    ],
)
def test_lean_sequential_runs_each_layer_as_its_forward_does(
    layers: list[nn.Module], shape: tuple[int, ...]
) -> None:
    """The layers run without their ``forward`` give what ``forward`` gives, bit for bit, in
    every configuration of their arguments, with the same gradients."""
    torch.manual_seed(0)
    plain = nn.Sequential(*layers)
    lean = LeanSequential(*copy.deepcopy(layers))
    x = torch.randn(shape)
    if any(getattr(m, "return_indices", False) for m in layers):
        a, b = plain(x), lean(x)
        assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
        return
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    # an in-place ReLU may not modify a leaf; start from a computed tensor as a model would
    a, b = plain(xa * 1.0), lean(xb * 1.0)
    assert torch.equal(a, b)
    a.square().sum().backward()
    b.square().sum().backward()
    assert xa.grad is not None and xb.grad is not None and torch.equal(xa.grad, xb.grad)
    for p, q in zip(plain.parameters(), lean.parameters(), strict=True):
        assert p.grad is not None and q.grad is not None and torch.equal(p.grad, q.grad)
    with torch.inference_mode():
        assert torch.equal(plain(x.clone()), lean(x.clone()))


def test_lean_sequential_overwrites_only_tensors_it_allocated() -> None:
    """With autograd off a ReLU after a Linear or Conv reuses that layer's output; the input and
    a tensor a hook has seen are never overwritten."""
    torch.manual_seed(0)
    plain = nn.Sequential(
        nn.ReLU(), nn.Linear(6, 8), nn.ReLU(), nn.Flatten(), nn.ReLU(), nn.Linear(8, 4), nn.ReLU()
    )
    lean = LeanSequential(*copy.deepcopy(list(plain)))
    x = torch.randn(5, 6)
    kept = x.clone()
    seen: list[torch.Tensor] = []
    with torch.no_grad():
        assert torch.equal(lean(x), plain(x)) and torch.equal(x, kept)
        lean[5].register_forward_hook(lambda m, i, o: seen.append(o))
        out = lean(x)
    assert torch.equal(out, plain(x)) and torch.equal(seen[0], plain[:6](x))
    assert (seen[0] < 0).any()  # the hooked layer's output kept its negative entries


def test_lean_sequential_calls_an_overridden_forward() -> None:
    """A subclass of a layer it runs directly keeps its own ``forward``."""

    class Doubled(nn.Linear):
        def forward(self, input: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(input)

    torch.manual_seed(0)
    layer = Doubled(4, 3)
    x = torch.randn(2, 4)
    assert torch.equal(
        LeanSequential(layer)(x), 2 * nn.functional.linear(x, layer.weight, layer.bias)
    )


def test_lean_sequential_call_honours_its_own_hooks_and_compile() -> None:
    """Calling the container skips ``Module.__call__`` only when that would do nothing more:
    its own hooks fire (a pre-hook's new input is used), ``input=`` works, ``compile()`` in
    place (of the container or of one layer) runs the compiled code, and ``torch.compile`` and
    ``torch.fx`` see through a container nested in another model."""
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    lean = LeanSequential(*copy.deepcopy(list(plain)))
    x = torch.randn(6, 4)
    seen: list[str] = []
    post = lean.register_forward_hook(lambda m, i, o: seen.append("after"))
    assert torch.equal(lean(x), plain(x)) and seen == ["after"]
    post.remove()
    pre = lean.register_forward_pre_hook(lambda m, args: (2 * args[0],))
    assert torch.equal(lean(x), plain(2 * x))
    pre.remove()
    assert torch.equal(lean(input=x), plain(x)) and torch.equal(lean(x), plain(x))

    def counting(graph: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> object:
        seen.append(f"compiled {sum(n.op == 'call_function' for n in graph.graph.nodes)}")
        return graph.forward

    seen.clear()
    lean.compile(backend=counting)
    assert torch.allclose(lean(x), plain(x)) and seen == ["compiled 3"]
    lean._compiled_call_impl = None  # back to eager

    class Halved(nn.Module):  # defined here, so that torch.compile traces its forward
        def forward(self, input: torch.Tensor) -> torch.Tensor:
            return input / 2

    lean.append(Halved())
    lean[3].compile(backend=counting)
    assert torch.allclose(lean(x), plain(x) / 2) and seen == ["compiled 3", "compiled 1"]
    del lean[3]

    def located(graph: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> object:
        for node in graph.graph.nodes:  # the innermost module each operation was traced in
            if node.op == "call_function":
                path = list(node.meta["nn_module_stack"].values())[-1][0]
                seen.append(".".join(path.split(".")[-2:]))
        return graph.forward

    outer = nn.Sequential(nn.Identity(), lean)
    seen.clear()
    assert torch.allclose(torch.compile(outer, backend=located)(x), plain(x))
    assert seen == ["1.0", "1.1", "1.2"]  # each layer called as a module
    graph = torch.fx.symbolic_trace(outer).graph
    assert [n.target for n in graph.nodes if n.op == "call_module"] == ["0", "1.0", "1.1", "1.2"]


def test_compact_returns_a_lean_sequential_with_the_layer_names(digits: torch.Tensor) -> None:
    model = mlp()
    named = nn.Sequential(
        OrderedDict(zip(["fc1", "act1", "fc2", "act2", "head"], model, strict=True))
    )
    with torch.no_grad():
        named.fc1.weight[:5] = 0.0
    small, report = compact(named, digits, fuse_batchnorm=False)
    assert isinstance(small, LeanSequential)
    assert [name for name, _ in small.named_children()] == ["fc1", "act1", "fc2", "act2", "head"]
    assert small.fc1.out_features == 27 and report.kept[0] == (27, 32)
    same_outputs(named, small, digits)
