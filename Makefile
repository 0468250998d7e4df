# carbonpipe — the two commands: `make demo` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PY    := .venv/bin/python
CP    := .venv/bin/carbonpipe

.PHONY: help setup up demo stop clean clean-all test test-unit test-integration test-browser \
        test-frameworks lint bench bench-pipeline bench-collector bench-schedule

help:
	@echo "make demo             set up, start Kafka/MongoDB/feeder/Spark/dashboard, run a real training job"
	@echo "make test             set up and run the whole test suite (unit, integration, browser)"
	@echo "make stop             stop everything the demo started;  make clean: also drop all data"
	@echo "make bench            pipeline (1 M events), collector overhead, scheduler, readers at fleet scale"
	@echo "make test-frameworks  collector callbacks against real PyTorch Lightning / HF / Keras (big download)"
	@echo "make lint             ruff + mypy"
	@echo "make cluster-up       3 Kafka brokers (RF 3), Spark master + 2 workers, HDFS on loopback"
	@echo "make test-cluster     the pipeline on that cluster, with a broker and a worker lost (~min)"

setup:
	@bash infra/setup.sh

up: setup
	@$(CP) up

demo: setup
	@bash infra/demo.sh

stop:
	@if [ -x $(CP) ]; then $(CP) apps down; $(CP) down; else echo "nothing to stop (no .venv)"; fi

# Drops all data (Kafka log, FerretDB, checkpoints, cold store, spool, logs: the home folder's
# data_dirs); keeps the built jars and binary so the next start takes seconds. clean-all removes
# those too. Both stop everything first.
clean:
	@if [ -x $(CP) ]; then $(CP) clean; else echo "nothing to clean (no .venv: make setup)"; fi

clean-all:
	@if [ -x $(CP) ]; then $(CP) clean --all; else echo "nothing to clean (no .venv: make setup)"; fi

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy carbonpipe collector spark_jobs dashboard

test: setup
	@bash infra/test.sh

test-unit: setup
	.venv/bin/pytest -m "not integration and not browser"

test-integration: setup
	.venv/bin/pytest -m integration

test-browser: setup
	.venv/bin/pytest -m browser

test-frameworks: setup
	@bash infra/frameworks.sh

# Every bench installs what it compares against (the `bench` extra: CodeCarbon) first and fails,
# writing nothing to bench/results/, when a comparison cannot be measured. BENCH_ARGS passes
# options through, e.g. make bench-collector BENCH_ARGS="--rounds 5 --window-s 30". After a
# bench has written its result, the README's table is regenerated from bench/results/.
.PHONY: bench-deps bench-readme bench-readers bench-latency bench-scale
bench: bench-pipeline bench-collector bench-schedule bench-readers bench-latency bench-scale

bench-deps: setup
	@bash bench/install.sh

bench-pipeline: bench-deps
	$(PY) bench/bench_pipeline.py $(BENCH_ARGS)
	$(PY) bench/readme_table.py --write

bench-collector: bench-deps
	$(PY) bench/bench_collector.py $(BENCH_ARGS)
	$(PY) bench/readme_table.py --write

bench-schedule: bench-deps
	$(PY) bench/bench_schedule.py $(BENCH_ARGS)
	$(PY) bench/readme_table.py --write

bench-readers: bench-deps
	$(PY) bench/bench_readers.py $(BENCH_ARGS)

bench-latency: bench-deps
	$(PY) bench/bench_latency.py $(BENCH_ARGS)

# 10,000 runs x 100 windows through Kafka and the streaming job, then runs/users/dashboard timed;
# BENCH_ARGS="--runs 200 --windows-per-run 20" for a quick try.
bench-scale: bench-deps
	$(PY) bench/bench_scale.py $(BENCH_ARGS)
	$(PY) bench/readme_table.py --write

bench-readme:
	$(PY) bench/readme_table.py --write

.PHONY: bench-study
bench-study: setup
	$(PY) bench/bench_study.py
	$(PY) bench/readme_table.py --write

# The local multi-process cluster (README "On a cluster"): state in .carbonpipe/cluster/.
.PHONY: cluster-up cluster-down test-cluster
cluster-up: setup
	@$(CP) cluster up

cluster-down:
	@if [ -x $(CP) ]; then $(CP) cluster down; else echo "nothing to stop (no .venv)"; fi

test-cluster: setup
	.venv/bin/pytest -p no:cacheprovider --durations=10 -m cluster
