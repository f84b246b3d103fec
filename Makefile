# The two commands of a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned, so pip never resolves a (multi-GB) CUDA build on its own.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTEST_ARGS ?=

.PHONY: demo test test-kernels test-slow test-conformance lint bench docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-cli: $(VENV)/.installed
	$(PIP) install --quiet -e ".[cli]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet -e ".[dev]"
	touch $@

# the main job: every penalty on digits, side by side; prints the table and the report's path
demo: $(VENV)/.installed-cli
	$(VENV)/bin/shrinkage compare --data digits --penalties none,l1,l2,elasticnet,group_inputs

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check src tests benchmarks examples docs
	$(VENV)/bin/ruff format --check src tests benchmarks examples docs
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# shrinkage.keras runs on the torch backend with the rest, then again on JAX, and on
# TensorFlow when it is installed (skipped otherwise)
test: lint
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)
	KERAS_BACKEND=jax $(PY) -m pytest -m "not slow" tests/keras $(PYTEST_ARGS)
	@if $(PY) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is None)"; then \
		KERAS_BACKEND=tensorflow $(PY) -m pytest -m "not slow" tests/keras $(PYTEST_ARGS); \
	else echo "tensorflow is not installed: tests/keras on its backend skipped"; fi

# the suite again on other kernels and one thread: ATen's portable (non-vectorized) kernels
# and single-threaded reductions round differently from this machine's defaults, as another
# CPU's do; a test that passes only on one machine's last bits fails here
test-kernels: $(VENV)/.installed-dev
	ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# scikit-learn's own tests of Lasso, ElasticNet(CV), Ridge, LogisticRegression(CV) and the GLMs, as shipped
# in the installed wheel, run against shrinkage.linear (see conformance/)
test-conformance: $(VENV)/.installed-dev
	tests=$$($(PY) -c "import os, sklearn.linear_model.tests as t; print(os.path.dirname(t.__file__))") && \
	cd conformance && PYTHONPATH=. ../$(PY) -m pytest -c pytest.ini --rootdir . \
		$$tests/test_coordinate_descent.py $$tests/test_ridge.py $$tests/test_logistic.py \
		$$tests/test_common.py $$tests/test_sparse_coordinate_descent.py \
		$$tests/../_glm/tests/test_glm.py $(PYTEST_ARGS)

# the documentation: user guide, API reference, gallery (its examples run and draw their
# figures); warnings are errors. Output in docs/_build/html.
docs: $(VENV)/.installed-dev
	$(VENV)/bin/sphinx-build -W --keep-going -b html -j 1 docs docs/_build/html
	$(PY) docs/screenshots.py docs/_build/html

test-slow: $(VENV)/.installed-dev
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/step_overhead.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts docs/_build docs/auto_examples docs/sg_execution_times.rst
