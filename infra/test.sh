#!/usr/bin/env bash
# `make test`: lint, then the whole suite in one pytest session, so the real services
# (Kafka, FerretDB) start once and are shared by every integration and browser test.
set -uo pipefail
cd "$(dirname "$0")/.."
T=$SECONDS
echo "[test 1/2] ruff (lint)"
.venv/bin/ruff check . || { echo "lint failed: run '.venv/bin/ruff check --fix .' and fix what remains"; exit 1; }
echo "[test 2/2] pytest: unit, integration (real Kafka, Spark, FerretDB) and browser tests"
.venv/bin/pytest -p no:cacheprovider --durations=15 "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "no tests were collected"; exit 1; fi
echo "tests finished in $((SECONDS - T))s (exit $rc)"
exit $rc
