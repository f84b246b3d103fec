"""Import torchvision's model builders beside the CPU build of torch (test support).

torchvision 0.28.0's wheel on the package index links its compiled operators against the
CUDA build of torch 2.13.0, so with the CPU build they fail to load (torchvision catches
that), and then its Python module registers fake kernels for ``torchvision::nms`` and
``torchvision::qnms``, operators that were never defined, which raises ``RuntimeError:
operator torchvision::nms does not exist`` on ``import torchvision`` (and on importing
``transformers``, which imports torchvision when it is installed). The model builders are
pure Python and need neither operator. :func:`import_torchvision` defines the two operators'
schemas through the public ``torch.library`` API when they are missing, then imports
torchvision; the operators still have no kernel, and no model builder calls them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch

_LIBRARY: torch.library.Library | None = None


def import_torchvision() -> ModuleType:
    """``torchvision``, imported; raises ``ImportError`` when it is not installed."""
    global _LIBRARY
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as error:
        if "torchvision::" not in str(error) or _LIBRARY is not None:
            raise
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    return importlib.import_module("torchvision")
