"""The GPU kernels (gpu_kernels.py) against the engine's XLA path: the same weights and row orders give the
same numbers to rounding. On a GPU Triton compiles the kernels; elsewhere Pallas interprets them."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import spec_for
from vanishing_gradients.train.jax import program as je
from vanishing_gradients.train.jax import initializers as ji
from vanishing_gradients.train.jax.optimizers import hyperparameters
from vanishing_gradients.train.jax.shuffle import shuffle_keys
from vanishing_gradients.core.data import arrays, make_dataset

CASES = {  # study, optimizer, batch size, depths of the replicas (several: one program for mixed depths)
    # a batch narrower than a warp (7 rows: 8 threads), SGD with Nesterov momentum, depths 1-3 in one program
    "tanh_nesterov_mixed": ("deep_tanh", {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
                            7, (1, 2, 3)),
    # a batch wider than a warp (50 rows: 64 threads, two warps), Adam, one depth
    "relu_adam": ("deep_relu", {"name": "adam", "learning_rate": 0.01}, 50, (3,)),
}


@pytest.fixture(scope="module")
def data(params_module):
    frame = make_dataset(params_module["data"])
    (x, y), (xt, yt) = arrays(frame, "train"), arrays(frame, "test")
    return tuple(jnp.asarray(a, jnp.float32) for a in (x, y[:, 0], xt, yt[:, 0]))


@pytest.fixture(scope="module")
def params_module():
    import yaml

    from conftest import ROOT
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("case", CASES)
def test_kernels_match_the_xla_path(params_module, data, case):
    """12 replicas, one of which diverges: history, final metrics,
    every layer statistic, the histograms and the weights agree with the XLA path's; the diverged replica is
    NaN or huge in both and the others stay finite."""
    study, optimizer, batch_size, depths = CASES[case]
    epochs, K, diverging = 3, 12, 4
    specs = [spec_for(params_module, study, depths[k % len(depths)]) for k in range(K)]
    settings = [{**optimizer, "learning_rate": 1e30 if k == diverging else optimizer["learning_rate"]}
                for k in range(K)]
    cfg = je.Training(specs[0].activation, optimizer["name"], epochs, batch_size, stats_freq=1, histogram_freq=1,
                      nesterov=optimizer.get("nesterov", False))
    seeds, depth_all = list(range(K)), max(depths)

    def run(platform):
        with jax.default_device(jax.devices(platform)[0] if platform == "cpu" else None):
            # compiled whole, as the engine runs it (op by op, a GPU compiles each operation on its own)
            return jax.tree.map(np.asarray, je.compiled(platform, len(depths) > 1, specs[0].width)(
                cfg, platform, len(depths) > 1, platform == "gpu", ji.init_params(specs, seeds, depth_all),
                hyperparameters(settings), jnp.asarray([s.depth for s in specs]), jnp.asarray([0, 5]),
                shuffle_keys(seeds), data))

    # the XLA path always on the CPU (quick to compile); the kernels on the GPU where there is one
    xla, kernels = run("cpu"), run("gpu")
    final = lambda out: out["final"][:, diverging]
    assert not np.all(np.isfinite(final(kernels)) & (np.abs(final(kernels)) < 1e3))
    assert not np.all(np.isfinite(final(xla)) & (np.abs(final(xla)) < 1e3))
    healthy = np.arange(K) != diverging
    assert np.all(np.isfinite(kernels["final"][:, healthy]))
    for key in ("history", "final"):  # (..., [loss, accuracy, loss, accuracy], K)
        ours, theirs = kernels[key][..., healthy], xla[key][..., healthy]
        np.testing.assert_allclose(ours[..., [0, 2], :], theirs[..., [0, 2], :], rtol=1e-5)
        # accuracies: the same count of correct rows (of 500); rounding may tip a row lying on the threshold
        flips = np.abs(np.round((ours - theirs)[..., [1, 3], :] * 500))
        assert flips.max() <= 1 and np.mean(flips) < 0.01, flips
    stats_ours, stats_theirs = kernels["layer_stats"][..., healthy], xla["layer_stats"][..., healthy]
    np.testing.assert_allclose(stats_ours[:, :4], stats_theirs[:, :4], rtol=1e-4, atol=1e-7)
    # saturated and dead shares count activations: rounding may tip one across |a| = 0.99 (one of 500 x 5)
    np.testing.assert_allclose(stats_ours[:, 4:], stats_theirs[:, 4:], atol=1e-3)
    np.testing.assert_array_equal(np.isnan(stats_ours), np.isnan(stats_theirs))
    for a, b in zip(jax.tree.leaves(kernels["params"]), jax.tree.leaves(xla["params"])):
        np.testing.assert_allclose(a[..., healthy], b[..., healthy], atol=1e-5)
    np.testing.assert_allclose(kernels["hist_ranges"], xla["hist_ranges"], rtol=1e-4, atol=1e-7)
    assert np.abs(kernels["hist_counts"] - xla["hist_counts"]).sum(axis=-1).max() <= 2  # a value may tip a bucket
