"""Mean-field signal propagation (Schoenholz et al. 2017, STUDY.md) for zero-mean initialisations.

With kernels of variance sigma_w^2 / fan_in and zero biases, the pre-activation variance q follows
q_{l+1} = sigma_w^2 E[phi(sqrt(q_l) z)^2] (z standard normal), and the backward signal shrinks or
grows per layer by chi_l = sigma_w^2 E[phi'(sqrt(q_l) z)^2]. The mean square of layer l's kernel
gradient is E[h_{l-1}^2] E[delta_l^2], so relative to the last hidden layer L it is
E[h_{l-1}^2] / E[h_{L-1}^2] * prod_{k=l}^{L-1} chi_k. Valid for wide layers; ours have 5 units.
"""
from __future__ import annotations

import math

import numpy as np

# Gauss-Hermite nodes for E over a standard normal (an even count: none at 0, where relu' jumps)
_Z, _W = np.polynomial.hermite_e.hermegauss(80)
_W = _W / _W.sum()
PHI = {"tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
       "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float)),
       "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2)}


def applies(init) -> bool:
    """The theory needs zero-mean weights: Keras's symmetric uniform initialisers, not RandomUniform(0, 1)."""
    return isinstance(init, str) or math.isclose(init["minval"], -init["maxval"])


def sigma_w2(init, fan_in: int, fan_out: int) -> float:
    """fan_in x the variance of a kernel entry (uniform on +-limit has variance limit^2 / 3)."""
    if isinstance(init, dict):
        return fan_in * (init["maxval"] - init["minval"]) ** 2 / 12
    limit2 = {"glorot_uniform": 6 / (fan_in + fan_out), "he_uniform": 6 / fan_in, "lecun_uniform": 3 / fan_in}[init]
    return fan_in * limit2 / 3


def _expect(f, q: float) -> float:
    return float(np.sum(_W * f(math.sqrt(q) * _Z)))


def propagate(activation: str, init, depth: int, width: int, input_second_moment: float) -> dict:
    """Per hidden layer 1..depth: q (pre-activation variance), E[h^2] (post-activation), chi."""
    phi, dphi = PHI[activation]
    s_first, s_hidden = sigma_w2(init, 2, width), sigma_w2(init, width, width)
    q, qs, h2, chis = s_first * input_second_moment, [], [], []
    for _ in range(depth):
        qs.append(q)
        h2.append(_expect(lambda x: phi(x) ** 2, q))
        chis.append(s_hidden * _expect(lambda x: dphi(x) ** 2, q))
        q = s_hidden * h2[-1]
    return {"q": qs, "h2": h2, "chi": chis}


def gradient_ratio_at_init(activation: str, init, depth: int, width: int, input_second_moment: float) -> np.ndarray:
    """(depth,) predicted RMS kernel gradient of hidden layer l relative to the last hidden layer."""
    p = propagate(activation, init, depth, width, input_second_moment)
    inputs = [input_second_moment] + p["h2"][:-1]  # E[h_{l-1}^2], h_0 = the input
    ratios = [inputs[l] / inputs[-1] * np.prod(p["chi"][l:depth - 1]) for l in range(depth)]
    return np.sqrt(np.array(ratios))


def depth_scale(activation: str, init, depth: int, width: int, input_second_moment: float) -> float:
    """xi = -1 / ln(chi), chi the geometric mean of chi over `depth` layers; inf at or above chi = 1
    (the critical point: gradients neither vanish nor explode)."""
    chi = float(np.exp(np.mean(np.log(propagate(activation, init, depth, width, input_second_moment)["chi"]))))
    return math.inf if chi >= 1 - 1e-9 else -1 / math.log(chi)
