"""The error of structured sparsity."""

from __future__ import annotations

__all__ = ["CompactionError"]


class CompactionError(ValueError):
    """The model cannot be grouped or compacted; the message names the layer (or op) and the
    reason, and says that nothing was changed."""
