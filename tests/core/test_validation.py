"""Every rejection of bad input, one test each; the message names the argument."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import shrinkage
from shrinkage import (
    L1,
    L2,
    ElasticNet,
    GroupLasso,
    NoExactConversionError,
    Proximal,
    Regularizer,
    convert,
    regularize_layer,
    sparsity,
)


def model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


# -- penalty hyperparameters -------------------------------------------------------------------
@pytest.mark.parametrize("cls", [L1, L2, ElasticNet, GroupLasso])
def test_negative_lam(cls: type) -> None:
    with pytest.raises(ValueError, match=r"lam must be >= 0, got -0.1"):
        cls(-0.1)


@pytest.mark.parametrize("cls", [L1, L2, ElasticNet, GroupLasso])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_lam(cls: type, bad: float) -> None:
    with pytest.raises(ValueError, match=r"lam must be finite \(>= 0\)"):
        cls(bad)


@pytest.mark.parametrize("bad", ["0.1", None, True, [0.1]])
def test_lam_of_wrong_type(bad: object) -> None:
    with pytest.raises(TypeError, match=r"lam must be a real number"):
        L1(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan])
def test_l1_ratio_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError, match=r"l1_ratio must be .*\[0, 1\]"):
        ElasticNet(0.1, l1_ratio=bad)


def test_negative_factor() -> None:
    with pytest.raises(ValueError, match=r"factor must be >= 0 everywhere"):
        L1(0.1, factor=torch.tensor([1.0, -1.0]))


def test_non_finite_factor() -> None:
    with pytest.raises(ValueError, match=r"factor must be finite"):
        L2(0.1, factor=torch.tensor([1.0, math.nan]))


def test_factor_that_does_not_broadcast_to_the_parameter() -> None:
    with pytest.raises(ValueError, match=r"factor of shape \(5,\) does not broadcast .* \(3, 4\)"):
        L1(0.1, factor=torch.ones(5)).value(torch.ones(3, 4))


def test_unknown_groups_name() -> None:
    with pytest.raises(ValueError, match=r"groups must be 'outputs', 'inputs' or an integer"):
        GroupLasso(0.1, groups="neurons")


def test_float_group_index() -> None:
    with pytest.raises(TypeError, match=r"groups as a tensor must hold integer group ids"):
        GroupLasso(0.1, groups=torch.zeros(3))


def test_negative_group_id() -> None:
    with pytest.raises(ValueError, match=r"groups ids must be >= 0"):
        GroupLasso(0.1, groups=torch.tensor([0, -1]))


def test_group_index_of_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"groups index of shape \(2,\) does not match .* \(3,\)"):
        GroupLasso(0.1, groups=torch.tensor([0, 1])).value(torch.ones(3))


def test_columns_on_a_vector() -> None:
    with pytest.raises(
        ValueError, match=r"groups='inputs' needs a parameter with at least 2 dimensions"
    ):
        GroupLasso(0.1, groups="inputs").value(torch.ones(3))


def test_group_factor_of_wrong_length() -> None:
    with pytest.raises(ValueError, match=r"factor has 2 entries but .* has 3 groups"):
        GroupLasso(0.1, factor=torch.ones(2)).value(torch.ones(3, 4))


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
@pytest.mark.parametrize("penalty", [L1(0.1), GroupLasso(0.1)], ids=repr)
def test_bad_prox_step(penalty: shrinkage.Penalty, bad: float) -> None:
    with pytest.raises(ValueError, match=r"step must be"):
        penalty.prox_(torch.ones(2, 2), bad)


def test_unknown_penalty_in_config() -> None:
    with pytest.raises(ValueError, match=r"unknown penalty 'L3'"):
        shrinkage.penalties.penalty_from_config("L3", {"lam": 1.0})


# -- Regularizer and regularize_layer ----------------------------------------------------------
def test_regularizer_model_not_a_module() -> None:
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module, got dict"):
        Regularizer({}, L1(0.1))  # type: ignore[arg-type]


def test_regularizer_spec_of_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"spec must be a Penalty, a mapping .* got float"):
        Regularizer(model(), 0.1)  # type: ignore[arg-type]


def test_regularizer_spec_value_not_a_penalty() -> None:
    with pytest.raises(TypeError, match=r"spec\['\*.weight'\] must be a Penalty"):
        Regularizer(model(), {"*.weight": 0.1})  # type: ignore[dict-item]


def test_regularizer_spec_key_not_a_string() -> None:
    with pytest.raises(TypeError, match=r"spec keys must be glob patterns"):
        Regularizer(model(), {0: L1(0.1)})  # type: ignore[dict-item]


def test_regularizer_penalty_selects_nothing() -> None:
    with pytest.raises(ValueError, match=r"spec L1\(lam=0.1\) selects no parameter of BatchNorm1d"):
        Regularizer(nn.BatchNorm1d(3), L1(0.1))


def test_regularizer_patterns_select_nothing() -> None:
    with (
        pytest.raises(
            ValueError, match=r"spec patterns \['encoder.\*'\] select no trainable parameter"
        ),
        pytest.warns(UserWarning),
    ):
        Regularizer(model(), {"encoder.*": L1(0.1)})


def test_regularizer_without_any_penalty() -> None:
    with pytest.raises(ValueError, match=r"no penalty to apply: spec is None"):
        Regularizer(model())


def test_regularizer_load_state_dict_for_other_parameters() -> None:
    reg = Regularizer(model(), L1(0.1))
    with pytest.raises(
        ValueError, match=r"missing \['0.weight', '2.weight'\], unexpected \['fc.weight'\]"
    ):
        reg.load_state_dict({"penalties": {"fc.weight": {"type": "L1", "config": {"lam": 1.0}}}})


def test_regularizer_load_state_dict_garbage() -> None:
    with pytest.raises(ValueError, match=r"state must be a Regularizer.state_dict()"):
        Regularizer(model(), L1(0.1)).load_state_dict({"x": 1})


def test_regularize_layer_not_a_module() -> None:
    with pytest.raises(TypeError, match=r"layer must be a torch.nn.Module"):
        regularize_layer("dense", kernel=L2(0.1))  # type: ignore[arg-type]


def test_regularize_layer_kernel_not_a_penalty() -> None:
    with pytest.raises(TypeError, match=r"kernel must be a Penalty"):
        regularize_layer(nn.Linear(2, 2), kernel=0.01)  # type: ignore[arg-type]


def test_regularize_layer_activity_not_a_penalty() -> None:
    with pytest.raises(TypeError, match=r"activity must be a Penalty"):
        regularize_layer(nn.Linear(2, 2), activity="l1")  # type: ignore[arg-type]


def test_regularize_layer_bias_on_layer_without_bias() -> None:
    with pytest.raises(ValueError, match=r"bias=L1.* given, but Linear has no parameter 'bias'"):
        regularize_layer(nn.Linear(2, 2, bias=False), bias=L1(0.1))


def test_regularize_layer_kernel_on_layer_without_weight() -> None:
    with pytest.raises(ValueError, match=r"kernel=L2.* given, but ReLU has no parameter 'weight'"):
        regularize_layer(nn.ReLU(), kernel=L2(0.1))


# -- Proximal ----------------------------------------------------------------------------------
def test_proximal_optimizer_of_wrong_type() -> None:
    m = model()
    with pytest.raises(TypeError, match=r"optimizer must be a torch.optim.Optimizer, got list"):
        Proximal(list(m.parameters()), Regularizer(m, L1(0.1)))  # type: ignore[arg-type]


def test_proximal_regularizer_of_wrong_type() -> None:
    m = model()
    with pytest.raises(TypeError, match=r"regularizer must be a shrinkage.Regularizer, got L1"):
        Proximal(torch.optim.SGD(m.parameters(), lr=0.1), L1(0.1))  # type: ignore[arg-type]


class Lion(torch.optim.Optimizer):
    """A user's own optimizer (sign of a momentum): no element-wise step Proximal knows."""

    def __init__(self, params, lr: float = 1e-4) -> None:  # type: ignore[no-untyped-def]
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[no-untyped-def]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(torch.sign(p.grad), alpha=-group["lr"])


