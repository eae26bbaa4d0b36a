"""The fast engine's LAPACK calls one matrix at a time: the batched call's results bit for bit, and no stall when
two CPU devices make them at once (the stall they avoid is jaxlib's, see train/jax/linalg.py)."""
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vanishing_gradients.train.jax import linalg

# Two CPU devices, each given the same batches many times over, side by side; both finish, equal to one batched
# call each. With jnp.linalg's batched calls in their place this stalled for good.
SIDE_BY_SIDE = """
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
import jax, jax.numpy as jnp, numpy as np
from vanishing_gradients.train.jax import linalg
a = jax.random.normal(jax.random.PRNGKey(0), (5000, 10, 10))
spd = a @ jnp.swapaxes(a, -1, -2)
for ours, batched, x in ((linalg.eigvalsh, jnp.linalg.eigvalsh, spd), (linalg.qr, jnp.linalg.qr, a)):
    on = [jax.device_put(x, d) for d in jax.devices()]
    for _ in range(60):
        outs = [jax.jit(ours)(y) for y in on]
        jax.block_until_ready(outs)
    for out in outs:
        for o, b in zip(jax.tree.leaves(out), jax.tree.leaves(jax.jit(batched)(x))):
            assert np.array_equal(np.asarray(o), np.asarray(b))
print("done")
"""


@pytest.mark.parametrize("shape", [(4, 5, 5), (3, 2, 25, 25)])
def test_one_matrix_at_a_time_is_the_batched_call_bit_for_bit(shape):
    a = jax.random.normal(jax.random.PRNGKey(1), shape)
    spd = a @ jnp.swapaxes(a, -1, -2)
    np.testing.assert_array_equal(jax.jit(linalg.eigvalsh)(spd), jax.jit(jnp.linalg.eigvalsh)(spd))
    tall = a[..., :, :3]  # (..., n, 3): the reduced QR of a tall matrix, as orthogonal kernels draw it
    for ours, theirs in zip(jax.jit(linalg.qr)(tall), jax.jit(jnp.linalg.qr)(tall)):
        assert ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)


def test_two_devices_side_by_side_finish():
    done = subprocess.run([sys.executable, "-c", SIDE_BY_SIDE], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("done")
