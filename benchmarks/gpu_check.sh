#!/usr/bin/env bash
# The fast engine on a GPU machine that has JAX with CUDA, pandas, scikit-learn, pytest, PyYAML and tensorboard,
# but no TensorFlow, Keras, Snakemake or network: the GPU kernels against the XLA path (tests/test_gpu_kernels.py;
# Triton compiles the kernels there), where an epoch's time goes on the kernels' path (gpu_epoch_parts.py),
# benchmark P3 with the GPU kernels (VGRAD_GPU_KERNELS=1) and with XLA's fusions, then the engine's other tests
# (the Keras comparisons skip themselves without TensorFlow). Run from the repository root; arguments go to
# engine_speed.py. The whole check takes many minutes (XLA compiles each P3 program on a GPU for a minute or
# more); a quick one:
#   bash benchmarks/gpu_check.sh --p3-configs 5x100000 --p3-epochs 50 --stats-freq 10 --histogram-freq 50
# What the machine lacks (jsonschema and its dependencies, google-crc32c) travels as wheels in .whl/, fetched
# beforehand:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 -d .whl jsonschema jsonschema-specifications referencing rpds-py \
#       google-crc32c==1.7.1
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import jax; print('JAX', jax.__version__, jax.devices())"
python3 -m pytest -q -p no:cacheprovider --durations=5 tests/test_gpu_kernels.py
python3 benchmarks/gpu_epoch_parts.py --depth 5 --replicas 100000
VGRAD_GPU_KERNELS=1 python3 benchmarks/engine_speed.py --parts p3 "$@"
python3 benchmarks/engine_speed.py --parts p3 "$@"
python3 -m pytest -q -p no:cacheprovider tests/test_jax_engine.py tests/test_jax_model.py tests/test_shuffle.py
