"""
Whole neurons to exact zero, and a smaller dense network
========================================================

Scattered zeros in a dense weight matrix save nothing: the matrix product costs the same.
The group lasso over each hidden neuron (:func:`shrinkage.neuron_groups`: a neuron's row,
its bias and the next layer's column) zeros whole neurons, and :func:`shrinkage.compact`
removes them: a smaller ``nn.Sequential`` with the same outputs. Here an MLP 64-256-256-10 on
the 8x8 digits, trained with Adam and the group lasso applied by :class:`shrinkage.Proximal`.
"""

import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

import shrinkage

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
scaler = StandardScaler().fit(X_train)
x_train = torch.tensor(scaler.transform(X_train), dtype=torch.float32)
x_test = torch.tensor(scaler.transform(X_test), dtype=torch.float32)
t_train, t_test = torch.tensor(y_train), torch.tensor(y_test)

torch.manual_seed(0)
model = nn.Sequential(
    nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
)
groups = shrinkage.neuron_groups(model, lam=2e-3)
adam = torch.optim.Adam(model.parameters(), lr=1e-3)
opt = shrinkage.Proximal(adam, shrinkage.Regularizer(model, None, groups=groups))
for epoch in range(20):
    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(epoch))
    for idx in order.split(64):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x_train[idx]), t_train[idx]).backward()
        opt.step()

small, report = shrinkage.compact(model, x_test)
with torch.no_grad():
    change = (small(x_test) - model(x_test)).abs().max().item()
    accuracy = (small(x_test).argmax(1) == t_test).float().mean().item()
print(small)
print(
    f"parameters {report.parameters_before:,} -> {report.parameters_after:,}; "
    f"test accuracy {accuracy:.1%}; largest output change {change:.1e}"
)

layers = ["hidden 1", "hidden 2"]
before = [model[0].out_features, model[2].out_features]
after = [small[0].out_features, small[2].out_features]
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.bar([0, 3], before, color="0.6", label="before")
ax.bar([1, 4], after, color="C2", label="after compaction")
ax.set_xticks([0.5, 3.5], layers)
ax.set(ylabel="neurons", title="neurons per layer: exact zeros removed, outputs unchanged")
ax.legend()
fig.tight_layout()
