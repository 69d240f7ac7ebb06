#!/usr/bin/env bash
# Builds a virtual environment with the oldest versions pyproject.toml allows (the floor set
# of README.md, "Tested versions") and runs the test suite in it. Not run by CI: run it by
# hand after raising or lowering a floor.
#
#   tools/check_floors.sh [VENV_DIR] [pytest arguments...]
#
# VENV_DIR defaults to /tmp/jobflow-floors (recreated each run). Extra arguments go to pytest
# (default: the whole suite, with the project's `-n 2`).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-/tmp/jobflow-floors}"
shift || true
python="${PYTHON:-python3}"

# Keep these equal to the floors of [project] dependencies in pyproject.toml.
floors=(
    "jax==0.9.0"
    "jaxlib==0.9.0"
    "flax==0.10.0"
    "optax==0.2.3"
    "numpy==2.0.0"
    "ml_dtypes==0.5.0"
    "protobuf==4.21.12"
    "rich==13.0.0"
    "crc32c==2.3"
    "opencv-python-headless==4.10.0.84"
    "tensorboardX==2.6.2.2"
)

rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "${floors[@]}" -e ".[test,examples]"
"$venv/bin/python" -m pip list 2>/dev/null | grep -i -E "^(jax|jaxlib|flax|optax|numpy|ml.dtypes|protobuf|rich|crc32c|opencv-python-headless|tensorboardX) "
"$venv/bin/python" -m pytest "$@"
