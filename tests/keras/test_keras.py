"""shrinkage.keras on the installed Keras backend (``KERAS_BACKEND``: torch by default; `make
test` runs this file again on JAX, and on TensorFlow when it is importable): the penalties
against Keras's own, the proximal step against its closed form, exact zeros in ``fit``, and
``.keras`` files, ``jit_compile``, ``steps_per_execution``, gradient accumulation and mixed
precision."""

from __future__ import annotations

import importlib.util
import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
BACKEND = os.environ["KERAS_BACKEND"]
if importlib.util.find_spec(BACKEND if BACKEND != "torch" else "torch") is None:
    pytest.skip(f"the Keras backend {BACKEND!r} is not installed", allow_module_level=True)
keras = pytest.importorskip("keras")
if keras.backend.backend() != BACKEND:
    pytest.skip("Keras was imported with another backend", allow_module_level=True)

import shrinkage.keras  # noqa: E402
from docstrings import undocumented  # noqa: E402
from shrinkage.keras import (  # noqa: E402
    L1,
    L1L2,
    L2,
    GroupLasso,
    PenaltyCheck,
    ProximalAdagrad,
    ProximalAdam,
    ProximalAdamW,
    ProximalNadam,
    ProximalRMSprop,
    ProximalSGD,
    proximal,
    sparsity,
    unapplied_penalties,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword"
)


def data(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)).astype("float32")
    y = (x[:, 0] - 2 * x[:, 1] + 0.1 * rng.normal(size=n) > 0).astype("int32")
    return x, y


def model(regularizer: object = None, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(16, activation="relu", kernel_regularizer=regularizer),
            keras.layers.Dense(2),
        ]
    )


def compiled(regularizer: object, optimizer: object, **kwargs: object) -> keras.Model:
    m = model(regularizer)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    m.compile(optimizer=optimizer, loss=loss, **kwargs)
    return m


def weights(m: keras.Model) -> list[np.ndarray]:
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in m.trainable_variables]


def close(a: list[np.ndarray], b: list[np.ndarray], atol: float = 1e-6) -> None:
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


W = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
W[0, 0] = 0.0


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (L1(0.03), keras.regularizers.l1(0.03)),
        (L2(0.03), keras.regularizers.l2(0.03)),
        (L1L2(0.02, 0.05), keras.regularizers.l1_l2(0.02, 0.05)),
    ],
)
def test_penalties_equal_keras_own(ours: object, theirs: object) -> None:
    w = keras.ops.convert_to_tensor(W)
    a = float(keras.ops.convert_to_numpy(ours(w)))  # type: ignore[operator]
    b = float(keras.ops.convert_to_numpy(theirs(w)))  # type: ignore[operator]
    assert a == pytest.approx(b, rel=1e-6)


def test_the_former_name_of_l1l2_still_works_and_says_its_new_name() -> None:
    from shrinkage.keras import ElasticNet

    with pytest.warns(FutureWarning, match=r"ElasticNet\(l1, l2\) is now shrinkage\.keras\.L1L2"):
        old = ElasticNet(0.02, 0.05)
    assert isinstance(old, L1L2) and old.get_config() == L1L2(0.02, 0.05).get_config()


@pytest.mark.parametrize(("former", "now"), [("rows", "inputs"), ("columns", "outputs")])
def test_the_former_group_words_still_work_and_say_what_they_are_now(former: str, now: str) -> None:
    with pytest.warns(FutureWarning, match=rf"groups='{former}'\) is now groups='{now}'"):
        assert GroupLasso(0.1, groups=former).groups == now


@pytest.mark.parametrize(("groups", "axis"), [("inputs", 1), ("outputs", 0)])
def test_group_lasso_value_and_prox(groups: str, axis: int) -> None:
    penalty = GroupLasso(0.1, groups=groups)
    w = keras.ops.convert_to_tensor(W)
    norms = np.linalg.norm(W, axis=axis, keepdims=True)
    size = W.shape[axis]
    expected = 0.1 * np.sqrt(size) * norms.sum()
    assert float(keras.ops.convert_to_numpy(penalty(w))) == pytest.approx(expected, rel=1e-5)
    step = float(np.median(norms)) / (0.1 * np.sqrt(size))  # zeroes the smaller half
    out = keras.ops.convert_to_numpy(penalty.prox(w, step))
    scale = np.maximum(1 - step * 0.1 * np.sqrt(size) / norms, 0)
    np.testing.assert_allclose(out, W * scale, atol=1e-6)
    zero = (np.linalg.norm(out, axis=axis) == 0).sum()
    assert 0 < zero < W.shape[1 - axis]


