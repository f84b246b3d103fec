"""Neural networks trained with shrinkage's penalties.

* :mod:`~shrinkage.neural.training`: the MLP builder, the objectives and the training loop;
* :mod:`~shrinkage.neural.cnn`: a small ResNet on square images (the experiments' ``cnn``);
* :mod:`~shrinkage.neural.penalties`: the penalties by name (``"l1"``, ``"group_inputs"``, ...);
* :mod:`~shrinkage.neural.problem`: an MLP along a path of strengths, with warm starts;
* :class:`MLPRegressor`, :class:`MLPClassifier`: scikit-learn estimators on all of these.
"""

from .cnn import SmallResNet, build_resnet, image_side
from .estimators import MLPClassifier, MLPRegressor
from .penalties import PENALTIES, NamedPenalty, named_penalty
from .problem import MLPPathProblem
from .training import (
    CROSS_ENTROPY,
    SQUARED_ERROR,
    Objective,
    Schedule,
    build_mlp,
    evaluate,
    train_epochs,
    train_point,
)

__all__ = [
    "CROSS_ENTROPY",
    "PENALTIES",
    "SQUARED_ERROR",
    "MLPClassifier",
    "MLPPathProblem",
    "MLPRegressor",
    "NamedPenalty",
    "Objective",
    "Schedule",
    "SmallResNet",
    "build_mlp",
    "build_resnet",
    "evaluate",
    "image_side",
    "named_penalty",
    "train_epochs",
    "train_point",
]
