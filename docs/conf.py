"""Sphinx configuration: the user guide (MyST Markdown), the API reference (autodoc, Google
style docstrings), and the gallery (sphinx-gallery runs ``examples/gallery`` and keeps the
figures). ``make docs`` builds it with warnings as errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the gallery draws without a display
os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
try:  # the dev extra's torchvision wheel next to torch's CPU build (see tests/torchvision_cpu.py)
    from torchvision_cpu import import_torchvision

    import_torchvision()
except ImportError:
    pass

project = "shrinkage"
author = "the shrinkage developers"
copyright = "2026, the shrinkage developers"
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "**/*.zip"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
html_theme = "furo"
html_title = "shrinkage"
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples" / "gallery"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "matplotlib_animations": False,
}
nitpicky = False
suppress_warnings = ["myst.header"]


def _skip_request_setters(app, what, name, obj, skip, options):  # type: ignore[no-untyped-def]
    """scikit-learn's metadata-routing setters (``set_fit_request``...), inherited by every
    estimator, are documented by scikit-learn."""
    return True if name.startswith("set_") and name.endswith("_request") else None


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("autodoc-skip-member", _skip_request_setters)