def test_one_proximal_step_is_the_closed_form_with_the_current_learning_rate() -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.5)
    opt = ProximalSGD(schedule)
    var = keras.Variable(W, name="kernel")
    var.regularizer = L1(0.4)
    opt.build([var])
    g = np.random.default_rng(2).normal(size=W.shape).astype("float32")
    expected = W
    for step in range(2):
        lr = 0.5 * 0.5**step  # the schedule at this step
        z = expected - lr * g
        expected = np.sign(z) * np.maximum(np.abs(z) - lr * 0.4, 0)
        opt.apply([keras.ops.convert_to_tensor(g)], [var])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(var), expected, atol=1e-6)
    assert (expected == 0).any()  # the second, smaller threshold still zeroes some


def test_with_every_strength_zero_the_optimizer_is_the_plain_one() -> None:
    x, y = data()
    ours = compiled(L1(0.0), ProximalAdam(1e-2))
    plain = compiled(None, keras.optimizers.Adam(1e-2))
    ours.fit(x, y, epochs=3, batch_size=32, verbose=0, shuffle=False)
    plain.fit(x, y, epochs=3, batch_size=32, verbose=0, shuffle=False)
    close(weights(ours), weights(plain))


def test_proximal_adam_gives_exact_zeros_where_keras_l1_gives_none() -> None:
    x, y = data()
    ours = compiled(L1(0.3), ProximalAdam(1e-2))
    theirs = compiled(keras.regularizers.l1(0.3), keras.optimizers.Adam(1e-2))
    history = ours.fit(x, y, epochs=15, batch_size=32, verbose=0)
    theirs.fit(x, y, epochs=15, batch_size=32, verbose=0)
    mine, keras_kernel = weights(ours)[0], weights(theirs)[0]
    assert (mine == 0).mean() > 0.3
    assert (keras_kernel == 0).sum() == 0
    # the logged loss is the penalized one: data loss + 0.3 * sum|w|
    data_loss = ours.evaluate(x, y, verbose=0)
    assert data_loss == pytest.approx(
        float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, ours(x)))
        + 0.3 * np.abs(mine).sum(),
        rel=1e-4,
    )
    assert history.history["loss"][-1] > 0.3 * np.abs(mine).sum()
    report = sparsity(ours)
    assert report.zeros == int((mine == 0).sum()) + int((weights(ours)[2] == 0).sum())
    assert [r.shape for r in report.layers] == [(12, 16), (16, 2)]


def test_train_on_batch_applies_the_prox_too() -> None:
    x, y = data()
    m = compiled(L1(0.5), ProximalSGD(0.1))
    for _ in range(5):
        m.train_on_batch(x[:64], y[:64])
    assert (weights(m)[0] == 0).mean() > 0.5


def test_saving_and_loading_continues_exactly(tmp_path) -> None:
    x, y = data()
    through = compiled(L1(0.3), ProximalAdam(1e-2))
    through.fit(x, y, epochs=3, batch_size=32, verbose=0, shuffle=False)
    first = compiled(L1(0.3), ProximalAdam(1e-2))
    first.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    path = tmp_path / "model.keras"
    first.save(path)
    loaded = keras.saving.load_model(path)
    penalty = loaded.layers[0].kernel_regularizer
    assert isinstance(penalty, L1) and penalty.get_config() == {"l1": 0.3, "proximal": True}
    assert type(loaded.optimizer).__name__ == "ProximalAdam"
    loaded.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False)
    close(weights(loaded), weights(through))
    assert (weights(loaded)[0] == 0).any()


JIT = pytest.param(  # torch.compile of the step takes half a minute on 2 cores
    {"jit_compile": True}, marks=[pytest.mark.slow] if BACKEND == "torch" else []
)


@pytest.mark.parametrize("setting", [JIT, {"steps_per_execution": 4}])
def test_jit_and_steps_per_execution_give_the_same_weights(setting: dict[str, object]) -> None:
    if BACKEND == "torch" and "steps_per_execution" in setting:
        pytest.skip("Keras's PyTorch backend refuses steps_per_execution > 1")
    x, y = data(128)
    base = compiled(L1(0.05), ProximalSGD(0.1), jit_compile=False)
    other = compiled(L1(0.05), ProximalSGD(0.1), **setting)
    base.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    other.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    close(weights(other), weights(base), atol=1e-5)
    assert (weights(other)[0] == 0).any()


