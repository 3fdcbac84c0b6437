# dmpreserve -- see README.md.  GNU make + bash.
#
#   make run     set up .venv (first time only) and run the whole analysis
#   make test    set up .venv (first time only) and run the test suite
#   make help    list all targets

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DELETE_ON_ERROR:
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules
.DEFAULT_GOAL := help

PYTHON ?= python3
CORES ?= 2
CONFIG ?= workflow/config/config.yaml
PYTEST_ARGS ?=
TEST_WORKERS ?= auto
IMAGE_ARGS ?=
SIF_ARGS ?=
BENCH_ARGS ?=

VENV := .venv
VENV_STAMP := $(VENV)/.stamp
PKG_STAMP := $(VENV)/.stamp-pkg
# Runtime pins (what the analysis image installs) and the tools' pins (tests, linters, Docker SDK,
# SLURM executor); the venv holds both.
REQUIREMENTS := env/requirements.txt
REQUIREMENTS_DEV := env/requirements-dev.txt

# Recipes that use the venv start with $(ACTIVATE), so that the `dmpreserve` CLI
# that Snakemake's shell rules call is the one installed from this checkout.
ACTIVATE := export PATH="$(CURDIR)/$(VENV)/bin:$$PATH" VIRTUAL_ENV="$(CURDIR)/$(VENV)"
export PIP_DISABLE_PIP_VERSION_CHECK := 1
PIP_INSTALL := $(VENV)/bin/python -m pip install --no-input --require-hashes

.PHONY: help venv run test lint format report image sif bench clean distclean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

# The venv is rebuilt from scratch whenever a requirements file changes, so it
# holds exactly the hashed pins and nothing else; pip itself is left as shipped
# with Python (nothing unpinned is upgraded).
$(VENV_STAMP): $(REQUIREMENTS) $(REQUIREMENTS_DEV)
	@echo "==> creating $(VENV) from $(REQUIREMENTS) and $(REQUIREMENTS_DEV)"
	if ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
	  echo "error: Python 3.11 is required ($(PYTHON) is $$($(PYTHON) -V 2>&1)); try 'make PYTHON=python3.11 ...'" >&2
	  exit 1
	fi
	rm -rf $(VENV)
	SECONDS=0
	if ! $(PYTHON) -m venv $(VENV); then
	  echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
	  rm -rf $(VENV)
	  exit 1
	fi
	# 1. the pinned build backend (setuptools) on its own, hash-checked
	awk '/^[a-z0-9]/ { keep = ($$1 ~ /^setuptools==/) } keep' $(REQUIREMENTS) > $(VENV)/build-requirements.txt
	$(PIP_INSTALL) --no-deps -r $(VENV)/build-requirements.txt
	# 2. everything else, both files in one resolution, hash-checked; wheels only,
	#    except connection-pool (snakemake dependency, sdist only), built with the
	#    pinned setuptools
	$(PIP_INSTALL) --only-binary :all: --no-binary connection-pool --no-build-isolation \
	  -r $(REQUIREMENTS) -r $(REQUIREMENTS_DEV)
	touch $@
	echo "==> $(VENV) ready in $${SECONDS} s"

# Our own package: editable, --no-deps (pyproject.toml declares its dependencies
# as ranges; the hashed pins above are what is installed), built with the pinned
# setuptools already in the venv (no build isolation, so nothing is fetched unhashed).
$(PKG_STAMP): $(VENV_STAMP) pyproject.toml
	$(VENV)/bin/python -m pip install --no-input --no-deps --no-build-isolation -e .
	touch $@

venv: $(PKG_STAMP)  ## create/refresh .venv from the hashed pins in env/requirements*.txt

run: venv  ## run the full analysis (Snakemake target `all`) into results/
	$(ACTIVATE)
	SECONDS=0
	status=0
	snakemake all --cores $(CORES) --configfile $(CONFIG) || status=$$?
	printf '==> make run: wall time %dm%02ds (exit %d)\n' $$((SECONDS / 60)) $$((SECONDS % 60)) $$status
	exit $$status

# Real experiments preserved from their released data (docs/analyses.md); inputs from ../shared/reference/.
LZ_REFERENCE ?= ../shared/reference/lz_ws2022
.PHONY: lz-ws2022 lz-ws2024
lz-ws2022: venv  ## LZ WS2022 from its released events into results/lz_ws2022/, compared with LZ's published curves
	$(ACTIVATE)
	snakemake all --cores $(CORES) --configfile workflow/analyses/lz_ws2022/config.yaml
	dmpreserve verify --reference $(LZ_REFERENCE)/LZ_2022_non-power-constrained.txt \
	  --result results/lz_ws2022/limits/limits.csv --column limit_unconstrained_cm2 --rtol 0.25 --mass-range 10:10000
	dmpreserve verify --reference $(LZ_REFERENCE)/LZ_2022_power-constrained.txt \
	  --result results/lz_ws2022/limits/limits.csv --column limit_cm2 --rtol 0.25 --mass-range 10:10000
	dmpreserve verify-yields --fit results/lz_ws2022/fit/fit.json --published workflow/analyses/lz_ws2022/published_yields.csv

