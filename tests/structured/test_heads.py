"""Attention heads and transformer MLP neurons: exact zeros by proximal steps, and compaction
that removes them with the outputs unchanged (Hugging Face BERT, GPT-2 and a Llama-style
block with grouped-query attention, built small from configs)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

import shrinkage
from shrinkage import CompactionError, compact, count_macs, head_groups, neuron_groups
from units import train_to_zero_units, zero_units

transformers = pytest.importorskip("transformers")

VOCAB = 50


def bert() -> nn.Module:
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=48, max_position_embeddings=32,
    )  # fmt: skip
    return transformers.BertModel(config)


def gpt2() -> nn.Module:
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=32, use_cache=False,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return transformers.GPT2Model(config)


def llama() -> nn.Module:
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=48, max_position_embeddings=32, use_cache=False,
    )  # fmt: skip
    return transformers.LlamaModel(config)


BUILDERS: dict[str, Callable[[], nn.Module]] = {"bert": bert, "gpt2": gpt2, "llama": llama}


def tokens(n: int = 4, length: int = 12, seed: int = 0) -> Tensor:
    return torch.randint(0, VOCAB, (n, length), generator=torch.Generator().manual_seed(seed))


def hidden(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        return model(x).last_hidden_state


def head_counts(model: nn.Module) -> list[int]:
    return [layout.heads for _, layout in shrinkage.structured.heads.head_layouts(model)]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_proximal_steps_zero_heads_and_neurons_that_compact_removes(name: str) -> None:
    torch.manual_seed(0)
    model = BUILDERS[name]()
    x = tokens(16)
    # the neurons' groups hold the up-projection rows and down-projection columns; heads
    # hold every projection's slices: every other unit of each is scaled up, so that one
    # strength zeroes the others and leaves these
    target = torch.randn(16, 12, 32, generator=torch.Generator().manual_seed(1))
    groups = train_to_zero_units(model, x, lambda m, t: m(t).last_hidden_state, target)
    model.eval()
    heads = [int((g.norms() == 0).sum()) for g in groups if "heads" in g.label]
    neurons = [int((g.norms() == 0).sum()) for g in groups if "heads" not in g.label]
    assert sum(heads) > 0 and sum(neurons) > 0, (heads, neurons)
    assert sum(heads) < sum(g.units for g in groups if "heads" in g.label)  # some stay
    before = hidden(model, x)
    small, report = compact(model, x)
    assert type(small) is type(model)
    after = hidden(small, x)
    assert float((before - after).abs().max()) <= 1e-4 * max(1.0, float(before.abs().max()))
    assert report.parameters_after < report.parameters_before
    assert count_macs(small, x[:1]) < count_macs(model, x[:1])
    assert sum(head_counts(small)) < sum(head_counts(model))
    assert hidden(model, x).equal(before)  # the original is untouched


def zero_heads(model: nn.Module, layer: int, kind: str, heads: list[int]) -> None:
    """Zero ``heads`` of one layer's groups of ``kind`` ("query", "key/value" or "heads")."""
    groups = [g for g in head_groups(model, 1.0) if g.label.endswith(f"{kind} heads")]
    zero_units(groups[layer], heads)


@pytest.mark.parametrize(
    ("name", "zeroed", "left"), [("bert", [2], 3), ("gpt2", [2], 3), ("llama", [0, 2], 2)]
)
def test_zeroing_heads_removes_exactly_those_heads(name: str, zeroed: list[int], left: int) -> None:
    torch.manual_seed(0)
    model = BUILDERS[name]().eval()
    x = tokens()
    zero_heads(model, 1, "query" if name == "llama" else "", zeroed)
    small, report = compact(model, x)
    rows = {r.label: (r.units_before, r.units_after, r.kept) for r in report.groups}
    attention = [label for label, _ in shrinkage.structured.heads.head_layouts(model)]
    assert [rows[label] for label in attention] == [(4, 4, {}), (4, left, {})]
    layers = [layout for _, layout in shrinkage.structured.heads.head_layouts(small)]
    assert [layer.heads for layer in layers] == [4, left]
    if name == "llama":  # each key/value head keeps one of its two query heads
        assert [layer.kv_heads for layer in layers] == [2, 2]
        assert small.get_submodule("layers.1.self_attn").num_key_value_groups == 1
    for (n, p), (n0, p0) in zip(small.named_parameters(), model.named_parameters(), strict=True):
        assert n == n0
        if p.shape != p0.shape and "layer" in n and ".1." in n:  # the kept heads' slices
            dim = next(i for i in range(p.dim()) if p.shape[i] != p0.shape[i])
            assert p.shape[dim] == p0.shape[dim] // 4 * left
    torch.testing.assert_close(hidden(small, x), hidden(model, x), atol=1e-5, rtol=0)


