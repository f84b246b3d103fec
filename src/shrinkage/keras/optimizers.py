"""Keras 3 optimizers that apply their variables' penalties exactly, by proximal steps.

After each update of a variable whose ``regularizer`` is a proximal
:class:`~shrinkage.keras.penalties.Penalty` ``P`` (in Keras's documented hook ``update_step``,
which runs for each variable on every real update, in ``fit``, ``train_on_batch`` and custom
loops, under ``jit_compile``, ``steps_per_execution``, gradient accumulation and loss
scaling), the variable becomes

    w <- prox_{s P}(w)

with ``s`` the optimizer's own element-wise step, e.g. ``sign(w) * max(|w| - s * l1, 0)`` for
``L1(l1)``: exact zeros. Its fixed points are the stationary points of ``loss + P``, so
``L1(0.01)`` means what ``keras.regularizers.l1(0.01)`` means, under every optimizer here:

=======================  ==================================================================
optimizer                element-wise step ``s``
=======================  ==================================================================
``ProximalSGD``          ``lr`` (proximal gradient descent)
``ProximalAdam``         ``lr * sqrt(1 - beta_2^t) / (sqrt(v) + epsilon)`` (``v_hat`` with
                         ``amsgrad``); ``ProximalAdamW`` adds Keras's decoupled weight decay
``ProximalNadam``        ``lr / (sqrt(v / (1 - beta_2^t)) + epsilon)``
``ProximalRMSprop``      ``lr / sqrt(v [- a^2 if centered] + epsilon)``
``ProximalAdagrad``      ``lr / sqrt(accumulator + epsilon)``
=======================  ==================================================================

The adaptive ones are Keras optimizers of their own, written on Keras's extension points
(their moments are their own variables, made in ``build``; ``update_step`` computes Keras's
update of the same name, in the same operations, and the step ``s``): with every strength
zero each is Keras's optimizer. :func:`proximal` turns any other Keras optimizer class into
one whose prox takes the step ``lr`` whatever the optimizer's own scaling ("decoupled", the
L1 analogue of AdamW's weight decay), and warns that ``lam`` then means shrinkage per unit of
learning rate, not a weight on the loss.

The loss terms of proximal penalties carry no gradient (the logged loss still includes
them), so nothing is applied twice, however the backend orders building the optimizer and
tracing the step. ``use_ema=True`` is refused: the moving average would overwrite the zeros
at the end of training.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
from keras import ops

from .penalties import proximal_penalty

__all__ = [
    "ProximalAdagrad",
    "ProximalAdam",
    "ProximalAdamW",
    "ProximalMixin",
    "ProximalNadam",
    "ProximalRMSprop",
    "ProximalSGD",
    "proximal",
]


class ProximalMixin:
    """Put before a Keras optimizer class: its ``update_step`` is followed by the prox of the
    variable's penalty, with the step :meth:`update_with_step` returns (see the module
    docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("use_ema"):
            raise ValueError(
                f"use_ema={kwargs['use_ema']!r}: a proximal optimizer does not support "
                "use_ema=True (the moving average would overwrite the exact zeros at the end "
                "of fit); leave use_ema=False"
            )
        super().__init__(*args, **kwargs)

    def build(self, variables: list[Any]) -> None:
        """Build the optimizer and note each variable's proximal penalty.

        Args:
            variables: the variables it will update.

        Warns:
            UserWarning: none of them has a proximal penalty, so the optimizer will update
                them exactly as the one it extends.
        """
        super().build(variables)  # type: ignore[misc]
        # by the optimizer's own variable index: some backends (TensorFlow) hand update_step
        # the backend's variable, which does not carry the Keras variable's regularizer
        self._proximal_penalties = [proximal_penalty(v) for v in variables]
        if all(p is None for p in self._proximal_penalties):
            warnings.warn(
                f"{type(self).__name__} was built over {len(variables)} variables and none "
                "has a proximal penalty of shrinkage.keras (kernel_regularizer=L1(...), ...): "
                "it will update them exactly like the optimizer it extends",
                UserWarning,
                stacklevel=2,
            )

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """The optimizer's update of a variable, then the prox of its penalty.

        The prox is ``w <- prox_{s P}(w)``, with ``P`` the variable's penalty and ``s`` the
        step :meth:`update_with_step` returns.

        Args:
            gradient: the loss's gradient, the variable's shape.
            variable: the variable to update.
            learning_rate: the current learning rate.
        """
        # the lookup Keras's Optimizer docstring shows custom optimizers for their slots
        index = self._get_variable_index(variable)  # type: ignore[attr-defined]
        penalty = self._proximal_penalties[index]
        step = self.update_with_step(gradient, variable, learning_rate, penalty is not None)
        if penalty is not None:
            self.assign(variable, penalty.prox(variable, step))  # type: ignore[attr-defined]

    def update_with_step(
        self, gradient: Any, variable: Any, learning_rate: Any, need_step: bool
    ) -> Any:
        """Update a variable as the optimizer does, and return the step its prox takes.

        Here the extended optimizer's own ``update_step``, and the step ``lr``
        (decoupled); the adaptive optimizers return their element-wise step.

        Args:
            gradient: the loss's gradient, the variable's shape.
            variable: the variable to update.
            learning_rate: the current learning rate.
            need_step: whether the variable has a penalty to step.

        Returns:
            The step (a scalar, or a tensor of the variable's shape), or ``None`` when
            ``need_step`` is false.
        """
        super().update_step(gradient, variable, learning_rate)  # type: ignore[misc]
        return ops.cast(learning_rate, variable.dtype) if need_step else None


