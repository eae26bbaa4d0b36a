"""What engine_speed.py compares the fast engine with: the arithmetic a model-epoch needs, the rate this machine
does arithmetic at, and a peer, the same training written the way a PyTorch user would write it.

The peer (P5) trains K replicas of one MLP at once with torch.func, as PyTorch's model-ensembling tutorial
does: the replicas' parameters stacked (stack_module_state), their gradients from vmap(grad(functional_call)).
Each replica shuffles its own rows each epoch and takes minibatches of 32, the short last one kept; SGD with
momentum as Keras updates it (v = momentum v - lr g; w += v); binary cross-entropy from the logits; after each
epoch, the loss and accuracy on the validation rows, as model.fit(validation_data=...) reports them. No
per-layer statistics: that is what the fast engine computes on top.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path


def flops(depth: int, width: int, n_train: int, n_validation: int, n_inputs: int = 2) -> int:
    """Floating-point operations of one model-epoch, counting the layers' matrix products only (a multiply-add
    is two): forward, backward and the weights' gradients for each training row, forward alone for each
    validation row. Activations, biases, the optimiser and any statistics come on top."""
    forward = 2 * (n_inputs * width + (depth - 1) * width * width + width)  # per row
    return 3 * forward * n_train + forward * n_validation


def matmul_flops_per_s(size: int = 2048, repeats: int = 10) -> float:
    """The best rate, in flops per second, at which JAX multiplies two (size, size) float32 matrices on this
    machine's CPU (every core): the arithmetic floor's denominator."""
    import jax
    jax.config.update("jax_platforms", "cpu")
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size))
    product = jax.jit(lambda a: a @ a)
    product(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best


def machine() -> dict:
    """This machine as the figures' rows name it: its processor, logical cores and widest vector instructions (the
    2-core machines of this project's sessions have had AVX-512 or AVX2 only, and differ up to 3x in arithmetic).
    Off Linux (no /proc/cpuinfo): the processor's name as Python knows it, and "unknown" instructions."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = (line.split(":", 1) for line in (cpuinfo.read_text() if cpuinfo.exists() else "").splitlines()
             if ":" in line)
    fields = {key.strip(): value.strip() for key, value in lines}  # each processor's fields alike: the last kept
    flags = set(fields.get("flags", "").split())
    vector = ("AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else
              "neither AVX-512 nor AVX2" if flags else "unknown")
    return {"cpu": fields.get("model name") or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "vector": vector}


def _mlp(torch, depth: int, width: int, n_inputs: int = 2):
    """The study's tanh MLP with kernels uniform in [0, 1) and zero biases, as Keras builds it."""
    sizes = [n_inputs] + [width] * depth
    layers = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.Tanh()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))
    for module in model:
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.uniform_(module.weight, 0.0, 1.0)
            torch.nn.init.zeros_(module.bias)
    return model


def torch_peer(data: dict, replicas: int, epochs: int, depth: int, width: int, batch_size: int = 32,
               learning_rate: float = 0.01, momentum: float = 0.9) -> dict:
    """Train `replicas` replicas for `epochs` epochs after one epoch of warm-up; model-epochs per second."""
    import copy

    import torch
    from torch.func import functional_call, grad, stack_module_state, vmap

    torch.manual_seed(0)
    models = [_mlp(torch, depth, width) for _ in range(replicas)]
    params, buffers = stack_module_state(models)
    params = {k: v.detach() for k, v in params.items()}  # each (K, ...)
    velocity = {k: torch.zeros_like(v) for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    x, y = (torch.tensor(a, dtype=torch.float32) for a in data["train"])  # (n, 2), (n, 1): copies
    x_val, y_val = (torch.tensor(a, dtype=torch.float32) for a in data["test"])
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def loss(p, b, xb, yb):  # one replica's minibatch: xb (B, 2), yb (B, 1)
        return bce(functional_call(base, (p, b), (xb,)), yb)

    gradients = vmap(grad(loss))
    validate = vmap(lambda p, b: functional_call(base, (p, b), (x_val,)))  # (K, n_val, 1) logits

    def epoch():
        order = torch.argsort(torch.rand(replicas, len(x)), dim=1)  # (K, n): each replica's own shuffle
        xs, ys = x[order], y[order]  # (K, n, 2), (K, n, 1)
        for start in range(0, len(x), batch_size):
            g = gradients(params, buffers, xs[:, start:start + batch_size], ys[:, start:start + batch_size])
            with torch.no_grad():
                for k in params:
                    velocity[k].mul_(momentum).sub_(learning_rate * g[k])
                    params[k].add_(velocity[k])
        with torch.no_grad():
            logits = validate(params, buffers)
            return bce(logits, y_val.expand_as(logits)), ((logits > 0) == (y_val > 0.5)).float().mean()

    epoch()  # warm-up
    start = time.perf_counter()
    for _ in range(epochs):
        val_loss, val_accuracy = epoch()
    seconds = time.perf_counter() - start
    return {"model_epochs_per_s": replicas * epochs / seconds, "run_s": seconds, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "val_loss": float(val_loss), "val_accuracy": float(val_accuracy)}
