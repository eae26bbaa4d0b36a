"""The finite-width theory (analysis/finite_width.py) against closed forms, direct solves and Monte Carlo with
fixed seeds."""
import math

import numpy as np
import pytest

from vanishing_gradients.analysis import finite_width as fw
from vanishing_gradients.core.extensions import draw, moments


@pytest.mark.parametrize("init", ["he_uniform", "glorot_uniform"])
def test_dead_at_one_input_matches_monte_carlo(init):
    """Networks of 3 units and depth 1..8 at one input: the share with a layer of all zeros there is
    1 - (1 - 2^-n)^L for any symmetric initialiser (the formula is exact, not only for Gaussian weights)."""
    rng = np.random.default_rng(1)
    samples, width, depth = 20000, 3, 8
    h = np.broadcast_to(rng.normal(size=2), (samples, 1, 2))
    dead = []
    for _ in range(depth):
        h = np.maximum(h @ draw(init, rng, h.shape[-1], width, samples), 0)
        dead.append(np.all(h == 0, axis=(1, 2)))
    measured = np.logical_or.accumulate(dead, axis=0).mean(axis=1)
    expected = fw.dead_at_one_input(width, np.arange(1, depth + 1))
    assert np.all(np.abs(measured - expected) < 4 * np.sqrt(expected * (1 - expected) / samples) + 1e-9)


def test_born_dead_on_every_input_is_rarer_than_at_one_input():
    x = np.random.default_rng(2).uniform(-1, 1, (200, 2))
    mc = fw.init_monte_carlo("relu", "he_uniform", 3, 10, x, samples=3000)
    share = fw.born_dead_share(mc)
    assert np.all(np.diff(share) >= 0) and share[-1] > 0.2  # deeper: more networks dead
    assert np.all(share <= fw.dead_at_one_input(3, np.arange(1, 11)) + 0.02)
    dead_rows = mc["dead"].any(axis=0)
    assert np.all(mc["top_share"][-1][dead_rows] == 1.0)  # a dead network's last layer is constant: one line


@pytest.mark.parametrize("activation, init", [("relu", "he_uniform"), ("tanh", "glorot_uniform")])
def test_monte_carlo_equals_one_network_at_a_time(activation, init):
    """The Monte Carlo, which propagates blocks of networks with units in rows, against each network computed
    alone from the same kernels (one draw per layer for all networks) in the textbook layout: numpy's covariance
    and eigenvalues in float64 of the activations in float32, the engines' precision, which the Monte Carlo
    computes in. A sample count that is not a multiple of the block leaves a short last block."""
    x = np.random.default_rng(3).uniform(-1, 1, (60, 2))
    samples, width, depth = fw.MC_BLOCK * 2 + 5, 4, 6
    mc = fw.init_monte_carlo(activation, init, width, depth, x, samples=samples, seed=7)
    rng = np.random.default_rng(7)
    kernels = [draw(init, rng, 2 if layer == 0 else width, width, samples).astype(np.float32)
               for layer in range(depth)]
    act = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0))
    for s in range(samples):
        h = x.astype(np.float32)
        for layer in range(depth):
            h = act(h @ kernels[layer][s])  # (n, width)
            eig = np.linalg.eigvalsh(np.cov(h.astype(float), rowvar=False, bias=True))
            share = eig[-1] / eig.sum() if eig.sum() > 0 else 1.0
            assert mc["dead"][layer, s] == np.all(h == 0)
            assert mc["top_share"][layer, s] == pytest.approx(share, rel=1e-5, abs=1e-6)
            if np.any(h):
                assert mc["log_rms"][layer, s] == pytest.approx(0.5 * np.log(np.mean(h.astype(float) ** 2)),
                                                                rel=1e-5, abs=1e-6)