COMBINATION_OUT ?= results/combination/si
COMBINE_OPTS ?=
.PHONY: combine-real
combine-real: venv  ## the real combination (XENON1T 2018, LZ WS2022+WS2024, XENONnT 2026; SI 6 GeV-10 TeV) into results/combination/
	$(ACTIVATE)
	test -f results/lz_ws2022/reinterpretation/kit.json || $(MAKE) lz-ws2022
	test -f results/lz_ws2024/reinterpretation/kit.json || $(MAKE) lz-ws2024
	dmpreserve import-release --release ../shared/reference/xenonnt_2026_light_dm -o results/combination/xenonnt_2026_kit
	dmpreserve combine --kit lz_ws2022=results/lz_ws2022/reinterpretation --kit lz_ws2024=results/lz_ws2024/reinterpretation \
	  --kit xenon1t_2018=../shared/reference/xenon1t_2018 --kit xenonnt_2026=results/combination/xenonnt_2026_kit \
	  --model workflow/analyses/combination/si_6gev_10tev.yaml $(COMBINE_OPTS) -o $(COMBINATION_OUT)
	cat $(COMBINATION_OUT)/limits_table.md

lz-ws2024: venv  ## LZ WS2024 from its released events into results/lz_ws2024/ (LZ's curve is not compared)
	$(ACTIVATE)
	snakemake all --cores $(CORES) --configfile workflow/analyses/lz_ws2024/config.yaml

# The tests run in TEST_WORKERS processes (pytest-xdist; auto = one per core), each test file in one process
# (--dist loadfile: a module's fixtures, e.g. a pipeline run, are built once).  TEST_WORKERS=0: one process.
test: venv  ## run the test suite (pytest, one worker per core)
	$(ACTIVATE)
	python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Configuration of ruff, vulture and import-linter: pyproject.toml.  `make format`
# rewrites the files that `ruff format --check` complains about.
lint: venv  ## ruff check + format check, vulture, lint-imports (layers), snakemake --lint, pip check
	$(ACTIVATE)
	status=0
	step() { echo "--> $$*"; "$$@" || { echo "FAILED: $$*" >&2; status=1; }; }
	step ruff check --no-fix
	step ruff format --check
	step vulture
	step lint-imports --no-cache
	step snakemake --lint --configfile $(CONFIG)
	step python -m pip check
	exit $$status

format: venv  ## ruff format + ruff check --fix (rewrites files)
	$(ACTIVATE)
	python -m ruff format
	python -m ruff check --fix

report: venv  ## HTML report of the last run: results/report.html
	$(ACTIVATE)
	snakemake --cores $(CORES) --configfile $(CONFIG) --report results/report.html

image: venv  ## build the project image with Docker (dmpreserve image build)
	$(ACTIVATE)
	dmpreserve image build $(IMAGE_ARGS)

sif: venv  ## convert the project image to an apptainer SIF (dmpreserve image sif)
	$(ACTIVATE)
	dmpreserve image sif $(SIF_ARGS)

# Benchmark-only pins (JAX for the pyhf baselines of bench_limits and bench_toys), installed into the
# venv by `make bench` only, hash-checked, wheels only; `make venv`, `make run` and `make test` never
# install them.  A rebuilt venv (new runtime or dev pins) loses them with this stamp, so the next
# `make bench` installs them again.
REQUIREMENTS_BENCH := env/requirements-bench.txt
BENCH_STAMP := $(VENV)/.stamp-bench

$(BENCH_STAMP): $(PKG_STAMP) $(REQUIREMENTS_BENCH)
	@echo "==> installing the benchmark pins $(REQUIREMENTS_BENCH) into $(VENV)"
	$(PIP_INSTALL) --only-binary :all: -r $(REQUIREMENTS_BENCH)
	$(VENV)/bin/python -m pip check
	touch $@

bench: $(BENCH_STAMP)  ## run the benchmarks in benchmarks/ (installs env/requirements-bench.txt; results in benchmarks/results/)
	$(ACTIVATE)
	python benchmarks/run_all.py $(BENCH_ARGS)

clean:  ## remove results/
	rm -rf results/

distclean: clean  ## also remove .venv and Snakemake's metadata (.snakemake/)
	rm -rf $(VENV) .snakemake/