def _decoupled(optimizer: type[keras.optimizers.Optimizer]) -> type[keras.optimizers.Optimizer]:
    """``optimizer`` with the decoupled prox, registered as ``shrinkage>Proximal<Name>``."""
    name = f"Proximal{optimizer.__name__}"
    cls = type(name, (ProximalMixin, optimizer), {"__doc__": f"{optimizer.__name__}, proximal."})
    cls.__module__ = __name__
    return keras.saving.register_keras_serializable(package="shrinkage", name=name)(cls)


def proximal(optimizer: type[keras.optimizers.Optimizer]) -> type[keras.optimizers.Optimizer]:
    """The proximal form of the Keras optimizer class ``optimizer``.

    For Adam, AdamW, Nadam, RMSprop and Adagrad: :class:`ProximalAdam`, ... (the prox with
    the optimizer's own element-wise step); for SGD, a subclass whose prox takes the step
    ``lr``, which is SGD's own. For any other class, a subclass whose prox takes the step
    ``lr`` whatever the optimizer's scaling, with a warning that the strength then means
    shrinkage per unit of learning rate. Registered for ``.keras`` files as
    ``shrinkage>Proximal<Name>``.

    Args:
        optimizer: a subclass of ``keras.optimizers.Optimizer``.

    Returns:
        The proximal optimizer class.

    Raises:
        TypeError: ``optimizer`` is not a Keras optimizer class.

    Example:
        >>> proximal(keras.optimizers.Adam) is ProximalAdam
        True
    """
    if not (isinstance(optimizer, type) and issubclass(optimizer, keras.optimizers.Optimizer)):
        raise TypeError(
            f"optimizer must be a Keras optimizer class such as keras.optimizers.SGD, got "
            f"{optimizer!r}"
        )
    if optimizer in _ADAPTIVE:
        return _ADAPTIVE[optimizer]
    if optimizer is keras.optimizers.SGD:
        return ProximalSGD
    warnings.warn(
        f"proximal({optimizer.__name__}): shrinkage.keras does not know the element-wise step "
        f"of {optimizer.__name__}, so its penalties are applied with the step lr (decoupled): "
        "L1(l1) then shrinks |w| by lr * l1 per step, which is not the strength l1 has as a "
        "loss term. For the loss's meaning use ProximalSGD, ProximalAdam, ProximalAdamW, "
        "ProximalNadam, ProximalRMSprop or ProximalAdagrad",
        UserWarning,
        stacklevel=2,
    )
    return _decoupled(optimizer)


ProximalSGD = _decoupled(keras.optimizers.SGD)


def _slots(
    optimizer: keras.optimizers.Optimizer,
    variables: list[Any],
    names: list[str],
    initializer: Any = "zeros",
) -> list[list[Any]]:
    """For each name, one variable of each model variable's shape (``None`` for a variable
    Keras overwrites with its gradient), made variable by variable as Keras's own optimizers
    make theirs, so a ``.keras`` file lists them in the same order."""
    slots: list[list[Any]] = [[] for _ in names]
    for v in variables:
        for made, name in zip(slots, names, strict=True):
            skip = getattr(v, "overwrite_with_gradient", False)
            made.append(
                None
                if skip
                else optimizer.add_variable_from_reference(v, name, initializer=initializer)
            )
    return slots


def _power(base: float, exponent: Any, dtype: Any) -> Any:
    return ops.power(ops.cast(base, dtype), exponent)


