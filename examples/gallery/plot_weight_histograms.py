"""
L1 as a loss term against L1 by its proximal step
=================================================

The recipe every tutorial shows: an MLP on the 8x8 digits, ``Adam(lr=1e-3)`` and
``loss += 0.01 * sum|w|`` on the hidden kernel. Trained twice from the same initial weights,
once as written and once with :class:`shrinkage.Proximal`, which applies the same penalty by
its proximal step with Adam's own element-wise step size.

The loss term pushes weights towards zero and never onto it: a narrow bell around zero.
The proximal step puts them exactly at zero, and the objective ``loss + 0.01 * sum|w|`` it
reaches is lower: the same problem, solved better.
"""

import matplotlib.pyplot as plt
import numpy as np
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
LAM, EPOCHS = 0.01, 30


def train(proximal: bool) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    reg = shrinkage.Regularizer(model, {"0.weight": shrinkage.L1(LAM)})
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt = shrinkage.Proximal(adam, reg) if proximal else adam
    batches = torch.Generator().manual_seed(0)
    for _ in range(EPOCHS):
        for idx in torch.randperm(len(x_train), generator=batches).split(32):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x_train[idx]), t_train[idx])
            if not proximal:
                loss = loss + reg.penalty()  # the textbook loss term
            loss.backward()
            opt.step()
    return model


fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for ax, proximal in zip(axes, (False, True), strict=True):
    model = train(proximal)
    w = model[0].weight.detach()
    with torch.no_grad():
        objective = nn.functional.cross_entropy(model(x_train), t_train) + LAM * w.abs().sum()
        accuracy = (model(x_test).argmax(1) == t_test).float().mean()
    zeros = (w == 0).float().mean().item()
    name = "Proximal(Adam, L1(0.01))" if proximal else "Adam, loss += 0.01 * sum|w|"
    ax.hist(w.flatten().numpy(), bins=np.linspace(-0.3, 0.3, 121), color="C1" if proximal else "C0")
    ax.set(yscale="log", xlabel="hidden kernel weight", title=name)
    print(
        f"{name}: objective {objective.item():.3f}, exact zeros {zeros:.1%}, "
        f"test accuracy {accuracy.item():.1%}"
    )
axes[0].set_ylabel("count (log)")
fig.tight_layout()