def test_grouped_query_attention_keeps_a_key_value_head_one_query_head_reads() -> None:
    torch.manual_seed(0)
    model = llama().eval()
    x = tokens()
    zero_heads(model, 0, "query", [0])  # key/value head 0 serves query heads 0 and 1
    zero_heads(model, 0, "query", [2, 3])  # key/value head 1 loses both readers
    small, _ = compact(model, x)
    (layout,) = [lay for n, lay in shrinkage.structured.heads.head_layouts(small) if "0." in n]
    assert (layout.heads, layout.kv_heads) == (1, 1)
    attention = small.get_submodule("layers.0.self_attn")
    assert attention.num_key_value_groups == 1
    torch.testing.assert_close(hidden(small, x), hidden(model, x), atol=1e-5, rtol=0)


def test_grouped_query_attention_fills_groups_to_equal_size() -> None:
    torch.manual_seed(0)
    model = llama().eval()
    x = tokens()
    zero_heads(model, 0, "query", [0])  # head 1 lives with key/value head 0; 2 and 3 with 1
    small, report = compact(model, x)
    row = next(r for r in report.groups if r.label == "layers.0.self_attn")
    assert (row.units_before, row.units_after) == (4, 4)
    assert row.kept == {"kept for an equal number of query heads per key/value head": 1}
    torch.testing.assert_close(hidden(small, x), hidden(model, x), atol=1e-5, rtol=0)


def test_a_key_value_head_with_zero_values_silences_its_query_heads() -> None:
    torch.manual_seed(0)
    model = llama().eval()
    x = tokens()
    zero_heads(model, 1, "key/value", [1])
    small, _ = compact(model, x)
    (layout,) = [lay for n, lay in shrinkage.structured.heads.head_layouts(small) if "1." in n]
    assert (layout.heads, layout.kv_heads) == (2, 1)
    torch.testing.assert_close(hidden(small, x), hidden(model, x), atol=1e-5, rtol=0)


def test_a_layer_with_every_head_zero_keeps_one() -> None:
    model = bert().eval()
    x = tokens()
    zero_heads(model, 0, "", [0, 1, 2, 3])
    small, report = compact(model, x)
    row = next(r for r in report.groups if r.label == "encoder.layer.0.attention")
    assert row.units_after == 1 and row.kept == {"a layer keeps one head": 1}
    torch.testing.assert_close(hidden(small, x), hidden(model, x), atol=1e-5, rtol=0)


def test_head_groups_refuses_a_model_without_attention() -> None:
    with pytest.raises(CompactionError, match="Sequential has no attention layer"):
        head_groups(nn.Sequential(nn.Linear(3, 4)), 0.1)


def test_head_groups_value_is_the_group_lasso_of_the_slices() -> None:
    model = bert()
    (g0, _) = head_groups(model, 0.3)
    attention = model.encoder.layer[0].attention
    expected = torch.tensor(0.0)
    for h in range(4):
        rows = slice(8 * h, 8 * (h + 1))
        parts = [
            attention.self.query.weight[rows], attention.self.query.bias[rows],
            attention.self.key.weight[rows], attention.self.key.bias[rows],
            attention.self.value.weight[rows], attention.self.value.bias[rows],
            attention.output.dense.weight[:, rows],
        ]  # fmt: skip
        v = torch.cat([p.reshape(-1) for p in parts])
        expected = expected + v.numel() ** 0.5 * v.norm()
    torch.testing.assert_close(g0.value(), 0.3 * expected)


