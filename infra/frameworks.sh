#!/usr/bin/env bash
# make test-frameworks: collector callbacks inside real PyTorch Lightning / HF Trainer / Keras.
# Uses a separate venv (.venv-frameworks): torch from PyPI is a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-frameworks/bin/python ]; then
  python3.11 -m venv .venv-frameworks
  echo '*' > .venv-frameworks/.gitignore
  .venv-frameworks/bin/pip install -q -r requirements-frameworks.txt
fi
KERAS_BACKEND="${KERAS_BACKEND:-torch}" PYTHONPATH=. \
  exec .venv-frameworks/bin/pytest -m frameworks tests/collector/frameworks -p no:cacheprovider "$@"
