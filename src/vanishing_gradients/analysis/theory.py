"""Mean-field signal propagation (Schoenholz et al. 2017; docs/study.md) for zero-mean initialisations.

With kernels of variance sigma_w^2 / fan_in and zero biases, the pre-activation variance q follows
q_{l+1} = sigma_w^2 E[phi(sqrt(q_l) z)^2] (z standard normal), and the backward signal shrinks or
grows per layer by chi_l = sigma_w^2 E[phi'(sqrt(q_l) z)^2]. The mean square of layer l's kernel
gradient is E[h_{l-1}^2] E[delta_l^2], so relative to the last hidden layer L it is
E[h_{l-1}^2] / E[h_{L-1}^2] * prod_{k=l}^{L-1} chi_k. Valid for wide layers; ours have 5 units.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.extensions import ACTIVATIONS, moments

# Gauss-Hermite nodes for E over a standard normal (an even count: none at 0, where relu' jumps)
_Z, _W = np.polynomial.hermite_e.hermegauss(80)
_W = _W / _W.sum()


def phi(activation: str):
    """The activation (extension table) and its derivative, as numpy functions of the pre-activation."""
    entry = ACTIVATIONS[activation]
    return (lambda x: entry.forward(np, x)), (lambda x: entry.slope(entry.forward(np, x)))


def applies(init) -> bool:
    """The theory needs zero-mean weights: Keras's symmetric initialisers, not RandomUniform(0, 1)."""
    return math.isclose(moments(init, 2, 2)[0], 0.0, abs_tol=1e-12)


def sigma_w2(init, fan_in: int, fan_out: int) -> float:
    """fan_in x the variance of a kernel entry."""
    return fan_in * moments(init, fan_in, fan_out)[1]


def _expect(f, q: float) -> float:
    return float(np.sum(_W * f(math.sqrt(q) * _Z)))


def propagate(activation: str, init, depth: int, width: int, input_second_moment: float) -> dict:
    """Per hidden layer 1..depth: q (pre-activation variance), E[h^2] (post-activation), chi."""
    phi_, dphi = phi(activation)
    s_first, s_hidden = sigma_w2(init, 2, width), sigma_w2(init, width, width)
    q, qs, h2, chis = s_first * input_second_moment, [], [], []
    for _ in range(depth):
        qs.append(q)
        h2.append(_expect(lambda x: phi_(x) ** 2, q))
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


def input_second_moment(x: np.ndarray) -> float:
    """E[x_i^2] over the training inputs x (n, n_inputs): the signal the first layer receives."""
    return float(np.mean(np.asarray(x, float) ** 2))


def compare(params: dict, summary, trainable, layers, x2: float, depths=(5, 10, 20)) -> tuple[dict, dict, list]:
    """Measurement against mean-field theory for every zero-mean config swept over depth. Returns
    measured {title: (hidden layer index -> gradient at initialisation relative to the last hidden layer's)},
    predicted {title: (depth,) the same from gradient_ratio_at_init}, at up to three depths per config (those of
    `depths` trained, else the deepest), and one row per config and width: chi at the first and deepest layer,
    the depth scale xi, 6 xi (the depth beyond which the theory expects training to fail) and the measured
    trainable depth. `layers`: metrics.analyse's table of grad_val_mean_abs per layer, epoch and variant."""
    measured, predicted, rows = {}, {}, []
    init0 = layers[(layers["epoch"] == 0) & (layers["layer"] != "output")]
    for t in trainable.itertuples(index=False):
        config = params["configs"][t.config]
        if not applies(config["hidden_init"]):
            continue
        trained = sorted(summary[(summary["config"] == t.config) & (summary["width"] == t.width)]["depth"].unique())
        for depth in [d for d in (*depths, trained[-1]) if d in trained][:3]:
            variant = f"{t.config}-d{depth:02d}-w{t.width:02d}"
            part = init0[init0["variant"] == variant].groupby("layer_index")["value"].mean()
            title = f"{t.config}, depth {depth}"
            measured[title] = part / part.iloc[-1]
            predicted[title] = gradient_ratio_at_init(config["activation"], config["hidden_init"], depth, t.width, x2)
        chi = propagate(config["activation"], config["hidden_init"], int(t.max_depth_tried), t.width, x2)["chi"]
        xi = depth_scale(config["activation"], config["hidden_init"], int(t.max_depth_tried), t.width, x2)
        rows.append({"config": t.config, "width": t.width, "chi_first": chi[0], "chi_deepest": chi[-1], "xi": xi,
                     "predicted_depth": 6 * xi, "trainable_depth": t.depth, "low": t.low, "high": t.high})
    return measured, predicted, rows


def gaps(measured: dict, predicted: dict) -> dict[str, float]:
    """Per panel of `compare`, the mean |log10(measured / predicted)| over the hidden layers."""
    return {t: float(np.mean(np.abs(np.log10(measured[t].to_numpy() / predicted[t])))) for t in measured}
