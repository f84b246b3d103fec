"""
Lasso path and both sides of the bias-variance trade-off
========================================================

The diabetes data (442 patients, 10 features) with 20 noise features added, fitted by the
Lasso along a warm-started path of strengths ``lam`` from ``lambda_max`` (every coefficient
zero) down to ``1e-3 * lambda_max``, each point scored on a validation split.

Left: the coefficients along the path; L1 brings features in one at a time, and the noise
features come in last. Right: training and validation loss. Strong penalties underfit (both
losses high), weak ones overfit (the training loss keeps falling while the validation loss
rises again); the rules pick ``lam_min``, the lowest validation loss, and ``lam_1se``, the
strongest penalty within one standard error of it.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import shrinkage
from shrinkage.linear import LinearProblem
from shrinkage.path import choose_from_paths

X, y = load_diabetes(return_X_y=True)
rng = np.random.default_rng(0)
X = np.hstack([X, rng.standard_normal((X.shape[0], 20))])  # 20 features of pure noise
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
y_mean, y_std = y_train.mean(), y_train.std()
y_train, y_val = (y_train - y_mean) / y_std, (y_val - y_mean) / y_std

problem = LinearProblem(X_train, y_train, loss="squared", l1_ratio=1.0, tol=1e-8, max_iter=5000)
points = shrinkage.path(problem, n_lambdas=60, validation=(X_val, y_val))
choice = choose_from_paths([points])

lams = np.array([p.lam for p in points])
coefs = np.array([p.coef for p in points])
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
left.plot(lams, coefs[:, :10], lw=1.5)
left.plot(lams, coefs[:, 10:], color="0.7", lw=0.8)
left.set(xscale="log", xlabel="lam", ylabel="coefficient", title="Lasso path (grey: noise)")
right.plot(lams, [p.train_loss for p in points], color="0.5", label="training loss")
right.errorbar(lams, choice.mean, yerr=choice.se, label="validation loss")
right.axvline(lams[choice.best], color="k", ls="--", label="lam_min")
right.axvline(lams[choice.one_se], color="k", ls=":", label="lam_1se")
right.set(xscale="log", xlabel="lam", ylabel="loss", title="validation curve")
right.legend()
fig.tight_layout()

best = points[choice.best]
print(f"lam_min = {best.lam:.4g}: {best.n_nonzero} features, validation R^2 {best.val_score:.3f}")
print("noise features kept:", sum(j >= 10 for j in best.selected))
