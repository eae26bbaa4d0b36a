#!/usr/bin/env bash
# The fast engine on a GPU machine that has JAX with CUDA, pandas, scikit-learn, pytest, PyYAML and tensorboard,
# but no TensorFlow, Keras, Snakemake or network: its tests (the Keras comparisons skip themselves without
# TensorFlow; tests/test_gpu_kernels.py compiles the kernels with Triton there), then benchmark P3 with XLA's
# fusions and with the GPU kernels (VGRAD_GPU_KERNELS=1). Run from the repository root; arguments go to
# engine_speed.py, e.g.
#   bash benchmarks/gpu_check.sh --p3-epochs 50 --stats-freq 10 --histogram-freq 50
# What the machine lacks (jsonschema and its dependencies) travels as wheels in .whl/, fetched beforehand:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 -d .whl jsonschema jsonschema-specifications referencing rpds-py
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import jax; print('JAX', jax.__version__, jax.devices())"
python3 -m pytest -q -p no:cacheprovider tests/test_gpu_kernels.py tests/test_jax_engine.py tests/test_jax_model.py \
    tests/test_shuffle.py
python3 benchmarks/engine_speed.py --parts p3 "$@"
VGRAD_GPU_KERNELS=1 python3 benchmarks/engine_speed.py --parts p3 "$@"
