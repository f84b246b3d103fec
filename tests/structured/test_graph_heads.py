"""Attention heads found from the traced graph, without an adapter: Hugging Face DistilBERT
(``q_lin / k_lin / v_lin / out_lin``) and a hand-written attention on
``scaled_dot_product_attention``. One head zeroed alone is removed alone, the outputs
unchanged; a forward that holds a fixed head count keeps its heads, and the report says so."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from shrinkage import CompactionError, compact, head_groups
from shrinkage.structured.graph_heads import graph_head_layouts
from shrinkage.structured.heads import head_layouts
from units import zero_units

transformers = pytest.importorskip("transformers")

WIDTH, HEADS = 32, 4


class Attention(nn.Module):
    """Self-attention on ``scaled_dot_product_attention``; ``fixed``: the forward splits the
    projections by a stored head count instead of by the head size."""

    def __init__(self, fixed: bool = False, matmul: bool = False) -> None:
        super().__init__()
        self.heads, self.fixed, self.matmul = HEADS, fixed, matmul
        self.query, self.key, self.value = (nn.Linear(WIDTH, WIDTH) for _ in range(3))
        self.out = nn.Linear(WIDTH, WIDTH)

    def split(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        shape = (b, n, self.heads, -1) if self.fixed else (b, n, -1, WIDTH // HEADS)
        return x.view(*shape).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = (self.split(f(x)) for f in (self.query, self.key, self.value))
        if self.matmul:
            scores = torch.matmul(q, k.transpose(-1, -2)) / (WIDTH // HEADS) ** 0.5
            a = torch.matmul(torch.softmax(scores, dim=-1), v)
        else:
            a = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.out(a.transpose(1, 2).reshape(*x.shape[:2], -1))


class Block(nn.Module):
    def __init__(self, fixed: bool = False, matmul: bool = False) -> None:
        super().__init__()
        self.embed = nn.Linear(8, WIDTH)
        self.attention = Attention(fixed, matmul)
        self.head = nn.Linear(WIDTH, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = self.embed(x)
        return self.head(h + self.attention(h))


def distilbert() -> nn.Module:
    config = transformers.DistilBertConfig(
        vocab_size=50, dim=WIDTH, n_layers=2, n_heads=HEADS, hidden_dim=48,
        max_position_embeddings=32,
    )  # fmt: skip
    return transformers.DistilBertModel(config)


def outputs(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        out = model(x)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out


CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[], Tensor], str]] = {
    "distilbert": (
        distilbert,
        lambda: torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(0)),
        "transformer.layer.1.attention",
    ),
    "sdpa": (Block, lambda: torch.randn(2, 9, 8), "attention"),
    "matmul-softmax-matmul": (
        lambda: Block(matmul=True),
        lambda: torch.randn(2, 9, 8),
        "attention",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_zero_head_found_from_the_graph_is_removed_alone(name: str) -> None:
    build, example, layer = CASES[name]
    torch.manual_seed(0)
    model = build().eval()
    x = example()
    assert not list(head_layouts(model))  # no adapter takes it
    groups = head_groups(model, 1.0, x)
    assert [g.units for g in groups] == [HEADS] * len(groups)
    group = next(g for g in groups if g.label == f"{layer} heads")
    zero_units(group, [2])
    before = outputs(model, x)
    small, report = compact(model, x)
    row = next(r for r in report.groups if r.label == layer)
    assert (row.units_before, row.units_after) == (HEADS, HEADS - 1)
    attention = small.get_submodule(layer)
    projections = [m for m in attention.children() if isinstance(m, nn.Linear)]
    assert sorted(p.weight.shape for p in projections) == sorted(
        [(WIDTH - WIDTH // HEADS, WIDTH)] * 3 + [(WIDTH, WIDTH - WIDTH // HEADS)]
    )
    after = outputs(small, x)
    assert float((before - after).abs().max()) <= 1e-4 * max(1.0, float(before.abs().max()))


def test_a_fixed_head_count_keeps_the_heads_and_says_why() -> None:
    torch.manual_seed(0)
    model = Block(fixed=True).eval()
    x = torch.randn(2, 9, 8)
    (group,) = head_groups(model, 1.0, x)
    zero_units(group, [1])
    small, report = compact(model, x)
    row = next(r for r in report.groups if r.label == "attention")
    assert row.units_after == HEADS
    assert "fixed head count" in next(iter(row.kept))
    torch.testing.assert_close(outputs(small, x), outputs(model, x), atol=1e-5, rtol=0)


def test_without_an_example_the_refusal_says_how_to_find_them() -> None:
    with pytest.raises(CompactionError, match="pass example_input"):
        head_groups(distilbert(), 1.0)


def test_the_graph_finds_the_heads_the_bert_adapter_names() -> None:
    """Oracle: on BERT's eager attention (matmul, softmax, matmul), the layouts read from the
    graph are the adapter's, slot for slot."""
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=WIDTH, num_hidden_layers=2, num_attention_heads=HEADS,
        intermediate_size=48, max_position_embeddings=32, attn_implementation="eager",
    )  # fmt: skip
    model = transformers.BertModel(config).eval()
    x = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(0))
    named = {name: layout for name, layout in head_layouts(model)}
    found = graph_head_layouts(model, (x,))
    assert len(found) == len(named) == 2
    for module, layout in found:  # the adapter takes the module that holds all four
        adapter = named[module]
        assert (layout.heads, layout.head_dim) == (adapter.heads, adapter.head_dim)
        pairs = (
            (layout.query, adapter.query), (layout.keys, adapter.keys),
            (layout.values, adapter.values), (layout.output, adapter.output),
        )  # fmt: skip
        for mine, theirs in pairs:
            assert set(mine) == set(theirs)


def test_finding_heads_leaves_every_module_in_its_mode() -> None:
    model = Block().train()
    model.attention.eval()
    head_groups(model, 1.0, torch.randn(2, 9, 8))
    assert model.training and model.embed.training and not model.attention.training
