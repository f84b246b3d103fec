"""Attention heads of PyTorch's own transformer modules (``nn.MultiheadAttention``,
``nn.TransformerEncoder``) and of torchvision's, timm's and Hugging Face's vision
transformers: exact zeros by proximal steps, compaction without output change, and
checkpoints; and :class:`HeadAttention`, what a ``nn.MultiheadAttention`` that lost heads
becomes, against ``nn.MultiheadAttention`` itself."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

import shrinkage
from shrinkage import CompactionError, compact, count_macs, head_groups
from shrinkage.structured.adapters import head_layouts
from shrinkage.structured.attention import HeadAttention
from units import train_to_zero_units, zero_units


class Encoder(nn.Module):
    """Tokens ``[N, L, 8]`` through a ``nn.TransformerEncoder`` (sequence-first inside when
    ``batch_first`` is false), mean-pooled to 3 logits."""

    def __init__(self, batch_first: bool = True, layers: int = 2) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.embed = nn.Linear(8, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 48, dropout=0.0, batch_first=batch_first)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=batch_first)
        self.head = nn.Linear(32, 3)

    def forward(self, x: Tensor, padding: Tensor | None = None) -> Tensor:
        h = self.embed(x)
        if not self.batch_first:
            h = h.transpose(0, 1)
        h = self.encoder(h, src_key_padding_mask=padding)
        if not self.batch_first:
            h = h.transpose(0, 1)
        return self.head(h.mean(dim=1))


def encoder() -> nn.Module:
    return Encoder(batch_first=True)


def encoder_sequence_first() -> nn.Module:
    return Encoder(batch_first=False)


def torchvision_vit() -> nn.Module:
    from torchvision.models import VisionTransformer

    return VisionTransformer(
        image_size=16, patch_size=4, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=48,
        num_classes=5,
    )  # fmt: skip


def timm_vit() -> nn.Module:
    timm = pytest.importorskip("timm")
    return timm.models.VisionTransformer(
        img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=4, mlp_ratio=1.5,
        num_classes=5, qkv_bias=True,
    )  # fmt: skip


def hugging_face_vit() -> nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=48, num_labels=5,
    )  # fmt: skip
    return transformers.ViTForImageClassification(config)


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "encoder": encoder,
    "encoder_sequence_first": encoder_sequence_first,
    "torchvision_vit": torchvision_vit,
    "timm_vit": timm_vit,
    "hugging_face_vit": hugging_face_vit,
}


def inputs(name: str, n: int = 4, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    if "vit" in name:
        return torch.randn(n, 3, 16, 16, generator=g)
    return torch.randn(n, 10, 8, generator=g)


def forward(model: nn.Module, x: Tensor) -> Tensor:
    out = model(x)
    return out if isinstance(out, Tensor) else out.logits  # a Hugging Face output


def run(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        return forward(model, x)


def heads_of(model: nn.Module) -> list[int]:
    return [layout.heads for _, layout in head_layouts(model)]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_proximal_steps_zero_heads_and_neurons_that_compact_removes(name: str) -> None:
    torch.manual_seed(0)
    model = BUILDERS[name]()
    x = inputs(name, 16)
    groups = train_to_zero_units(model, x, forward, torch.randn_like(run(model, x)))
    model.eval()
    heads = sum(int((g.norms() == 0).sum()) for g in groups if "heads" in g.label)
    neurons = sum(int((g.norms() == 0).sum()) for g in groups if "heads" not in g.label)
    assert heads > 0 and neurons > 0, (heads, neurons)
    assert heads < sum(g.units for g in groups if "heads" in g.label)
    before = run(model, x)
    small, report = compact(model, x)
    assert type(small) is type(model)
    after = run(small, x)
    assert float((before - after).abs().max()) <= 1e-4 * max(1.0, float(before.abs().max()))
    assert report.parameters_after < report.parameters_before
    assert count_macs(small, x[:1]) < count_macs(model, x[:1])
    assert sum(heads_of(small)) == sum(heads_of(model)) - heads
    assert run(model, x).equal(before)  # the original is untouched
    small.train()  # the compacted model trains on
    forward(small, x).sum().backward()
    assert all(p.grad is not None for p in small.parameters() if p.requires_grad)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_removing_heads_of_a_multihead_attention_keeps_the_outputs_and_the_call() -> None:
    torch.manual_seed(0)
    model = encoder().eval()
    zero_units(head_groups(model, 1.0)[1], [0, 3])
    x = inputs("encoder")
    small, report = compact(model, x)
    attention = small.encoder.layers[1].self_attn
    assert isinstance(attention, HeadAttention)
    assert (attention.num_heads, attention.head_dim, attention.embed_dim) == (2, 8, 32)
    assert attention.source_heads.tolist() == [1, 2]
    assert isinstance(small.encoder.layers[0].self_attn, nn.MultiheadAttention)  # all alive
    rows = {r.label: (r.units_before, r.units_after) for r in report.groups}
    assert rows["encoder.layers.0.self_attn"] == (4, 4)
    assert rows["encoder.layers.1.self_attn"] == (4, 2)
    # the original's fused nested-tensor path (eval, no grad, a padding mask) gives the same
    # tokens (it leaves the padded positions at zero)
    padding = torch.zeros(4, 10, dtype=torch.bool)
    padding[0, 6:] = True
    padding[2, 8:] = True
    with torch.no_grad():
        h = model.embed(x)
        a = model.encoder(h, src_key_padding_mask=padding)
        b = small.encoder(h, src_key_padding_mask=padding)
        assert a.is_nested is False and bool((a[padding] == 0).all())  # the fused path ran
        torch.testing.assert_close(b[~padding], a[~padding], atol=1e-5, rtol=0)
        torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_a_compacted_model_saves_and_loads(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    model = BUILDERS[name]().eval()
    zero_units(head_groups(model, 1.0)[0], [1, 2, 3])
    x = inputs(name)
    small, _ = compact(model, x)
    path = tmp_path / "small.safetensors"
    shrinkage.save_sparse(small, path)
    loaded = shrinkage.load_sparse(path, architecture=BUILDERS[name])
    assert type(loaded) is type(model)
    assert heads_of(loaded) == heads_of(small) == [1, 4]
    torch.testing.assert_close(run(loaded, x), run(small, x), atol=0, rtol=0)
    if name in ("encoder", "encoder_sequence_first", "torchvision_vit"):
        # a MultiheadAttention that lost heads comes back as a HeadAttention
        (attention,) = [m for m in loaded.modules() if isinstance(m, HeadAttention)]
        assert attention.source_heads.tolist() == [0]


def test_multihead_attention_with_bias_kv_is_named_in_the_refusal() -> None:
    model = nn.Sequential(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(
        CompactionError, match=r"not supported: 0: nn\.MultiheadAttention with add_bias_kv"
    ):
        head_groups(model, 0.1)


def test_timm_attention_with_a_norm_over_all_heads_is_named_in_the_refusal() -> None:
    timm = pytest.importorskip("timm")
    attention = timm.layers.Attention(32, 4, scale_norm=True, norm_layer=nn.LayerNorm)
    with pytest.raises(CompactionError, match="not supported: 0: attention with scale_norm"):
        head_groups(nn.Sequential(attention), 0.1)


def test_head_groups_of_multihead_attention_are_its_slices() -> None:
    attention = nn.MultiheadAttention(12, 3, kdim=5, vdim=7)
    (group,) = head_groups(nn.Sequential(attention), 0.5)
    expected = torch.tensor(0.0)
    for h in range(3):
        rows = slice(4 * h, 4 * (h + 1))
        bias = attention.in_proj_bias.reshape(3, 12)[:, rows]
        parts = [
            attention.q_proj_weight[rows], attention.k_proj_weight[rows],
            attention.v_proj_weight[rows], bias, attention.out_proj.weight[:, rows],
        ]  # fmt: skip
        v = torch.cat([p.reshape(-1) for p in parts])
        expected = expected + v.numel() ** 0.5 * v.norm()
    torch.testing.assert_close(group.value(), 0.5 * expected)


MHA_CASES = list(itertools.product([True, False], [None, 6], [True, False], [True, False]))


@pytest.mark.parametrize(("batch_first", "kdim", "bias", "need_weights"), MHA_CASES)
def test_head_attention_equals_multihead_attention(
    batch_first: bool, kdim: int | None, bias: bool, need_weights: bool
) -> None:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, bias=bias, batch_first=batch_first, kdim=kdim, vdim=kdim)
    mine = HeadAttention.from_multihead(mha)
    n, length, source, width = 3, 5, 6, kdim or 16

    def seq(steps: int, features: int) -> Tensor:
        shape = (n, steps, features) if batch_first else (steps, n, features)
        return torch.randn(shape)

    q, k, v = seq(length, 16), seq(source, width), seq(source, width)
    padding = torch.zeros(n, source, dtype=torch.bool)
    padding[0, -2:] = True
    masks = [
        {},
        {"key_padding_mask": padding},
        {"attn_mask": torch.randn(n * 4, length, source)},
        {"attn_mask": torch.ones(length, source, dtype=torch.bool).triu(1)},
        {"attn_mask": torch.randn(length, source), "key_padding_mask": padding.float()},
    ]
    for kwargs, average in itertools.product(masks, [True, False]):
        a, wa = mha(q, k, v, need_weights=need_weights, average_attn_weights=average, **kwargs)
        b, wb = mine(q, k, v, need_weights=need_weights, average_attn_weights=average, **kwargs)
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5)
        if need_weights:
            torch.testing.assert_close(wb, wa, atol=1e-6, rtol=1e-5)
        else:
            assert wb is None


def test_head_attention_takes_unbatched_inputs_and_a_causal_hint() -> None:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4).eval()
    mine = HeadAttention.from_multihead(mha).eval()
    x = torch.randn(5, 16)
    causal = nn.Transformer.generate_square_subsequent_mask(5)
    for need_weights in (True, False):
        a, _ = mha(x, x, x, attn_mask=causal, is_causal=True, need_weights=need_weights)
        b, _ = mine(x, x, x, is_causal=True, need_weights=need_weights)
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5)


class SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.attention(x, x, x, need_weights=False)[0]


def test_a_per_head_mask_still_reaches_the_heads_it_was_meant_for() -> None:
    torch.manual_seed(0)
    model = SelfAttention().eval()
    zero_units(head_groups(model, 1.0)[0], [1])
    small, _ = compact(model, torch.randn(2, 5, 16))
    attention = small.attention
    assert isinstance(attention, HeadAttention) and attention.source_heads.tolist() == [0, 2, 3]
    x = torch.randn(2, 5, 16)
    mask = torch.randn(2 * 4, 5, 5) * 3
    a, _ = model.attention(x, x, x, attn_mask=mask, need_weights=False)
    b, _ = attention(x, x, x, attn_mask=mask, need_weights=False)
    torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"attn_mask must have shape \[L, S\] or \[N \* 4"):
        attention(x, x, x, attn_mask=torch.zeros(3, 5, 5))


def test_head_attention_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError, match="num_heads must be a positive integer, got 0"):
        HeadAttention(16, 0, 4)
    with pytest.raises(ValueError, match="dropout must be in"):
        HeadAttention(16, 2, 4, dropout=1.5)