class _Adaptive(ProximalMixin, keras.optimizers.Optimizer):
    """What the adaptive optimizers below share: ``build`` makes their moments once
    (:meth:`make_slots`), and ``get_config`` adds the hyperparameters named in
    ``hyperparameters``."""

    hyperparameters: tuple[str, ...] = ()

    def build(self, variables: list[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        self.make_slots(variables)

    def make_slots(self, variables: list[Any]) -> None:
        """Create the optimizer's own variables (its moments) once.

        Args:
            variables: the model variables, each getting slots of its shape.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update({name: getattr(self, name) for name in self.hyperparameters})
        return config


@keras.saving.register_keras_serializable(package="shrinkage")
class ProximalAdam(_Adaptive):
    """Keras's Adam (its arguments and update), then the prox of each variable's penalty
    with Adam's element-wise step (see the module docstring).

    Example:
        >>> from shrinkage.keras import L1
        >>> dense = keras.layers.Dense(2, kernel_regularizer=L1(0.01))
        >>> model = keras.Sequential([keras.Input((4,)), dense])
        >>> model.compile(optimizer=ProximalAdam(1e-3), loss="mse")
    """

    hyperparameters = ("beta_1", "beta_2", "epsilon", "amsgrad")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        name: str = "proximal_adam",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def make_slots(self, variables: list[Any]) -> None:
        self.momentums, self.velocities = _slots(self, variables, ["momentum", "velocity"])
        if self.amsgrad:
            (self.velocity_hats,) = _slots(self, variables, ["velocity_hat"])

    def update_with_step(
        self, gradient: Any, variable: Any, learning_rate: Any, need_step: bool
    ) -> Any:
        # Keras's Adam update; the step lr * sqrt(1 - beta_2^t) / (sqrt(v) + epsilon) on
        # m / (1 - beta_1^t) (the arguments: ProximalMixin.update_with_step)
        dtype = variable.dtype
        lr, g = ops.cast(learning_rate, dtype), ops.cast(gradient, dtype)
        t = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        m, v = self.momentums[index], self.velocities[index]
        root = lr * ops.sqrt(1 - _power(self.beta_2, t, dtype))
        alpha = root / (1 - _power(self.beta_1, t, dtype))
        self.assign_add(m, ops.multiply(ops.subtract(g, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), 1 - self.beta_2))
        if self.amsgrad:
            v_hat = self.velocity_hats[index]
            self.assign(v_hat, ops.maximum(v_hat, v))
            v = v_hat
        denominator = ops.add(ops.sqrt(v), self.epsilon)
        self.assign_sub(variable, ops.divide(ops.multiply(m, alpha), denominator))
        return ops.divide(root, denominator) if need_step else None


@keras.saving.register_keras_serializable(package="shrinkage")
class ProximalAdamW(ProximalAdam):
    """:class:`ProximalAdam` with Keras's decoupled weight decay (``weight_decay=0.004``, as
    Keras's ``AdamW``), which Keras applies before each update."""

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.004,
        name: str = "proximal_adamw",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs
        )


@keras.saving.register_keras_serializable(package="shrinkage")
class ProximalNadam(_Adaptive):
    """Keras's Nadam (its arguments and update), then the prox with its element-wise step
    ``lr / (sqrt(v_hat) + epsilon)``. The product of the momentum schedule is kept per
    variable (Keras keeps one for all; the same numbers)."""

    hyperparameters = ("beta_1", "beta_2", "epsilon")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        name: str = "proximal_nadam",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def make_slots(self, variables: list[Any]) -> None:
        self.momentums, self.velocities = _slots(self, variables, ["momentum", "velocity"])
        self.u_products = [
            self.add_variable((), initializer="ones", dtype=v.dtype, name="u_product")
            for v in variables
        ]

    def update_with_step(
        self, gradient: Any, variable: Any, learning_rate: Any, need_step: bool
    ) -> Any:
        # Keras's Nadam update; the step lr / (sqrt(v_hat) + epsilon)
        dtype = variable.dtype
        lr, g = ops.cast(learning_rate, dtype), ops.cast(gradient, dtype)
        t = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        m, v, product = self.momentums[index], self.velocities[index], self.u_products[index]
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        u_t = beta_1 * (1.0 - 0.5 * _power(0.96, t, dtype))
        u_next = beta_1 * (1.0 - 0.5 * _power(0.96, t + 1, dtype))
        # in the order of Keras's Nadam, which updates its one product before every step
        self.assign(product, product * self.beta_1 * (1.0 - 0.5 * ops.power(0.96, t)))
        u_product = ops.cast(product, dtype)
        self.assign_add(m, ops.multiply(ops.subtract(g, m), 1 - beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), 1 - beta_2))
        m_hat = ops.add(
            ops.divide(ops.multiply(u_next, m), 1 - u_product * u_next),
            ops.divide(ops.multiply(1 - u_t, g), 1 - u_product),
        )
        v_hat = ops.divide(v, 1 - ops.power(beta_2, t))
        denominator = ops.add(ops.sqrt(v_hat), self.epsilon)
        self.assign_sub(variable, ops.divide(ops.multiply(m_hat, lr), denominator))
        return ops.divide(lr, denominator) if need_step else None


