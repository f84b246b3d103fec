"""The docstring shape the public API keeps: every public function and method that takes
arguments documents them in an ``Args:`` section (checked by ``test_docs`` and, for the Keras
port, which needs a backend at import, by the Keras tests)."""

from __future__ import annotations

import inspect
import types
from typing import Any


def _takes_arguments(fn: Any) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return any(name not in ("self", "cls", "args", "kwargs") for name in parameters)


def _callables(obj: Any, name: str) -> list[tuple[str, Any]]:
    """``obj`` itself when it is a function, or a class's own public methods."""
    if inspect.isfunction(obj):
        return [(name, obj)]
    if not inspect.isclass(obj) or not obj.__module__.startswith("shrinkage"):
        return []
    out = []
    for attr, member in vars(obj).items():
        function = getattr(member, "__func__", member)
        if not attr.startswith("_") and inspect.isfunction(function):
            out.append((f"{name}.{attr}", getattr(obj, attr)))
    return out


def undocumented(module: types.ModuleType) -> list[str]:
    """The public functions and methods of ``module``'s ``__all__`` that take arguments and
    whose docstring (their own, or the one they override) has no ``Args:`` section."""
    missing = []
    for name in getattr(module, "__all__", []):
        for qualified, fn in _callables(getattr(module, name), name):
            if _takes_arguments(fn) and "Args:" not in (inspect.getdoc(fn) or ""):
                missing.append(f"{module.__name__}.{qualified}")
    return missing
