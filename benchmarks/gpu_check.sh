#!/usr/bin/env bash
# The fast engine on a GPU machine that has JAX with CUDA, pandas, scikit-learn and tensorboard, but no
# TensorFlow, Keras, Snakemake or network: its tests (the Keras comparisons skip themselves without
# TensorFlow) and benchmark P3. Run from the repository root:   bash benchmarks/gpu_check.sh
# Small pure-Python packages it may lack travel as wheels in .whl/, fetched beforehand where pip works:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       pyyaml jsonschema jsonschema-specifications referencing rpds-py attrs pytest pluggy iniconfig
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import jax; print('JAX', jax.__version__, jax.devices())"
python3 -m pytest -q -p no:cacheprovider tests/test_jax_engine.py
python3 benchmarks/engine_speed.py --parts p3
