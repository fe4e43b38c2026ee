# cruijff_kit — everything a fresh machine needs, from this repo's own files.
#   make demo   the bundled tiny experiment, end to end on CPU (local executor)
#   make test   the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ck-installed

.PHONY: venv test test-fast demo bench clean-demo slurm-start slurm-stop

# Bytecode caches on: a machine-wide PYTHONDONTWRITEBYTECODE=1 (set on these machines) makes every
# pytest worker re-rewrite every test module's asserts (~5 CPU-s each, measured) and every process
# recompile cruijff_kit from source. __pycache__/ is gitignored.
unexport PYTHONDONTWRITEBYTECODE

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/constraints.txt scripts/setup-venv
	bash scripts/setup-venv "$(VENV)"
	@touch "$(STAMP)"

# Three pytest-xdist workers on two cores: the SLURM tests share one worker (one cluster) and spend
# most of their time waiting on the scheduler, so the other two keep both cores busy. The heavy
# shared fixtures (tests/conftest.py: the demo run, the finished tiny experiment, the tiny model)
# are built once per session, by the worker whose group uses them (tests/xdist_groups.py).
XDIST ?= -n 3 --dist loadgroup

test: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -ra --durations=30 $(XDIST) $(PYTEST_ARGS)

# The inner loop: no training, no evaluation, no cluster.
test-fast: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -ra -m "not slow and not slurm" $(XDIST) $(PYTEST_ARGS)

demo: venv
	OMP_NUM_THREADS=1 $(PY) -m cruijff_kit.demo $(DEMO_ARGS)

bench: venv
	$(PY) bench/scaffold_speed.py
	$(PY) bench/demo_time.py

slurm-start:
	bash scripts/local-slurm start

slurm-stop:
	bash scripts/local-slurm stop