@keras.saving.register_keras_serializable(package="shrinkage")
class ProximalRMSprop(_Adaptive):
    """Keras's RMSprop (its arguments and update, ``momentum`` and ``centered`` included),
    then the prox with its element-wise step ``lr / sqrt(denominator)``."""

    hyperparameters = ("rho", "momentum", "epsilon", "centered")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        name: str = "proximal_rmsprop",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def make_slots(self, variables: list[Any]) -> None:
        (self.velocities,) = _slots(self, variables, ["velocity"])
        self.momentums = _slots(self, variables, ["momentum"])[0] if self.momentum > 0 else []
        self.average_gradients = (
            _slots(self, variables, ["average_gradient"])[0] if self.centered else []
        )

    def update_with_step(
        self, gradient: Any, variable: Any, learning_rate: Any, need_step: bool
    ) -> Any:
        # Keras's RMSprop update; the step lr / sqrt(denominator)
        dtype = variable.dtype
        lr, g = ops.cast(learning_rate, dtype), ops.cast(gradient, dtype)
        index = self._get_variable_index(variable)
        velocity, rho = self.velocities[index], self.rho
        squares = ops.multiply(1 - rho, ops.square(g))
        self.assign(velocity, ops.add(ops.multiply(rho, velocity), squares))
        if self.centered:
            average = self.average_gradients[index]
            self.assign(average, ops.add(ops.multiply(rho, average), ops.multiply(1 - rho, g)))
            denominator = velocity - ops.square(average) + self.epsilon
        else:
            denominator = ops.add(velocity, self.epsilon)
        root = ops.sqrt(denominator)
        increment = ops.divide(ops.multiply(lr, g), root)
        if self.momentum > 0:
            momentum = self.momentums[index]
            self.assign(momentum, ops.add(ops.multiply(self.momentum, momentum), increment))
            self.assign_sub(variable, momentum)
        else:
            self.assign_sub(variable, increment)
        return ops.divide(lr, root) if need_step else None


@keras.saving.register_keras_serializable(package="shrinkage")
class ProximalAdagrad(_Adaptive):
    """Keras's Adagrad (its arguments and update), then the prox with its element-wise step
    ``lr / sqrt(accumulator + epsilon)``."""

    hyperparameters = ("initial_accumulator_value", "epsilon")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        name: str = "proximal_adagrad",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def make_slots(self, variables: list[Any]) -> None:
        start = keras.initializers.Constant(self.initial_accumulator_value)
        (self.accumulators,) = _slots(self, variables, ["accumulator"], initializer=start)

    def update_with_step(
        self, gradient: Any, variable: Any, learning_rate: Any, need_step: bool
    ) -> Any:
        # Keras's Adagrad update; the step lr / sqrt(accumulator + epsilon)
        dtype = variable.dtype
        lr, g = ops.cast(learning_rate, dtype), ops.cast(gradient, dtype)
        accumulator = self.accumulators[self._get_variable_index(variable)]
        self.assign_add(accumulator, ops.square(g))
        root = ops.sqrt(ops.add(accumulator, self.epsilon))
        self.assign_sub(variable, ops.divide(ops.multiply(lr, g), root))
        return ops.divide(lr, root) if need_step else None


_ADAPTIVE: dict[type[keras.optimizers.Optimizer], type[keras.optimizers.Optimizer]] = {
    keras.optimizers.Adam: ProximalAdam,
    keras.optimizers.AdamW: ProximalAdamW,
    keras.optimizers.Nadam: ProximalNadam,
    keras.optimizers.RMSprop: ProximalRMSprop,
    keras.optimizers.Adagrad: ProximalAdagrad,
}
"""Keras's adaptive optimizers and their proximal forms with the element-wise step."""