def zero_neurons(model: nn.Module, x: Tensor, every: int = 3) -> None:
    """Zero every ``every``-th MLP neuron unit of ``model``."""
    with torch.no_grad():
        for g in neuron_groups(model, 1.0, example_input=x[:2]):
            for m in g.members:
                rows = torch.nonzero((m.unit >= 0) & (m.unit % every == 0)).reshape(-1)
                m.parameter.index_fill_(m.dim, rows, 0.0)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_a_compacted_model_saves_and_loads_with_its_head_counts(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    model = BUILDERS[name]().eval()
    x = tokens()
    zero_heads(model, 1, "query" if name == "llama" else "", [1, 2, 3])
    zero_neurons(model, x)
    small, _ = compact(model, x)
    path = tmp_path / "small.safetensors"
    shrinkage.save_sparse(small, path)
    loaded = shrinkage.load_sparse(path, architecture=BUILDERS[name])
    assert isinstance(loaded, type(model))
    assert head_counts(loaded) == head_counts(small) != head_counts(model)
    torch.testing.assert_close(hidden(loaded, x), hidden(small, x), atol=0, rtol=0)


def test_a_checkpoint_whose_head_count_disagrees_with_its_tensors_is_refused(tmp_path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    model = bert().eval()
    x = tokens()
    zero_heads(model, 1, "", [2, 3])
    small, _ = compact(model, x)
    path = tmp_path / "small.safetensors"
    shrinkage.save_sparse(small, path)
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    metadata["modules"] = metadata["modules"].replace(
        '"num_attention_heads": 2, "all_head_size": 16',
        '"num_attention_heads": 4, "all_head_size": 32',
    )
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(ValueError, match=r"encoder\.layer\.1\.attention"):
        shrinkage.load_sparse(path, architecture=bert)


def test_the_head_pruning_example_runs(monkeypatch, capsys, tmp_path) -> None:
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "prune_heads.py"
    report = tmp_path / "heads.html"
    argv = [str(script), "--epochs", "3", "--path-epochs", "1", "--n-lambdas", "3"]
    argv += ["--report", str(report)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(script), run_name="__main__")  # exits non-zero if outputs change
    out = capsys.readouterr().out
    assert "chosen by 1se" in out and "reload 0.00e+00" in out
    page = report.read_text()
    cells = page.count('class="on"') + page.count('class="off"')
    assert cells == 2 * 4 + 2 * 64 + 32  # heads, MLP neurons, the pooler's neurons


def test_sparsity_shows_live_heads_per_layer() -> None:
    model = bert().eval()
    zero_heads(model, 1, "", [0, 2])
    report = shrinkage.sparsity(model, units=head_groups(model, 0.0))
    rows = [(u.label, u.live, u.row) for u in report.units]
    assert rows == [
        ("encoder.layer.0.attention heads", 4, "####"),
        ("encoder.layer.1.attention heads", 2, ".#.#"),
    ]
    assert report.heat_map() == [[1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]]
    assert "encoder.layer.1.attention heads     2  .#.#" in str(report)


def test_the_html_report_has_a_layer_by_head_heat_map() -> None:
    from html.parser import HTMLParser

    model = bert().eval()
    zero_heads(model, 1, "", [0, 2])
    page = shrinkage.sparsity(model, units=head_groups(model, 0.0)).to_html("heads")

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            css = dict(attrs).get("class")
            if tag == "tr":
                self.rows.append([])
            elif tag == "td" and css in ("on", "off") and self.rows:
                self.rows[-1].append(css)

    parser = Cells()
    parser.feed(page)
    assert [r for r in parser.rows if r] == [["on"] * 4, ["off", "on", "off", "on"]]
    assert "encoder.layer.1.attention heads" in page and "2 / 4" in page
