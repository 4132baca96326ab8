# Two commands: `make book` builds the textbook, `make test` runs the whole test suite.
# Both create .venv/ at the root when it is missing and install the pinned dependencies;
# `make test` also installs the system packages the tests use, where it can.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# The venv's bin/ goes first on PATH (nbgrader shells out to alembic); the checkout goes first
# on PYTHONPATH so notebooks, kernels and tests import this tree's solutions/ and autograder/.
export PATH := $(BIN):$(PATH)
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all setup system-packages book book-clean test lint bench-numpy bench-torch-bn \
	bench-grading bench-scale clean

all: test

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

# The download archives the book links, released again only when what they are made of changed.
BOOK_COURSE := _build/book-course/.released
$(BOOK_COURSE): $(STAMP) $(shell find exercises solutions autograder -type f \( -name '*.py' -o -name '*.md' \))
	$(BIN)/python -m autograder release --out _build/book-course >/dev/null
	@touch $@

# The build's output is also kept in _build/book-build.log; when the build fails, the failed
# chapters' tracebacks and every warning line are printed again at the end, where a CI log's
# tail shows them (book/_ext/build_problems.py).
book: $(STAMP) $(BOOK_COURSE)
	@mkdir -p _build && rm -rf _build/html/reports
	set -o pipefail; $(BIN)/jupyter-book build . --builder html -W --keep-going 2>&1 \
		| tee _build/book-build.log \
		|| { $(BIN)/python book/_ext/build_problems.py _build/book-build.log _build/html/reports; \
		     exit 1; }
	$(BIN)/python book/_ext/launch_notebooks.py --out _build/launch

book-clean:
	rm -rf _build/html _build/jupyter_execute _build/.doctrees _build/.jupyter_cache

lint: $(STAMP)
	$(BIN)/ruff check .

# First of all: install the system packages the tests use where this can (root, apt-get), or
# say which are missing and how many tests skip (tests/support/system.py; always succeeds).
# pytest's summary says it again at the end.
system-packages: $(STAMP)
	$(BIN)/python -m tests.support.system install

test: $(STAMP) system-packages lint book
	MPLBACKEND=Agg $(BIN)/python -m pytest -n 2 --dist loadfile

bench-numpy: $(STAMP)
	$(BIN)/python benchmarks/bench_numpy_bn.py

bench-torch-bn: $(STAMP)
	$(BIN)/python benchmarks/bench_torch_bn.py --quick

bench-grading: $(STAMP)
	$(BIN)/python benchmarks/bench_grading.py

bench-scale: $(STAMP)
	$(BIN)/python benchmarks/bench_scale.py

clean:
	rm -rf _build $(VENV)
