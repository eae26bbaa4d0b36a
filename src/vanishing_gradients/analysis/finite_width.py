"""Finite-width theory: why 5-unit layers stop learning where mean-field theory (theory.py) sees no limit.

- ReLU, symmetric weights, zero biases: at one input the n units of a layer are all zero together with
  probability 2^-n, layer after layer independently, so a depth-L network is dead there with probability
  1 - (1 - 2^-n)^L (Lu, Shin, Su & Karniadakis 2020). Dead on *every* training input (born dead) is rarer:
  init_monte_carlo draws networks with the configured initialiser over the actual training inputs.
- ReLU/He: the squared size of the signal is multiplied per layer by an independent random factor, (2/n) chi^2_K
  with K ~ Binomial(n, 1/2) active units for Gaussian weights, so its log drifts down and spreads out in
  proportion to beta = sum of 1/n_j over layers (Hanin & Rolnick 2018; Hanin 2018): relu_log_factor.
- tanh with RandomUniform(0, 1): the weights' mean mu drives every unit by the same input, with the stable
  fixed point h* = tanh(n mu h*) and a backward gain n mu (1 - h*^2) per layer: common_mode.
- Products of random n x n matrices pull their top two directions apart at the rate of their Lyapunov gap
  (Newman 1986), so a 2-D input collapses onto one line with depth: lyapunov_exponents, collapse_depth.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from ..core.extensions import ACTIVATIONS, draw, moments

MC_SAMPLES = 2000  # networks per Monte Carlo: a share's standard error is at most 0.011
MC_SEED = 0
MC_BLOCK = 32  # networks propagated together (see init_monte_carlo)


def dead_at_one_input(width: int, depth) -> np.ndarray:
    """Probability that a ReLU network of `depth` hidden layers of `width` units, symmetric weights and zero
    biases, outputs a constant at one given input (some layer all zeros there)."""
    return 1 - (1 - 2.0 ** -width) ** np.asarray(depth, float)


def init_monte_carlo(activation: str, hidden_init, width: int, depth: int, x: np.ndarray,
                     samples: int = MC_SAMPLES, seed: int = MC_SEED) -> dict[str, np.ndarray]:
    """Networks drawn as the engines draw them (zero biases), propagated over the inputs x (n, n_in). The first L
    layers of a deeper network are a depth-L network, so one draw serves every depth 1..depth. Per hidden layer
    and network, each (depth, samples): `dead` (all zeros for every input), `top_share` (share of the variance of
    the centred activations in the first principal component; 1 when constant) and `log_rms` (log of the
    activations' root mean square)."""
    rng = np.random.default_rng(seed)
    act = ACTIVATIONS[activation].forward
    # in float32, the precision both engines compute in (Keras's default float type): numpy's tanh is several times
    # faster in it where the CPU lacks AVX-512, and the default study's shares came out bit for bit as in float64
    x_t = np.asarray(x, np.float32).T  # (n_in, n): the inputs in columns
    # every layer's kernels first, one draw per layer for all networks, transposed: (samples, width, fan_in) each
    kernels = [np.swapaxes(draw(hidden_init, rng, len(x_t) if layer == 0 else width, width, samples), 1, 2)
               .astype(np.float32) for layer in range(depth)]
    out = {"dead": np.empty((depth, samples), bool), "top_share": np.empty((depth, samples)),
           "log_rms": np.empty((depth, samples))}
    # then MC_BLOCK networks at a time through all their layers, units in rows and inputs in columns: a block's
    # activations stay in cache (all networks at once are tens of megabytes per array, each operation a pass through
    # memory), and the means over inputs run along contiguous rows
    for start in range(0, samples, MC_BLOCK):
        block = slice(start, min(start + MC_BLOCK, samples))
        h = x_t  # (n_in, n), then (networks, width, n)
        for layer, kernel in enumerate(kernels):
            # stacked products by matmul, not einsum: numpy's einsum runs these without BLAS, several times slower
            h = act(np, kernel[block] @ h)  # (networks, width, n)
            centred = h - h.mean(axis=2, keepdims=True)
            eig = np.linalg.eigvalsh(centred @ np.swapaxes(centred, 1, 2) / h.shape[2])  # (networks, width)
            total = eig.sum(axis=-1)
            out["dead"][layer, block] = np.all(h == 0, axis=(1, 2))
            out["top_share"][layer, block] = np.where(total > 0, eig[:, -1] / np.where(total > 0, total, 1), 1.0)
            with np.errstate(divide="ignore"):
                out["log_rms"][layer, block] = 0.5 * np.log(np.mean(h * h, axis=(1, 2)))
    return out


def born_dead_share(mc: dict) -> np.ndarray:
    """(depth,) share of networks of each depth 1..depth with some layer dead on every input."""
    return np.logical_or.accumulate(mc["dead"], axis=0).mean(axis=1)


def collapsed_share(mc: dict, threshold: float) -> np.ndarray:
    """(depth,) share of networks of each depth whose last hidden layer holds at least `threshold` of its variance
    in one direction."""
    return (mc["top_share"] >= threshold).mean(axis=1)


def half_depth(depths, shares) -> float:
    """The depth at which `shares` (one per depth, rising) first reaches one half, interpolated linearly between
    depths; inf when it never does."""
    depths, shares = np.asarray(depths, float), np.asarray(shares, float)
    above = np.flatnonzero(shares >= 0.5)
    if not len(above):
        return math.inf
    i = above[0]
    if i == 0:
        return float(depths[0])
    return float(depths[i - 1] + (0.5 - shares[i - 1]) / (shares[i] - shares[i - 1]) * (depths[i] - depths[i - 1]))


def relu_log_factor(width: int) -> tuple[float, float]:
    """Mean and variance of log(|h_l|^2 / |h_{l-1}|^2) for one ReLU layer with Gaussian He weights (variance 2/n),
    given that the layer is not all zero: (2/n) chi^2_K, K ~ Binomial(n, 1/2) >= 1, with E log chi^2_k =
    psi(k/2) + log 2 and Var log chi^2_k = psi'(k/2). Over L layers the log squared size drifts by L times the mean
    and spreads with L times the variance; for wide layers both approach -5/(2n) and 5/n (Hanin's 5 beta)."""
    k = np.arange(1, width + 1)
    p = special.comb(width, k) / (2.0 ** width - 1)  # Binomial(n, 1/2) given K >= 1
    means = math.log(4 / width) + special.digamma(k / 2)
    mean = float(np.sum(p * means))
    return mean, float(np.sum(p * (special.polygamma(1, k / 2) + (means - mean) ** 2)))


def tanh_fixed_point(gain: float) -> float:
    """The positive solution of h = tanh(gain h) (0 when gain <= 1: the origin is then the stable one)."""
    if gain <= 1:
        return 0.0
    return float(optimize.brentq(lambda h: h - math.tanh(gain * h), 1e-12, 1.0))


def common_mode(hidden_init, width: int, samples: int = 100_000, seed: int = MC_SEED) -> dict[str, float]:
    """tanh with weights of mean mu > 0: each unit's input is dominated by n mu h, so the units settle near the
    fixed point h* = tanh(n mu h*), and a gradient crossing a layer along that common direction is scaled by
    about n mu (1 - h*^2) (`gain_mean`). Unit j's own column sum S_j varies, and tanh' is convex there, so the
    root mean square over units of S_j (1 - tanh(S_j h*)^2), by Monte Carlo over the initialiser, is the gain a
    gradient's size actually sees per layer (`gain`)."""
    mu = moments(hidden_init, width, width)[0]
    h = tanh_fixed_point(width * mu)
    sums = draw(hidden_init, np.random.default_rng(seed), width, width, samples).sum(axis=1)  # (samples, width)
    gain = float(np.sqrt(np.mean((sums * (1 - np.tanh(sums * h) ** 2)) ** 2)))
    return {"mu": mu, "h_star": h, "slope": 1 - h * h, "gain_mean": width * mu * (1 - h * h), "gain": gain}


def lyapunov_exponents(width: int, sigma_w2: float = 1.0) -> np.ndarray:
    """(width,) Lyapunov exponents of products of width x width matrices with independent N(0, sigma_w2 / width)
    entries, largest first (Newman 1986): lambda_i = (log(2 sigma_w2 / width) + psi((width - i + 1) / 2)) / 2."""
    i = np.arange(1, width + 1)
    return 0.5 * (math.log(2 * sigma_w2 / width) + special.digamma((width - i + 1) / 2))


def lyapunov_monte_carlo(width: int, layers: int, samples: int, seed: int = MC_SEED) -> np.ndarray:
    """(width,) the same exponents measured: the mean log of R's diagonal when the product is re-orthonormalised
    by QR after every layer (the standard algorithm)."""
    rng = np.random.default_rng(seed)
    q = np.broadcast_to(np.eye(width), (samples, width, width))
    total = np.zeros((samples, width))
    for _ in range(layers):
        q, r = np.linalg.qr(rng.standard_normal((samples, width, width)) / math.sqrt(width) @ q)
        total += np.log(np.abs(np.diagonal(r, axis1=-2, axis2=-1)))
    return np.sort(total.mean(axis=0) / layers)[::-1]


def collapse_depth(width: int, share: float) -> float:
    """The depth at which a linear network with Gaussian layers puts `share` of an isotropic 2-D input's variance in
    one direction: the ratio of the two directions' variances falls as exp(-2 gap L), gap = lambda_1 - lambda_2."""
    lam = lyapunov_exponents(width)
    return math.log(share / (1 - share)) / (2 * (lam[0] - lam[1]))
