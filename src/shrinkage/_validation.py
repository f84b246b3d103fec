"""Input checks shared by the public API.

Every check raises an error that names the argument, the value it got and what is allowed,
so the user can fix the call without reading our source.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import torch


class ArgumentError(ValueError):
    """A bad value for one argument, said in the vocabulary of whoever called.

    The message is ``"<argument> <problem>"``, for instance ``"hidden must be positive layer
    widths; got ()"``. The library renders ``argument`` (and every ``{name}`` of ``related``
    in ``problem``) as the Python argument's name; a front end such as the command line
    renders them as its own option names with :meth:`render`, so each user reads the names
    they typed.

    Args:
        argument: the Python argument at fault.
        problem: the rest of the sentence: what is wrong, what is allowed, the value given.
        related: other arguments that ``problem`` names, each written ``{name}`` in it.
    """

    def __init__(self, argument: str, problem: str, *, related: Iterable[str] = ()) -> None:
        self.argument = argument
        self.problem = problem
        self.related = tuple(related)
        super().__init__(self.render())

    def render(self, name: Callable[[str], str] = str) -> str:
        """The message, with every argument it names written as ``name(argument)``.

        Args:
            name: how a front end spells a Python argument's name (the identity by default).

        Returns:
            ``"<name(argument)> <problem>"``.

        Example:
            >>> error = ArgumentError("lam", "must be >= {eps}; got -1", related=["eps"])
            >>> error.render(lambda arg: "--" + arg.replace("_", "-"))
            '--lam must be >= --eps; got -1'
        """
        text = self.problem
        for other in self.related:
            text = text.replace("{" + other + "}", name(other))
        return f"{name(self.argument)} {text}"

    def __reduce__(self) -> tuple[Any, ...]:  # survives pickling (worker processes)
        return (_rebuild_argument_error, (self.argument, self.problem, self.related))


def _rebuild_argument_error(argument: str, problem: str, related: tuple[str, ...]) -> ArgumentError:
    return ArgumentError(argument, problem, related=related)


def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """Return ``value`` as a float after checking it is a finite real number in range.

    ``low`` and ``high`` are inclusive bounds (``low_open=True`` makes the lower bound strict).
    Booleans are rejected: ``L1(True)`` is almost certainly a mistake.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.requires_grad:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number, got {value!r} of type {type(value).__name__}"
        )
    number = float(value)
    allowed = _describe_range(low, high, low_open)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite ({allowed}), got {number!r}")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and number > high
    if too_low or too_high:
        raise ValueError(f"{name} must be {allowed}, got {number!r}")
    return number


def _describe_range(low: float | None, high: float | None, low_open: bool) -> str:
    if low is not None and high is not None:
        left = "(" if low_open else "["
        return f"in {left}{low:g}, {high:g}]"
    if low is not None:
        return f"> {low:g}" if low_open else f">= {low:g}"
    if high is not None:
        return f"<= {high:g}"
    return "a finite real number"


def check_choice(name: str, value: Any, allowed: Collection[str]) -> str:
    """Check that ``value`` is one of the strings in ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}; got {value!r}")
    return value


def check_positive_int(name: str, value: Any) -> int:
    """``value``, refused with an :class:`ArgumentError` naming ``name`` unless it is an
    integer ``>= 1`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArgumentError(name, f"must be a positive integer; got {value!r}")
    return value


def check_factor(name: str, factor: Any) -> torch.Tensor | None:
    """Check a per-element or per-group penalty factor (glmnet's ``penalty.factor``).

    ``None`` means every entry is penalised with factor 1. Otherwise a tensor (or anything
    ``torch.as_tensor`` accepts) of finite, non-negative floats.
    """
    if factor is None:
        return None
    try:
        tensor = torch.as_tensor(factor)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(
            f"{name} must be a tensor of non-negative numbers or None, got {factor!r}"
        ) from exc
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    tensor = tensor.detach()
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    if tensor.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} must be finite, got a tensor with NaN or inf entries")
    if bool((tensor < 0).any()):
        raise ValueError(f"{name} must be >= 0 everywhere, got minimum {tensor.min().item():g}")
    return tensor


def broadcasts_to(shape: Sequence[int], target: Sequence[int]) -> bool:
    """Whether a tensor of ``shape`` broadcasts to ``target`` without changing it: aligned from
    the right, each size is 1 or the target's, and ``shape`` has no more dimensions.

    A plain check on the sizes (``torch.broadcast_shapes`` costs a millisecond a call and, on
    its first, an import of its symbolic-shape machinery).

    Example:
        >>> broadcasts_to((4,), (3, 4)), broadcasts_to((3, 1), (3, 4)), broadcasts_to((3,), (3, 4))
        (True, True, False)
    """
    if len(shape) > len(target):
        return False
    return all(a in (1, b) for a, b in zip(reversed(shape), reversed(target), strict=False))


def check_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device``; a ``ValueError`` naming it if torch does not know it."""
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}"
        ) from exc