def test_gradient_accumulation_steps_as_one_larger_batch() -> None:
    x, y = data(128)
    accumulated = compiled(L1(0.05), ProximalSGD(0.1, gradient_accumulation_steps=2))
    larger = compiled(L1(0.05), ProximalSGD(0.1))
    accumulated.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
    larger.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    close(weights(accumulated), weights(larger), atol=1e-5)
    assert (weights(larger)[0] == 0).any()


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_float32_weights_and_exact_zeros(policy: str) -> None:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        x, y = data()
        m = compiled(L1(0.5), ProximalSGD(0.1))
        m.fit(x, y, epochs=3, batch_size=32, verbose=0)
    finally:
        keras.config.set_dtype_policy(previous)
    kernel = weights(m)[0]
    assert kernel.dtype == np.float32 and (kernel == 0).mean() > 0.3
    if policy == "mixed_float16":  # compile wrapped the optimizer for loss scaling
        assert type(m.optimizer).__name__ == "LossScaleOptimizer"


def test_any_optimizer_class_becomes_proximal() -> None:
    assert proximal(keras.optimizers.Adam) is ProximalAdam  # its own element-wise step
    assert proximal(keras.optimizers.RMSprop) is ProximalRMSprop
    assert proximal(keras.optimizers.SGD) is ProximalSGD
    with pytest.warns(UserWarning, match=r"proximal\(Lion\): .* applied with the step lr"):
        lion = proximal(keras.optimizers.Lion)
    assert lion.__name__ == "ProximalLion"
    x, y = data()
    m = compiled(L1(5.0), lion(1e-3))  # a threshold of 5e-3 per step beats its 1e-3 steps
    m.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert (weights(m)[0] == 0).any()
    with pytest.raises(TypeError, match="optimizer must be a Keras optimizer class"):
        proximal(object)  # type: ignore[arg-type]


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match=r"^l1 must be >= 0, got -0\.1$"):
        L1(-0.1)
    with pytest.raises(ValueError, match=r"^l2 must be finite \(>= 0\), got inf$"):
        L1L2(0.1, float("inf"))
    for value in ("0.01", True):  # the same refusals as the torch penalties and Keras's own
        with pytest.raises(TypeError, match=f"^lam must be a real number, got {value!r}"):
            GroupLasso(value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^groups must be one of 'inputs', 'outputs'; got 'hea"):
        GroupLasso(0.1, groups="heads")
    assert L1(np.float32(0.5)).l1 == 0.5 and type(L2(1).l2) is float
    with pytest.raises(ValueError, match="use_ema=True"):
        ProximalAdam(1e-3, use_ema=True)


def test_a_proximal_optimizer_without_penalties_warns() -> None:
    x, y = data(64)
    m = compiled(None, ProximalSGD(0.1))
    with pytest.warns(UserWarning, match="none has a proximal penalty of shrinkage.keras"):
        m.fit(x, y, epochs=1, verbose=0)


def test_a_proximal_penalty_under_a_plain_optimizer_warns_and_is_not_applied() -> None:
    x, y = data(64)
    ours = compiled(L1(0.05), keras.optimizers.SGD(0.1))
    bare = compiled(None, keras.optimizers.SGD(0.1))
    assert unapplied_penalties(ours) == [ours.layers[0].kernel.path]
    with pytest.warns(UserWarning, match=r"optimizer \(SGD\) is not proximal: .* not applied"):
        ours.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False,
                 callbacks=[PenaltyCheck()])  # fmt: skip
    with pytest.warns(UserWarning, match="proximal=False for a plain loss term"):
        sparsity(ours)
    bare.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    close(weights(ours), weights(bare), atol=1e-6)  # its loss term carries no gradient
    plain = compiled(L1(0.05, proximal=False), keras.optimizers.SGD(0.1))
    theirs = compiled(keras.regularizers.l1(0.05), keras.optimizers.SGD(0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        plain.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False,
                  callbacks=[PenaltyCheck()])  # fmt: skip
        sparsity(plain)
    theirs.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    close(weights(plain), weights(theirs), atol=1e-5)  # proximal=False: Keras's own term


def test_one_penalty_serves_many_layers_without_a_warning() -> None:
    """A penalty is a pure function: one object on two kernels under a proximal optimizer
    raises nothing, is applied to both, and gives what two objects give."""
    x, y = data(64)

    def two_kernels(*regs: object) -> keras.Model:
        keras.utils.set_random_seed(0)
        layers = [keras.layers.Dense(16, "relu", kernel_regularizer=regs[0]),
                  keras.layers.Dense(2, kernel_regularizer=regs[-1])]  # fmt: skip
        m = keras.Sequential([keras.Input((12,)), *layers])
        m.compile(
            optimizer=ProximalAdam(0.05), loss=keras.losses.SparseCategoricalCrossentropy(True)
        )
        return m

    shared, twin = two_kernels(L1(0.05)), two_kernels(L1(0.05), L1(0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        shared.fit(x, y, epochs=3, batch_size=32, verbose=0, shuffle=False,
                   callbacks=[PenaltyCheck()])  # fmt: skip
        report = sparsity(shared)
    assert unapplied_penalties(shared) == []
    assert all(layer.zeros > 0 for layer in report.layers)  # both kernels reach exact zeros
    twin.fit(x, y, epochs=3, batch_size=32, verbose=0, shuffle=False)
    close(weights(shared), weights(twin), atol=0)


def test_one_fit_step_is_the_plain_step_then_the_prox() -> None:
    """The penalty is applied once: by the prox, not also through the loss's gradient."""
    x, y = data(32)
    ours = compiled(L1(0.3), ProximalSGD(0.1))
    bare = compiled(None, keras.optimizers.SGD(0.1))
    ours.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False)
    bare.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False)
    z = weights(bare)[0]
    expected = np.sign(z) * np.maximum(np.abs(z) - 0.1 * 0.3, 0)
    np.testing.assert_allclose(weights(ours)[0], expected, atol=1e-6)
    close(weights(ours)[1:], weights(bare)[1:])
    assert (expected == 0).any()


def test_the_keras_example_runs(capsys, monkeypatch) -> None:
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "keras_l1.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--epochs", "3"])
    runpy.run_path(str(script), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if "keras.regularizers.l1" in line or "(prox)" in line]
    assert len(rows) == 4
    zeros = [float(r.split()[-2].rstrip("%")) for r in rows]
    assert zeros[0] == 0.0 and zeros[2] == 0.0  # Keras's l1: never exactly zero
    assert zeros[1] > 0.0  # proximal SGD: exact zeros
    assert zeros[3] > 10.0  # proximal Adam at Keras's lam: many (measured 63 - 65 %)


