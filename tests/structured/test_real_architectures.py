"""Lossless compaction of real architectures: torchvision's and Hugging Face's CNNs, built
from their constructors and configs (no weights downloaded).

A proximal group-lasso step on every group (its strength set so that about a third of each
layer's units fall below the threshold) zeroes whole units; ``compact`` must then return an
instance of the same class, smaller in parameters and MACs, with the same outputs."""

from __future__ import annotations

import copy

import pytest
import torch
from test_graph_compaction import removed_exactly
from torch import nn

from shrinkage import compact, count_macs, neuron_groups
from shrinkage.structured import SliceGroups
from shrinkage.structured.trace import trace
from torchvision_cpu import import_torchvision

try:
    models = import_torchvision().models
except ImportError:  # torchvision is a test dependency; without it these tests are skipped
    models = None


def randomize_statistics(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.3)


def prune_a_third(groups: list[SliceGroups]) -> int:
    """One proximal step per group with the strength at which a third of its units go to
    exactly zero; returns how many did."""
    zeros = 0
    for g in groups:  # unit u is zeroed when ||g_u|| <= step * lam * sqrt(size_u)
        threshold = g.norms() / (g.lam * g.sizes().sqrt())
        g.prox_([float(torch.quantile(threshold, 1 / 3)) * (1 + 1e-6)] * len(g.members))
        zeros += int((g.norms() == 0).sum())
    return zeros


def one_unit_at_a_time(model: nn.Module, x: torch.Tensor, samples: int = 2) -> None:
    """Zero sampled units alone (on a copy each): exactly that unit goes, outputs unchanged."""
    units = trace(model, x).units
    picks = torch.randperm(len(units), generator=torch.Generator().manual_seed(0))[:samples]
    for i in picks.tolist():
        removed_exactly(copy.deepcopy(model), x, units[i])


def check_lossless(model: nn.Module, x: torch.Tensor, samples: int = 2) -> nn.Module:
    model.eval()
    randomize_statistics(model)
    one_unit_at_a_time(model, x, samples)
    groups = neuron_groups(model, 1.0, example_input=x)
    assert prune_a_third(groups) > 0
    small, report = compact(model, x)
    assert type(small) is type(model)
    assert report.parameters_after < report.parameters_before
    assert count_macs(small, x[:1]) < count_macs(model, x[:1])
    with torch.no_grad():
        a, b = model(x), small(x)
    a, b = (a.logits, b.logits) if hasattr(a, "logits") else (a, b)
    torch.testing.assert_close(b, a, atol=1e-5 * max(1.0, float(a.abs().max())), rtol=1e-4)
    return small


VISION = [
    "resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
    "densenet121", "vgg11_bn", "regnet_x_400mf", "shufflenet_v2_x0_5",
]  # fmt: skip


@pytest.mark.skipif(models is None, reason="torchvision is not installed")
@pytest.mark.parametrize("name", VISION)
def test_torchvision_models_compact_losslessly(name: str) -> None:
    torch.manual_seed(0)
    small = check_lossless(models.get_model(name, weights=None), torch.randn(2, 3, 64, 64))
    if name.startswith("resnet"):
        assert isinstance(small.layer3[1].conv2, nn.Conv2d)  # the user's paths still work


def hugging_face(name: str) -> nn.Module:
    transformers = pytest.importorskip("transformers")
    small = {"hidden_sizes": [16, 32, 48, 64], "depths": [1, 2, 1, 1], "num_labels": 5}
    if name == "resnet":
        config = transformers.ResNetConfig(embedding_size=16, layer_type="bottleneck", **small)
        return transformers.ResNetForImageClassification(config)
    if name == "regnet":
        config = transformers.RegNetConfig(embedding_size=16, groups_width=8, **small)
        return transformers.RegNetForImageClassification(config)
    if name == "convnext":
        return transformers.ConvNextForImageClassification(transformers.ConvNextConfig(**small))
    config = transformers.MobileNetV2Config(depth_multiplier=0.35, image_size=64, num_labels=5)
    return transformers.MobileNetV2ForImageClassification(config)


@pytest.mark.parametrize("name", ["resnet", "mobilenet_v2", "regnet", "convnext"])
def test_hugging_face_models_compact_losslessly(name: str) -> None:
    torch.manual_seed(0)
    small = check_lossless(hugging_face(name), torch.randn(2, 3, 64, 64))
    assert small.config is not None


@pytest.mark.slow
@pytest.mark.skipif(models is None, reason="torchvision is not installed")
def test_every_torchvision_classifier() -> None:
    """Every classification builder: compacted losslessly or refused with CompactionError;
    never a wrong output (an output that differs although ``compact`` returned)."""
    handled, refused, wrong = [], {}, {}
    for name in models.list_models(module=models):
        torch.manual_seed(0)
        model = models.get_model(name, weights=None)
        size = 299 if name == "inception_v3" else 224
        try:
            check_lossless(model, torch.randn(1, 3, size, size), samples=1)
            handled.append(name)
        except AssertionError as error:
            wrong[name] = str(error)[:200]
        except Exception as error:
            refused[name] = f"{type(error).__name__}: {str(error)[:200]}"
        del model
    total = len(handled) + len(refused) + len(wrong)
    print(f"handled {len(handled)} of {total}; refused {refused}; wrong {wrong}")
    assert not wrong
    assert len(handled) >= 77, refused
