"""Test-wide setup: torchvision made importable beside the CPU build of torch before any test
module imports a package that imports it (Lightning and transformers do, when it is
installed); see ``torchvision_cpu``."""

from __future__ import annotations

import contextlib

from torchvision_cpu import import_torchvision

with contextlib.suppress(ImportError):  # not installed: the tests that need it are skipped
    import_torchvision()