# -- the adaptive optimizers: Keras's update, then the prox with their own step -------------

ADAPTIVE = [
    (ProximalAdam, keras.optimizers.Adam, {}),
    (ProximalAdam, keras.optimizers.Adam, {"amsgrad": True}),
    (ProximalAdamW, keras.optimizers.AdamW, {}),
    (ProximalNadam, keras.optimizers.Nadam, {}),
    (ProximalRMSprop, keras.optimizers.RMSprop, {"centered": True, "momentum": 0.5}),
    (ProximalAdagrad, keras.optimizers.Adagrad, {}),
]


@pytest.mark.parametrize(("ours", "theirs", "kwargs"), ADAPTIVE, ids=lambda v: str(v))
def test_at_zero_strength_each_adaptive_optimizer_is_keras_own(ours, theirs, kwargs) -> None:  # type: ignore[no-untyped-def]
    x, y = data()
    mine = compiled(L1(0.0), ours(1e-2, **kwargs))
    plain = compiled(None, theirs(1e-2, **kwargs))
    mine.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    plain.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    # the same operations; to rounding only: on torch Keras runs its own optimizers with
    # torch's multi-tensor kernels, and a compiler (XLA) may fuse two graphs differently
    close(weights(mine), weights(plain), atol=1e-5)  # float32 rounding over 16 steps


WITHOUT_MOMENTUM = [
    (ProximalAdam, keras.optimizers.Adam, {"beta_1": 0.0}),
    (ProximalNadam, keras.optimizers.Nadam, {"beta_1": 0.0}),
    (ProximalRMSprop, keras.optimizers.RMSprop, {"centered": True}),
    (ProximalAdagrad, keras.optimizers.Adagrad, {}),
]