@pytest.mark.parametrize(
    "make",
    [
        lambda params: Lion(params),
        lambda params: torch.optim.Rprop(params),
        lambda params: type("MyAdam", (torch.optim.Adam,), {})(params),  # a subclass may differ
    ],
    ids=["Lion", "Rprop", "Adam subclass"],
)
def test_proximal_refuses_an_optimizer_whose_step_it_does_not_know(make) -> None:  # type: ignore[no-untyped-def]
    m = model()
    with pytest.raises(ValueError) as caught:
        Proximal(make(m.parameters()), Regularizer(m, L1(0.1)))
    message = str(caught.value)
    assert "does not know the element-wise step of" in message
    assert "decoupled=True" in message  # the first choice
    assert "Adam, AdamW, NAdam, RAdam, Adamax, RMSprop, Adagrad" in message  # the second
    decoupled = Proximal(make(m.parameters()), Regularizer(m, L1(0.1)), decoupled=True)
    assert decoupled.decoupled and not decoupled.preconditioned


def test_proximal_refuses_maximize() -> None:
    m = model()
    with pytest.raises(ValueError, match=r"param_groups \[0\] have maximize=True"):
        Proximal(torch.optim.Adam(m.parameters(), maximize=True), Regularizer(m, L1(0.1)))


def test_proximal_decoupled_not_a_bool() -> None:
    m = model()
    with pytest.raises(TypeError, match=r"decoupled must be True or False, got 'yes'"):
        Proximal(torch.optim.Adam(m.parameters()), Regularizer(m, L1(0.1)), decoupled="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(("old", "decoupled"), [(True, False), (False, True)])
def test_proximal_old_preconditioned_spelling_warns_and_keeps_its_meaning(
    old: bool, decoupled: bool
) -> None:
    m = model()
    with pytest.warns(FutureWarning, match=r"preconditioned=.* is deprecated"):
        prox = Proximal(
            torch.optim.Adam(m.parameters()), Regularizer(m, L1(0.1)), preconditioned=old
        )
    assert prox.decoupled is decoupled and prox.preconditioned is not decoupled
    with pytest.raises(TypeError, match=r"preconditioned must be True or False"):
        Proximal(torch.optim.Adam(m.parameters()), Regularizer(m, L1(0.1)), preconditioned="yes")  # type: ignore[arg-type]


def test_proximal_foreach_not_a_bool() -> None:
    m = model()
    with pytest.raises(TypeError, match=r"foreach must be True, False or None"):
        Proximal(torch.optim.Adam(m.parameters()), Regularizer(m, L1(0.1)), foreach=1)  # type: ignore[arg-type]


def test_proximal_regularized_parameter_outside_the_optimizer() -> None:
    m = model()
    with pytest.raises(
        ValueError, match=r"regularized parameters \['2.weight'\] are not in the optimizer"
    ):
        Proximal(torch.optim.SGD(m[0].parameters(), lr=0.1), Regularizer(m, L1(0.1)))


def test_proximal_load_plain_optimizer_state() -> None:
    m = model()
    inner = torch.optim.SGD(m.parameters(), lr=0.1)
    prox = Proximal(inner, Regularizer(m, L1(0.1)))
    with pytest.raises(ValueError, match=r"state_dict must come from Proximal.state_dict()"):
        prox.load_state_dict(inner.state_dict())


def test_proximal_load_state_of_other_mode() -> None:
    m = model()
    reg = Regularizer(m, L1(0.1))
    saved = Proximal(torch.optim.Adam(m.parameters()), reg, decoupled=True).state_dict()
    prox = Proximal(torch.optim.Adam(m.parameters()), Regularizer(m, L1(0.1)))
    with pytest.raises(ValueError, match=r"saved with decoupled=True.* decoupled=False"):
        prox.load_state_dict(saved)
    old = {k: v for k, v in saved.items() if k != "decoupled"} | {"preconditioned": False}
    with pytest.raises(ValueError, match=r"saved with decoupled=True"):  # before decoupled=
        prox.load_state_dict(old)
    sgd = Proximal(torch.optim.SGD(m.parameters(), lr=0.1), reg, decoupled=True).state_dict()
    Proximal(torch.optim.SGD(m.parameters(), lr=0.1), reg).load_state_dict(sgd)  # one step


# -- convert and sparsity ----------------------------------------------------------------------
def test_convert_unknown_source() -> None:
    with pytest.raises(ValueError, match=r"src must be one of .* got 'pytorch'"):
        convert(0.1, src="pytorch")


def test_convert_unknown_destination() -> None:
    with pytest.raises(ValueError, match=r"dst must be one of .* got 'sklearn'"):
        convert(0.1, dst="sklearn")


def test_convert_unknown_penalty() -> None:
    with pytest.raises(ValueError, match=r"penalty must be one of 'l1', 'l2'; got 'elasticnet'"):
        convert(0.1, penalty="elasticnet")


def test_convert_negative_value() -> None:
    with pytest.raises(ValueError, match=r"value must be >= 0"):
        convert(-0.1)


def test_convert_zero_c() -> None:
    with pytest.raises(ValueError, match=r"value must be > 0"):
        convert(0.0, src="sklearn_logistic", dst="keras", n_samples=10)


def test_convert_missing_n_samples() -> None:
    with pytest.raises(ValueError, match=r"n_samples is required"):
        convert(0.1, src="keras", dst="sklearn_ridge")


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_convert_bad_n_samples(bad: object) -> None:
    with pytest.raises(ValueError, match=r"n_samples must be a positive integer"):
        convert(0.1, src="keras", dst="sklearn_ridge", n_samples=bad)  # type: ignore[arg-type]


def test_convert_l1_to_weight_decay() -> None:
    with pytest.raises(ValueError, match=r"dst='torch_sgd_weight_decay' has no L1 strength"):
        convert(0.1, penalty="l1", src="keras", dst="torch_sgd_weight_decay")


def test_convert_adamw_has_no_exact_form() -> None:
    with pytest.raises(
        NoExactConversionError, match=r"no exact conversion .* AdamW's decoupled decay"
    ):
        convert(0.1, src="torch_adamw_weight_decay", dst="keras")


def test_convert_zero_to_c() -> None:
    with pytest.raises(ValueError, match=r"means no penalty, which 'sklearn_logistic'"):
        convert(0.0, src="keras", dst="sklearn_logistic", n_samples=10)


def test_sparsity_unknown_which() -> None:
    with pytest.raises(ValueError, match=r"which must be one of 'weights', 'all'; got 'biases'"):
        sparsity(model(), which="biases")


def test_sparsity_model_not_a_module() -> None:
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module"):
        sparsity([1, 2])  # type: ignore[arg-type]