def test_tanh_fixed_point_solves_the_equation_and_matches_iteration():
    for gain in (1.5, 2.5, 5.0):
        h = fw.tanh_fixed_point(gain)
        assert abs(h - math.tanh(gain * h)) < 1e-12 and h > 0
        direct = 1.0
        for _ in range(2000):
            direct = math.tanh(gain * direct)  # iterating converges: the slope there is below 1
        assert h == pytest.approx(direct, abs=1e-10)
    assert fw.tanh_fixed_point(0.8) == 0.0
    mode = fw.common_mode({"name": "random_uniform", "minval": 0.0, "maxval": 1.0}, 5)
    assert mode["h_star"] == pytest.approx(0.9857, abs=1e-4) and mode["gain_mean"] == pytest.approx(0.0708, abs=1e-3)


def test_common_mode_gain_is_the_measured_decay_of_a_gradient_along_the_fixed_point():
    """Deep in a RandomUniform(0, 1) tanh network, a small perturbation of the input along the common direction
    shrinks per layer by the predicted gain in root mean square (Monte Carlo over 4,000 layers, a direct forward
    pass rather than the formula's column sums)."""
    rng = np.random.default_rng(3)
    init, width = {"name": "random_uniform", "minval": 0.0, "maxval": 1.0}, 5
    mode = fw.common_mode(init, width)
    h, dh = np.full(width, mode["h_star"]), np.full(width, 1e-6)
    ratios = []
    for w in draw(init, rng, width, width, 4000):
        out_dh = (1 - np.tanh(h @ w) ** 2) * (dh @ w)
        ratios.append(np.sum(out_dh ** 2) / np.sum(dh ** 2))
    assert math.sqrt(np.mean(ratios)) == pytest.approx(mode["gain"], rel=0.05)
    assert mode["gain"] > mode["gain_mean"]  # tanh' is convex out there: the spread of the sums adds


def test_lyapunov_exponents_match_monte_carlo():
    exact = fw.lyapunov_exponents(5)
    measured = fw.lyapunov_monte_carlo(5, layers=400, samples=200)
    np.testing.assert_allclose(measured, exact, atol=0.01)
    assert exact[0] - exact[1] == pytest.approx(0.140, abs=1e-3)
    assert fw.collapse_depth(5, 0.99) == pytest.approx(math.log(99) / (2 * 0.1402), rel=1e-3)


def test_relu_log_factor_matches_monte_carlo():
    """One ReLU layer with Gaussian He weights: the log of the squared size's factor, given the layer is alive."""
    rng = np.random.default_rng(4)
    for width in (3, 5, 8):
        h = np.abs(rng.normal(size=(200000, width)))
        w = rng.normal(scale=math.sqrt(2 / width), size=(200000, width, width))
        factor = np.sum(np.maximum(np.einsum("si,sio->so", h, w), 0) ** 2, axis=1) / np.sum(h * h, axis=1)
        logs = np.log(factor[factor > 0])
        mean, variance = fw.relu_log_factor(width)
        assert logs.mean() == pytest.approx(mean, abs=0.01) and logs.var() == pytest.approx(variance, rel=0.03)


def test_orthogonal_draws_are_orthogonal_with_keras_moments():
    rng = np.random.default_rng(5)
    square, wide = draw("orthogonal", rng, 5, 5, 100), draw("orthogonal", rng, 2, 5, 100)
    np.testing.assert_allclose(square @ np.swapaxes(square, 1, 2), np.broadcast_to(np.eye(5), (100, 5, 5)), atol=1e-12)
    np.testing.assert_allclose(wide @ np.swapaxes(wide, 1, 2), np.broadcast_to(np.eye(2), (100, 2, 2)), atol=1e-12)
    assert moments("orthogonal", 2, 5) == (0.0, 0.2) and square.var() == pytest.approx(0.2, rel=0.1)


def test_half_depth_interpolates():
    assert fw.half_depth([1, 2, 3], [0.1, 0.3, 0.7]) == pytest.approx(2.5)
    assert fw.half_depth([2, 4], [0.6, 0.9]) == 2 and fw.half_depth([1, 2], [0.1, 0.2]) == math.inf