@pytest.mark.parametrize(("ours", "theirs", "kwargs"), WITHOUT_MOMENTUM, ids=lambda v: str(v))
def test_the_prox_takes_the_step_the_optimizer_took(ours, theirs, kwargs) -> None:  # type: ignore[no-untyped-def]
    """With momentum off the update is ``w - s * g``: ``s`` read off Keras's own optimizer,
    then ``prox_{s P}`` by hand, against one step of the proximal one."""
    g = np.random.default_rng(2).normal(size=W.shape).astype("float32")
    penalty = L1L2(1.0, 0.02)
    mine, plain = keras.Variable(W, name="kernel"), keras.Variable(W, name="kernel")
    mine.regularizer = penalty
    optimizer, reference = ours(0.1, **kwargs), theirs(0.1, **kwargs)
    optimizer.build([mine])
    reference.build([plain])
    for _ in range(3):  # the third step, from the same state
        optimizer.apply([keras.ops.convert_to_tensor(g)], [mine])
        before = keras.ops.convert_to_numpy(plain)
        reference.apply([keras.ops.convert_to_tensor(g)], [plain])
        after = keras.ops.convert_to_numpy(plain)
        steps = (before - after) / g
        expected = keras.ops.convert_to_numpy(penalty.prox(after, steps))
        # the step is read off a float32 difference (about 1e-7 of the weight, relative)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mine), expected, rtol=1e-4, atol=1e-5)
        plain.assign(expected)
    assert (expected == 0).any()


def test_group_lasso_with_element_wise_steps_is_the_diagonal_prox() -> None:
    """The oracle: the same prox solved in float64 by the torch side's routine."""
    torch = pytest.importorskip("torch")
    from shrinkage._group_layout import GroupLayout, group_prox_diagonal

    steps = np.random.default_rng(3).uniform(0.05, 0.5, size=W.shape).astype("float32")
    for groups, axis in (("inputs", 0), ("outputs", 1)):
        penalty = GroupLasso(2.0, groups=groups)
        out = keras.ops.convert_to_numpy(penalty.prox(W, steps))
        shape = (-1, 1) if axis == 0 else (1, -1)
        index = torch.arange(W.shape[axis]).reshape(shape).expand(W.shape).contiguous()
        layout = GroupLayout(torch.Size(W.shape), index, torch.device("cpu"))
        tau = torch.full((W.shape[axis],), 2.0 * np.sqrt(W.size / W.shape[axis]))
        expected = group_prox_diagonal(torch.tensor(W), torch.tensor(steps), tau, layout)
        np.testing.assert_allclose(out, expected.numpy(), atol=1e-6)
        zero = int((np.linalg.norm(out, axis=1 - axis) == 0).sum())
        assert 0 < zero < W.shape[axis]  # some groups, not all
        uniform = keras.ops.convert_to_numpy(penalty.prox(W, np.full(W.shape, 0.2, "float32")))
        scalar = keras.ops.convert_to_numpy(penalty.prox(W, 0.2))
        np.testing.assert_allclose(uniform, scalar, atol=1e-6)  # equal steps: the closed form


def test_proximal_adam_solves_the_l1_problem_of_keras_l1() -> None:
    """``L1(lam)`` under ``ProximalAdam`` reaches the solution of ``mean loss + lam ||w||_1``
    (what ``keras.regularizers.l1(lam)`` states): shrinkage.linear's, with its exact zeros.
    Measured on torch and JAX: coefficients within 1.2e-7, KKT residual 2e-8."""
    import torch
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    from shrinkage import L1 as TorchL1
    from shrinkage.linear import LogisticRegression

    lam = 0.02
    X, y = make_classification(
        n_samples=400, n_features=30, n_informative=8, n_redundant=0, flip_y=0.1,
        random_state=0,
    )  # fmt: skip
    X = StandardScaler().fit_transform(X).astype("float32")
    reference = LogisticRegression(C=1 / (lam * len(y)), l1_ratio=1.0, tol=1e-10).fit(X, y)
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1, kernel_regularizer=L1(lam))])
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=1, decay_rate=0.996)
    m.compile(ProximalAdam(schedule), keras.losses.BinaryCrossentropy(from_logits=True))
    m.fit(X, y.astype("float32"), batch_size=len(y), epochs=2000, verbose=0, shuffle=False)
    kernel, bias = (keras.ops.convert_to_numpy(v) for v in m.layers[0].weights)
    np.testing.assert_allclose(kernel.ravel(), reference.coef_.ravel(), atol=1e-4)
    assert abs(float(bias[0]) - float(reference.intercept_[0])) < 1e-4
    assert np.array_equal(kernel.ravel() == 0, reference.coef_.ravel() == 0)
    w = torch.tensor(kernel.ravel(), dtype=torch.float64, requires_grad=True)
    logits = torch.tensor(X, dtype=torch.float64) @ w + float(bias[0])
    target = torch.tensor(y, dtype=torch.float64)
    torch.nn.functional.binary_cross_entropy_with_logits(logits, target).backward()
    assert w.grad is not None
    assert float(TorchL1(lam).optimality(w.detach(), w.grad)) < 1e-5


def test_public_functions_document_their_arguments() -> None:
    assert undocumented(shrinkage.keras) == []
