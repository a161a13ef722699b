# Each target creates .venv and installs spikejax into it when missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# `make reproduce` runs the claim configs, configs/claims/*.toml, through the one entry point
# `python -m experiments.run` (one module per kind under experiments/claims/) at this scale
# (`small`; `large`: larger d and more seeds, and the configs committed at `large` only, e.g. the
# claims 4-5 grids complexity_15/16, which `small` skips), in 2 processes (one per core). Measured
# whole at small scale on 2026-11-29 on the 2 quiet cores: 21 min 20 s wall, every committed number
# reproduced. `python -m experiments.run --render` redraws every table and figure from docs/data
# without a run. horizon_check = "none" in a config drops its step/horizon checks.
SCALE ?= small

.PHONY: demo test test-all docs bench bench-quick reproduce clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test,docs]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/spikejax demo --out out/demo
	$(VENV)/bin/spikejax sweep configs/phase_diagram.toml --out out/phase_diagram --force
	$(VENV)/bin/spikejax plot out/phase_diagram

# --dist worksteal: an idle worker takes queued tests from the busy one (no tail of one worker)
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist worksteal

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist worksteal -m ""

# The documentation site (mkdocs, material theme, API pages from the docstrings) into site/;
# --strict turns every warning (broken link or anchor, docstring trouble) into a failure.
docs: $(STAMP)
	$(PY) -m mkdocs build --strict --site-dir site

# Every benchmark: about 30-40 minutes on 2 shared cores. Writes out/bench/*.json and the
# scaling table benchmarks/scaling.json. `make bench-quick` is a smoke run.
bench: $(STAMP)
	$(PY) -c "import threadpoolctl" 2>/dev/null || $(PY) -m pip install -q threadpoolctl  # the [bench] extra
	mkdir -p out/bench
	$(PY) benchmarks/diagnose_numpy.py | tee out/bench/diagnose_numpy.txt
	$(PY) benchmarks/run.py --json out/bench/run.json | tee out/bench/run.txt
	$(PY) benchmarks/e2e.py --grouping --json out/bench/e2e.json | tee out/bench/e2e.txt
	$(PY) benchmarks/online.py --json out/bench/online.json | tee out/bench/online.txt
	$(PY) benchmarks/scaling.py --json benchmarks/scaling.json | tee out/bench/scaling.txt
	$(PY) benchmarks/chain.py --json out/bench/chain.json | tee out/bench/chain.txt

bench-quick: $(STAMP)
	$(PY) -c "import threadpoolctl" 2>/dev/null || $(PY) -m pip install -q threadpoolctl  # the [bench] extra
	$(PY) benchmarks/diagnose_numpy.py --steps 50 --repeat 1 --spinners 0
	$(PY) benchmarks/run.py --quick
	$(PY) benchmarks/e2e.py --quick --grouping
	$(PY) benchmarks/online.py --quick
	$(PY) benchmarks/scaling.py --quick
	$(PY) benchmarks/chain.py --quick --seeds 8 --repeat 1

reproduce: $(STAMP)
	$(PY) -m experiments.run configs/claims --scale $(SCALE) --jobs 2

clean:
	rm -rf $(VENV) out .pytest_cache site dist
