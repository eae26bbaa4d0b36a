"""The fast engine's LAPACK calls (eigenvalues, QR), one matrix per call.

On a CPU, jaxlib's LAPACK kernels split a batch of matrices over XLA's thread pool, which every CPU device of
the process shares, and block until the pieces are done. When the runs of a program go side by side (one per
core, see program.train_replicas) and their batched calls overlap, every thread of that pool can end up waiting
for pieces that no thread is left to run: the process stalls for good. A call on one matrix runs where it is
called, so these functions loop over the matrices inside the program instead; each matrix's result is bit for
bit what the batched call gives (test_linalg.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _one_at_a_time(fn, a):
    """fn applied to each matrix of a (..., m, n) in turn (a loop in the program); its outputs keep a's batch
    axes in front."""
    batch = a.shape[:-2]
    out = jax.lax.map(fn, a.reshape((-1,) + a.shape[-2:]))
    return jax.tree.map(lambda o: o.reshape(batch + o.shape[1:]), out)


def eigvalsh(a):
    """Eigenvalues (..., n), ascending, of the symmetric matrices a (..., n, n): jnp.linalg.eigvalsh's."""
    return _one_at_a_time(jnp.linalg.eigvalsh, a)


def qr(a):
    """(q (..., m, k), r (..., k, n)) of a (..., m, n), k = min(m, n): jnp.linalg.qr's reduced QR."""
    return _one_at_a_time(jnp.linalg.qr, a)
