"""Which extra installs each optional dependency, and the one line that says so.

======================  ==============  ===========================================
module                  extra           what needs it
======================  ==============  ===========================================
matplotlib, rich        ``cli``         the ``shrinkage`` command and its reports
optuna, psycopg         ``tune``        ``shrinkage tune`` and ``shrinkage.experiments.tune``
lightning               ``lightning``   ``shrinkage.integrations.lightning``
keras                   ``keras``       ``shrinkage.keras`` (with a backend of its own)
transformers            ``hf``          Hugging Face models and the Trainer
======================  ==============  ===========================================
"""

from __future__ import annotations

__all__ = ["EXTRAS", "install_hint"]

EXTRAS = {
    "matplotlib": "cli",
    "rich": "cli",
    "optuna": "tune",
    "psycopg": "tune",
    "lightning": "lightning",
    "keras": "keras",
    "transformers": "hf",
    "accelerate": "hf",
}
"""Top-level module name -> the extra of ``shrinkage`` that installs it."""


def install_hint(error: ModuleNotFoundError, what: str) -> str | None:
    """The one line for a missing optional dependency, or ``None`` when ``error`` is about a
    module that no extra installs (a real bug, to be raised as it is).

    Example:
        >>> install_hint(ModuleNotFoundError(name="optuna"), "shrinkage tune")
        "shrinkage tune needs optuna: pip install 'shrinkage[tune]'"
    """
    module = (error.name or "").split(".")[0]
    if module not in EXTRAS:
        return None
    return f"{what} needs {module}: pip install 'shrinkage[{EXTRAS[module]}]'"
