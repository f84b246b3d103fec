"""
Attention heads to exact zero, then removed
===========================================

A two-layer ``nn.TransformerEncoder`` (4 heads of size 8 per layer) learns a synthetic task:
does token 1 occur more often than token 2 in a sequence of 12 tokens? The group lasso over
every head (:func:`shrinkage.head_groups`: a head's query, key and value rows and its output
columns) is applied by :class:`shrinkage.Proximal` during training, and whole heads reach
exactly zero. :func:`shrinkage.sparsity` draws which heads live, and
:func:`shrinkage.compact` removes the dead ones: the same model class, fewer heads, the
same outputs.
"""

import matplotlib.pyplot as plt
import torch
from torch import Tensor, nn

import shrinkage

VOCAB, LENGTH = 8, 12


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.out = nn.Linear(32, 2)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.out(self.encoder(self.embed(tokens)).mean(dim=1))


def task(n: int, seed: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, VOCAB, (n, LENGTH), generator=g)
    return tokens, ((tokens == 1).sum(1) > (tokens == 2).sum(1)).long()


torch.manual_seed(0)
model = Classifier()
x, y = task(2000, seed=0)
x_test, y_test = task(500, seed=1)
groups = shrinkage.head_groups(model, 2e-3)
opt = shrinkage.Proximal(
    torch.optim.Adam(model.parameters(), lr=3e-3), shrinkage.Regularizer(model, None, groups=groups)
)
for _epoch in range(12):
    for idx in torch.randperm(len(x), generator=torch.Generator().manual_seed(_epoch)).split(50):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
model.eval()

report = shrinkage.sparsity(model, units=shrinkage.head_groups(model, 0.0))
print(report)
small, compaction = shrinkage.compact(model, x_test[:64])
with torch.no_grad():
    change = (small(x_test) - model(x_test)).abs().max().item()
    accuracy = (small(x_test).argmax(1) == y_test).float().mean().item()
print(
    f"parameters {compaction.parameters_before:,} -> {compaction.parameters_after:,}; "
    f"MACs per sequence {compaction.macs_before:,} -> {compaction.macs_after:,}"
)
print(f"test accuracy {accuracy:.1%}; largest output change after compaction {change:.1e}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2), width_ratios=(1, 1.4))
left.imshow(report.heat_map(), cmap="Greens", vmin=0, vmax=1)
left.set(xlabel="head", ylabel="layer", title="heads alive (dark) after training")
left.set_xticks(range(4))
left.set_yticks(range(2))
before = [compaction.parameters_before, compaction.macs_before]
after = [compaction.parameters_after, compaction.macs_after]
right.bar([0, 2], before, label="before", color="0.6")
right.bar([1, 3], after, label="after compaction", color="C2")
right.set_xticks([0.5, 2.5], ["parameters", "MACs per sequence"])
right.set(yscale="log", title="the same outputs, a smaller model")
right.legend()
fig.tight_layout()
