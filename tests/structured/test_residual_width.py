"""The residual width of RMSNorm decoders: whole channels to exact zero, then removed with the
logits unchanged (Hugging Face Llama and Qwen2 built small from configs, their embedding tied
to the LM head or not). The algebra of the norm's rescaling is checked on its own in
``test_rmsnorm_width.py``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

import shrinkage
from shrinkage import CompactionError, compact, head_groups
from shrinkage.structured import residual_groups
from units import scale_odd_units, strength, zero_units

transformers = pytest.importorskip("transformers")

VOCAB = 50
WIDTH = 32


def llama(tied: bool = False, bias: bool = False) -> nn.Module:
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=48, max_position_embeddings=32,
        use_cache=False, tie_word_embeddings=tied, attention_bias=bias, mlp_bias=bias,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config)


def qwen2() -> nn.Module:
    config = transformers.Qwen2Config(
        vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=48, max_position_embeddings=32,
        use_cache=False, tie_word_embeddings=False,
    )  # fmt: skip
    return transformers.Qwen2ForCausalLM(config)


def classifier() -> nn.Module:
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=1, num_attention_heads=4,
        intermediate_size=48, max_position_embeddings=32, use_cache=False, num_labels=3,
        pad_token_id=0,
    )  # fmt: skip
    return transformers.LlamaForSequenceClassification(config)


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "llama": llama,
    "llama tied": lambda: llama(tied=True),
    "llama with biases": lambda: llama(bias=True),
    "qwen2": qwen2,
    "classifier": classifier,
}


def tokens(n: int = 3, length: int = 10) -> Tensor:
    # no pad token (0): the classifier reads the last token of each row
    return torch.randint(1, VOCAB, (n, length), generator=torch.Generator().manual_seed(0))


def logits(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        return model(x).logits


def random_norms(model: nn.Module) -> None:
    """Norm weights away from their initial ones, so that a wrong rescaling shows."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(len(name)))


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_zeroing_residual_channels_removes_exactly_them(name: str) -> None:
    torch.manual_seed(0)
    model = BUILDERS[name]().eval()
    random_norms(model)
    (group,) = residual_groups(model, 1.0)
    assert group.units == WIDTH
    gone = [3, 7, 20]
    zero_units(group, gone)
    x = tokens()
    before = logits(model, x)
    small, report = compact(model, x)
    assert small.config.hidden_size == WIDTH - len(gone)
    assert model.config.hidden_size == WIDTH  # the original is untouched
    row = next(r for r in report.groups if r.label.endswith("residual"))
    assert (row.units_before, row.units_after) == (WIDTH, WIDTH - len(gone))
    kept = torch.tensor([j for j in range(WIDTH) if j not in gone])
    embed = small.get_input_embeddings().weight
    torch.testing.assert_close(embed, model.get_input_embeddings().weight[:, kept])
    after = logits(small, x)
    assert float((before - after).abs().max()) <= 1e-4 * max(1.0, float(before.abs().max()))


def test_a_channel_that_one_writer_still_feeds_stays() -> None:
    model = llama().eval()
    with torch.no_grad():
        model.get_input_embeddings().weight[:, 5] = 0.0  # the embedding's column only
    small, _ = compact(model, tokens())
    assert small.config.hidden_size == WIDTH


def test_what_a_dead_channel_reads_does_not_matter() -> None:
    """Brute force, without compaction: once a channel's writers are zero, its norm entries
    and its columns in every reader can be anything."""
    model = llama().eval()
    random_norms(model)
    layout = next(shrinkage.structured.residual.residual_layouts(model))
    with torch.no_grad():
        for name, dim in layout.writers:
            model.get_parameter(name).select(dim, 9).zero_()
    x = tokens()
    before = logits(model, x)
    with torch.no_grad():
        slices = (*layout.readers, *((f"{n}.weight", 0) for n in layout.norms))
        for name, dim in slices:
            model.get_parameter(name).select(dim, 9).normal_()
    torch.testing.assert_close(logits(model, x), before, atol=1e-6, rtol=0)


def test_proximal_steps_zero_whole_channels_that_compact_removes() -> None:
    torch.manual_seed(0)
    model = llama()
    x = tokens(8)
    found = residual_groups(model, 1.0)
    scale_odd_units(found, 4.0)
    steps, lr = 30, 0.1
    groups = head_groups(model, 0.0, residual=True)
    groups = [g for g in groups if not g.label.endswith("residual")]
    groups += residual_groups(model, strength(found, steps * lr))
    reg = shrinkage.Regularizer(model, None, groups=groups)
    opt = shrinkage.Proximal(torch.optim.SGD(model.parameters(), lr=lr), reg)
    target = torch.randn(8, 10, VOCAB, generator=torch.Generator().manual_seed(1))
    for _ in range(steps):
        opt.zero_grad()
        ((model(x).logits - target) ** 2).mean().backward()
        opt.step()
    model.eval()
    dead = int((groups[-1].norms() == 0).sum())
    assert 0 < dead < WIDTH
    before = logits(model, x)
    small, _ = compact(model, x)
    assert small.config.hidden_size == WIDTH - dead
    after = logits(small, x)
    assert float((before - after).abs().max()) <= 1e-4 * max(1.0, float(before.abs().max()))


def test_a_layernorm_decoder_is_refused_with_the_layout_it_needs() -> None:
    config = transformers.GPT2Config(vocab_size=VOCAB, n_embd=WIDTH, n_layer=1, n_head=4)
    with pytest.raises(CompactionError, match="RMSNorm"):
        residual_groups(transformers.GPT2LMHeadModel(config), 1.0)


def test_a_norm_that_is_not_an_rmsnorm_leaves_the_width() -> None:
    """A decoder with Llama's names but a LayerNorm: its width is not a unit."""
    model = llama().eval()
    model.model.norm = nn.LayerNorm(WIDTH)
    with pytest.raises(CompactionError, match="RMSNorm"):
        residual_groups(model, 1.0)
    assert head_groups(model, 1.0)  # the heads are still found


def test_a_narrower_decoder_saves_and_loads_with_its_rescaled_norms(tmp_path) -> None:
    model = llama(tied=True).eval()
    random_norms(model)
    zero_units(residual_groups(model, 1.0)[0], [1, 2, 30])
    x = tokens()
    small, _ = compact(model, x)
    shrinkage.save_sparse(small, tmp_path / "small.safetensors")
    builds = []

    def build() -> nn.Module:
        builds.append(1)
        return llama(tied=True)

    back = shrinkage.load_sparse(tmp_path / "small.safetensors", architecture=build)
    assert len(builds) == 1  # on the meta device; the rotary frequencies come from the file
    assert back.model.norm.variance_epsilon == small.model.norm.variance_epsilon
    assert back.model.norm.variance_epsilon > model.model.norm.variance_epsilon
    assert logits(back, x).equal(logits(small, x))


def test_a_decoder_with_another_weighted_layer_is_not_taken() -> None:
    """A layer the layout does not know might read the stream: its width stays."""
    model = llama().eval()
    model.model.extra = nn.Linear(WIDTH, WIDTH)
    with pytest.raises(CompactionError, match="RMSNorm"):
        residual_groups(model, 1.0)
